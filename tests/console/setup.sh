#!/usr/bin/env bash
# Installs what the console's browser tests need:
#   - Chromium from the system's packages (/usr/bin/chromium; Debian package
#     `chromium`, installed with apt-get when missing and apt-get is available);
#   - npm `playwright-core` from package-lock.json into tests/console/node_modules
#     (playwright-core never downloads browsers; PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD is set
#     anyway).
#
# Idempotent (a stamp records the hash of the pin files) and safe to run concurrently
# (the work is done under an exclusive flock). Fails loudly when Chromium cannot be had.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

die() {
    echo "console test setup: $*" >&2
    exit 1
}

chromium="${JIRA_BRIDGE_CHROMIUM:-/usr/bin/chromium}"
stamp=".setup-stamp-npm"
want="$(sha256sum package.json package-lock.json | sha256sum | cut -d' ' -f1)"

npm_ok() {
    [[ -d node_modules/playwright-core && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]
}

if [[ -x "$chromium" ]] && npm_ok; then
    exit 0
fi

command -v flock >/dev/null || die "flock (util-linux) is required"
exec 9>"$here/.setup.lock"
flock 9

if [[ ! -x "$chromium" ]]; then
    if command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
        echo "console test setup: installing Chromium (apt-get install chromium)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >&2 \
            || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >&2; } \
            || die "apt-get could not install chromium"
    fi
    [[ -x "$chromium" ]] || die "Chromium is required at $chromium (Debian: apt-get install chromium; or set JIRA_BRIDGE_CHROMIUM)"
fi

if ! npm_ok; then
    command -v node >/dev/null || die "node is required (Node.js 20 or later)"
    command -v npm >/dev/null || die "npm is required"
    echo "console test setup: installing npm packages into $here/node_modules" >&2
    rm -f "$stamp"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >&2 || die "npm ci failed"
    echo "$want" >"$stamp"
fi
