#!/usr/bin/env bash
# Installs schemathesis (PyPI, pinned in requirements.txt) into tests/api-fuzz/.venv.
# Idempotent and safe to run concurrently (see scripts/py-venv).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$here/../../scripts/py-venv" "$here" schemathesis
