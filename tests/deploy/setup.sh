#!/usr/bin/env bash
# Installs what the deployment check (tests/deploy/validate.py, run by
# tests/e2e/deploy.rs) needs: helm-python-sdk, which renders the Helm chart
# with Helm's own Go SDK and no helm binary, and kubernetes-validate, which
# checks the output against Kubernetes' JSON schemas offline; both from PyPI,
# pinned with their dependencies in requirements.txt, into tests/deploy/.venv
# (gitignored).
#
# `cargo xtask test` runs it before the tests. The venv is stamped with the hash
# of requirements.txt and of the Python that made it, so a second run with
# nothing changed only compares hashes; a change reinstalls from scratch.
#
# Environment: PYTHON (default python3; 3.11 or newer, for tomllib).

set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

python="${PYTHON:-python3}"

command -v "$python" >/dev/null 2>&1 || {
    echo "deploy setup: '$python' is not on PATH (Python 3.11+ with the venv module runs the chart check)" >&2
    exit 1
}
command -v sha256sum >/dev/null 2>&1 || {
    echo "deploy setup: 'sha256sum' is not on PATH (coreutils)" >&2
    exit 1
}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "deploy setup: $("$python" --version 2>&1) is too old: validate.py needs Python 3.11+ (tomllib)" >&2
    exit 1
}

# Two test runs sharing a checkout must not install into the same venv at once;
# flock is util-linux, so go without the lock where it is missing.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$here/.setup.lock"
    flock 9
fi

venv=".venv"
python_id="$("$python" -c 'import sys; print(sys.executable, sys.version)')"
stamp="$( { cat requirements.txt; echo "$python_id"; } | sha256sum | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && "$(cat "$venv/.toolhost-stamp" 2>/dev/null)" == "$stamp" ]]; then
    echo "deploy setup: $venv up to date"
    exit 0
fi
echo "deploy setup: creating $venv from requirements.txt"
rm -rf "$venv"
"$python" -m venv "$venv"
# Every package is pinned, dependencies included, so resolution is a check
# that the closure is complete rather than a search.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r requirements.txt
echo "$stamp" >"$venv/.toolhost-stamp"
