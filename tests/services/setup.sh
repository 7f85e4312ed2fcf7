#!/usr/bin/env bash
# Installs the servers the state tests start for themselves
# (tests/e2e/services.rs): PostgreSQL's server programs (initdb, pg_ctl,
# postgres) from Debian's `postgresql` package and `redis-server` from
# `redis-server`, when they are missing and we are root.
# The tests never use a running instance; each starts its own in a temp dir
# on a free loopback port.
#
# `cargo xtask test` runs it before the tests; when everything is there it
# only looks.

set -euo pipefail

have_postgres() {
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

missing=()
have_postgres || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)

if ((${#missing[@]} == 0)); then
    exit 0
fi
if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "services setup: apt-get install ${missing[*]}"
    apt-get update -q >/dev/null
    # The package's own cluster is not wanted: the tests make their own.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "services setup: missing ${missing[*]}; install them (as root: apt-get install ${missing[*]})" >&2
    exit 1
fi
