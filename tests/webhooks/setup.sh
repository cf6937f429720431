#!/usr/bin/env bash
# Installs the Python package the webhook signature tests verify against
# (`standardwebhooks` from PyPI, pinned in requirements.txt) into tests/webhooks/.venv.
#
# Idempotent: a stamp records the hash of requirements.txt it was installed from, so a
# second run is a fast no-op. Safe to run concurrently (tests call it in parallel): the
# work is done under an exclusive flock and the stamp is re-checked after the lock.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

stamp=".setup-stamp"
want="$(sha256sum requirements.txt | cut -d' ' -f1)"

ok() {
    [[ -x .venv/bin/python && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]
}

ok && exit 0

exec 9>".setup.lock"
flock 9
ok && exit 0

python="${PYTHON:-python3}"
command -v "$python" >/dev/null || { echo "webhooks setup: $python not found" >&2; exit 1; }
rm -rf .venv "$stamp"
"$python" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
.venv/bin/python -c "import standardwebhooks"
echo "$want" > "$stamp"
