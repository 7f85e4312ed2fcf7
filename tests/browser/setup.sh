#!/usr/bin/env bash
# Installs what the browser tests (tests/e2e/browser.rs) drive: Debian's
# Chromium (`apt-get install chromium`, when /usr/bin/chromium is missing and
# we are root) and playwright-core from npm (package-lock.json), which talks
# to that Chromium; Playwright's own browser downloads are never used.
#
# `cargo xtask test` runs it before the tests. node_modules is stamped with the
# hash of what it was installed from, so a second run only compares hashes.
#
# Environment: NPM (default npm), CHROMIUM (default /usr/bin/chromium).

set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

npm="${NPM:-npm}"
chromium="${CHROMIUM:-/usr/bin/chromium}"

if [[ ! -x "$chromium" ]]; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "browser setup: apt-get install chromium"
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
    else
        echo "browser setup: $chromium is missing; install Debian's chromium package (as root: apt-get install chromium)" >&2
        exit 1
    fi
fi

command -v "$npm" >/dev/null 2>&1 || {
    echo "browser setup: '$npm' is not on PATH (Node.js 20+ with npm installs playwright-core)" >&2
    exit 1
}

if command -v flock >/dev/null 2>&1; then
    exec 9>"$here/.setup.lock"
    flock 9
fi

stamp="$( { cat package.json package-lock.json; node --version; "$npm" --version; } | sha256sum | cut -d' ' -f1)"
if [[ "$(cat node_modules/.toolhost-stamp 2>/dev/null)" != "$stamp" ]]; then
    echo "browser setup: npm ci (playwright-core)"
    # --ignore-scripts: playwright-core downloads nothing by itself, and no
    # browser of Playwright's own is wanted.
    "$npm" ci --ignore-scripts --no-audit --no-fund --loglevel=error
    echo "$stamp" >node_modules/.toolhost-stamp
else
    echo "browser setup: node_modules up to date"
fi
