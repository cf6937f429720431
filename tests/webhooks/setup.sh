#!/usr/bin/env bash
# Installs the Python package the webhook signature tests verify against
# (`standardwebhooks` from PyPI, pinned in requirements.txt) into tests/webhooks/.venv.
# Idempotent and safe to run concurrently (see scripts/py-venv).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$here/../../scripts/py-venv" "$here" standardwebhooks
