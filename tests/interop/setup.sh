#!/usr/bin/env bash
# Installs the third-party MCP clients the interop tests (tests/e2e/interop.rs)
# run against toolhost: the TypeScript SDK, MCP Inspector, the conformance
# suite and Node 22 from npm (package-lock.json), and the Python SDK 2.x and
# 1.x into two virtualenvs (requirements-mcp2.txt, requirements-mcp1.txt).
#
# `cargo xtask test` runs it before the tests. Everything lands under
# tests/interop/ (gitignored). Each install is stamped with the hash of what it
# was installed from, so a second run with nothing changed only compares
# hashes; a changed lock or requirements file reinstalls that part from scratch.
#
# Environment: PYTHON (default python3), NPM (default npm).

set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

python="${PYTHON:-python3}"
npm="${NPM:-npm}"

need() {
    command -v "$1" >/dev/null 2>&1 || {
        echo "interop setup: '$1' is not on PATH ($2)" >&2
        exit 1
    }
}
need "$npm" "Node.js 20+ with npm installs the TypeScript clients"
need node "Node.js 20+ runs the TypeScript SDK client"
need "$python" "Python 3.10+ with the venv module installs the Python SDKs"
need sha256sum "coreutils"

# Two test runs sharing a checkout must not install into the same directory at
# once; flock is util-linux, so go without the lock where it is missing.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$here/.setup.lock"
    flock 9
fi

# The inputs plus the tools that act on them: a new Node or npm invalidates
# an install made for the old one.
npm_stamp="$( { cat package.json package-lock.json; node --version; "$npm" --version; } | sha256sum | cut -d' ' -f1)"
if [[ "$(cat node_modules/.toolhost-stamp 2>/dev/null)" != "$npm_stamp" ]]; then
    echo "interop setup: npm ci (TypeScript SDK, Inspector, mcp-remote, conformance suite, Node 22)"
    # No package here needs an install script (Inspector's postinstall is a
    # no-op when installed as a dependency), and npm 11 warns about each one.
    "$npm" ci --ignore-scripts --no-audit --no-fund --loglevel=error
    echo "$npm_stamp" >node_modules/.toolhost-stamp
else
    echo "interop setup: node_modules up to date"
fi

python_id="$("$python" -c 'import sys; print(sys.executable, sys.version)')"
for major in 2 1; do
    venv=".venv-mcp$major"
    requirements="requirements-mcp$major.txt"
    stamp="$( { cat "$requirements"; echo "$python_id"; } | sha256sum | cut -d' ' -f1)"
    if [[ -x "$venv/bin/python" && "$(cat "$venv/.toolhost-stamp" 2>/dev/null)" == "$stamp" ]]; then
        echo "interop setup: $venv up to date"
        continue
    fi
    echo "interop setup: creating $venv from $requirements"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    # Every package is pinned, dependencies included, so resolution is a check
    # that the closure is complete rather than a search.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements"
    echo "$stamp" >"$venv/.toolhost-stamp"
done
