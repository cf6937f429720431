#!/usr/bin/env bash
# Installs the tools of the conformance suite from the package registries:
#   - a Python venv at tests/conformance/.venv with the pinned requirements.txt
#     (pycontribs `jira`, `jsonschema`, `openapi-schema-validator`);
#   - npm packages from package-lock.json into tests/conformance/node_modules
#     (`@atlaskit/adf-schema`, `ajv`, `ajv-draft-04`).
#
# Idempotent: a stamp per tool records the hash of the pin file it was installed from,
# so a second run is a fast no-op. Safe to run concurrently: the work is done under an
# exclusive flock, and the stamps are re-checked after the lock is taken.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

die() {
    echo "conformance setup: $*" >&2
    exit 1
}

hash_of() {
    sha256sum "$@" | sha256sum | cut -d' ' -f1
}

venv_stamp=".setup-stamp-venv"
npm_stamp=".setup-stamp-npm"
py_want="$(hash_of requirements.txt)"
npm_want="$(hash_of package.json package-lock.json)"

venv_ok() {
    [[ -x .venv/bin/python && -f "$venv_stamp" && "$(cat "$venv_stamp")" == "$py_want" ]]
}
npm_ok() {
    [[ -d node_modules/@atlaskit/adf-schema && -f "$npm_stamp" && "$(cat "$npm_stamp")" == "$npm_want" ]]
}

if venv_ok && npm_ok; then
    exit 0
fi

command -v flock >/dev/null || die "flock (util-linux) is required"
exec 9>"$here/.setup.lock"
flock 9

if ! venv_ok; then
    python="${PYTHON:-python3}"
    command -v "$python" >/dev/null || die "python3 is required (set PYTHON to override)"
    echo "conformance setup: installing Python tools into $here/.venv" >&2
    rm -rf .venv "$venv_stamp"
    "$python" -m venv .venv || die "could not create the venv (is python3-venv installed?)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-input \
        -r requirements.txt || die "pip install failed"
    echo "$py_want" >"$venv_stamp"
fi

if ! npm_ok; then
    command -v node >/dev/null || die "node is required (Node.js 18 or later)"
    command -v npm >/dev/null || die "npm is required"
    echo "conformance setup: installing npm packages into $here/node_modules" >&2
    rm -f "$npm_stamp"
    npm ci --no-audit --no-fund --loglevel=error >&2 || die "npm ci failed"
    echo "$npm_want" >"$npm_stamp"
fi
