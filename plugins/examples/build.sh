#!/usr/bin/env bash
# Builds the example plugins in Python, JavaScript and C from wit/world.wit:
#
#   bash plugins/examples/build.sh              # all three
#   bash plugins/examples/build.sh python c     # some of them
#   bash plugins/examples/build.sh --source DIR --out FILE.wasm LANG
#                                               # one plugin from DIR (a copy
#                                               # of plugins/templates/LANG)
#
# Examples land in target/lang-plugins/{python,js,c}.wasm (repo-relative).
#
# Toolchains come from PyPI, npm and crates.io only, installed under
# plugins/examples/ (gitignored) and stamped with the hash of what they were
# installed from, as tests/interop/setup.sh does; a component is rebuilt only
# when its sources, the WIT or its toolchain changed (FORCE=1 rebuilds):
#
#   .venv/                componentize-py (Python) and ziglang (zig cc for C),
#                         from python/requirements.txt
#   js/node_modules/      @bytecodealliance/componentize-js, from js/package-lock.json
#   c/build/target/       toolhost-c-build: wit-bindgen-c + wit-component +
#                         the WASI preview1 reactor adapter, as a Rust program
#   .zig-cache/           zig's caches (wasi-libc is built once, ~30 s)
#
# Environment: PYTHON (default python3), NPM (default npm), CARGO (default cargo).

set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
wit="$root/wit"
out_dir="$root/target/lang-plugins"
work="$root/target/lang-build"

python="${PYTHON:-python3}"
npm="${NPM:-npm}"
cargo="${CARGO:-cargo}"

say() { echo "lang plugins: $*"; }
die() { echo "lang plugins: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is not on PATH ($2)"; }
need sha256sum "coreutils"

# ---- arguments
source_dir=""
out_file=""
langs=()
while (($#)); do
    case "$1" in
        --source) source_dir="$(cd "${2:?--source needs a directory}" && pwd)"; shift 2 ;;
        --out) out_file="${2:?--out needs a file}"; shift 2 ;;
        python | js | c) langs+=("$1"); shift ;;
        -h | --help) sed -n '2,24p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument '$1' (try --help)" ;;
    esac
done
if [[ -n "$source_dir" || -n "$out_file" ]]; then
    [[ -n "$source_dir" && -n "$out_file" && ${#langs[@]} -eq 1 ]] ||
        die "--source DIR --out FILE takes exactly one language"
    [[ "$out_file" = /* ]] || out_file="$PWD/$out_file"
fi
((${#langs[@]})) || langs=(python js c)

mkdir -p "$out_dir" "$work"

# Two builds sharing a checkout must not install into the same place at once.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$here/.build.lock"
    flock 9
fi

hash_of() { sha256sum | cut -d' ' -f1; }
# The contents of files (named relative to $1) and their names, as one hash.
hash_files() {
    local dir="$1"
    shift
    (cd "$dir" && for f in "$@"; do echo "$f"; cat "$f"; done) | hash_of
}
wit_hash() { (cd "$wit" && find . -type f -name '*.wit' | LC_ALL=C sort | while read -r f; do echo "$f"; cat "$f"; done) | hash_of; }

# ---- toolchains

venv="$here/.venv"
setup_venv() {
    need "$python" "Python 3.10+ with the venv module installs componentize-py and zig"
    local id stamp
    id="$("$python" -c 'import sys; print(sys.executable, sys.version)')"
    stamp="$( { cat "$here/python/requirements.txt"; echo "$id"; } | hash_of)"
    if [[ -x "$venv/bin/python" && "$(cat "$venv/.toolhost-stamp" 2>/dev/null)" == "$stamp" ]]; then
        return
    fi
    say "creating .venv from python/requirements.txt (componentize-py, ziglang)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        -r "$here/python/requirements.txt"
    echo "$stamp" >"$venv/.toolhost-stamp"
}

node_modules="$here/js/node_modules"
setup_node() {
    need "$npm" "Node.js 20+ with npm installs ComponentizeJS"
    need node "Node.js 20+ runs ComponentizeJS"
    local stamp
    stamp="$( { cat "$here/js/package.json" "$here/js/package-lock.json"; node --version; "$npm" --version; } | hash_of)"
    if [[ "$(cat "$node_modules/.toolhost-stamp" 2>/dev/null)" == "$stamp" ]]; then
        return
    fi
    say "npm ci in js/ (ComponentizeJS)"
    # No package in the lock needs an install script.
    (cd "$here/js" && "$npm" ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    echo "$stamp" >"$node_modules/.toolhost-stamp"
}

c_helper="$here/c/build/target/debug/toolhost-c-build"
setup_c() {
    setup_venv
    need "$cargo" "Rust's cargo builds the bindings and component helper"
    # Cargo's own freshness check: a no-op build takes well under a second.
    CARGO_TARGET_DIR="$here/c/build/target" "$cargo" build --quiet --locked \
        --manifest-path "$here/c/build/Cargo.toml"
}

# ---- builds

# Each component is written under a hidden name beside its destination and
# renamed into place, so a server watching that directory never reads half a
# file (and ignores the hidden name meanwhile).
staging_for() { echo "$(dirname "$1")/.$(basename "$1").tmp"; }

# up_to_date NAME OUT STAMP: whether OUT was built from inputs hashing to STAMP.
up_to_date() {
    [[ "${FORCE:-}" != 1 && -f "$2" && "$(cat "$work/$1.stamp" 2>/dev/null)" == "$3" ]]
}

build_python() { # DIR OUT
    local dir="$1" out="$2" name stamp files
    name="python-$(echo "$dir" | hash_of | cut -c1-12)"
    mapfile -t files < <(cd "$dir" && find . -name '*.py' -not -path './__pycache__/*' | LC_ALL=C sort)
    ((${#files[@]})) || die "no .py files in $dir"
    [[ -f "$dir/app.py" ]] || die "$dir has no app.py (the module componentize-py builds)"
    stamp="$( { hash_files "$dir" "${files[@]}"; wit_hash; cat "$venv/.toolhost-stamp"; } | hash_of)"
    if up_to_date "$name" "$out" "$stamp"; then
        say "$(basename "$out") up to date"
        return
    fi
    say "componentize-py: $dir/app.py -> $out"
    # Run from a scratch directory: componentize-py writes nothing into the source.
    (cd "$work" && "$venv/bin/componentize-py" -d "$wit" -w plugin componentize \
        -p "$dir" app -o "$(staging_for "$out")") >"$work/$name.log" 2>&1 ||
        { cat "$work/$name.log" >&2; die "componentize-py failed"; }
    mv "$(staging_for "$out")" "$out"
    echo "$stamp" >"$work/$name.stamp"
}

build_js() { # DIR OUT
    local dir="$1" out="$2" name stamp files
    name="js-$(echo "$dir" | hash_of | cut -c1-12)"
    [[ -f "$dir/plugin.js" ]] || die "$dir has no plugin.js"
    mapfile -t files < <(cd "$dir" && find . \( -name node_modules -prune \) -o \( -name '*.js' -o -name '*.mjs' \) -print | LC_ALL=C sort)
    stamp="$( { hash_files "$dir" "${files[@]}"; wit_hash; cat "$node_modules/.toolhost-stamp"; } | hash_of)"
    if up_to_date "$name" "$out" "$stamp"; then
        say "$(basename "$out") up to date"
        return
    fi
    say "componentize-js: $dir/plugin.js -> $out"
    # StarlingMonkey would also export wasi:http/incoming-handler for
    # `addEventListener('fetch')`; a plugin serves nothing, so leave it out.
    # Outbound fetch() stays: it is wasi:http, checked by the host.
    "$node_modules/.bin/componentize-js" --wit "$wit" --world-name plugin \
        --disable fetch-event --out "$(staging_for "$out")" "$dir/plugin.js" >"$work/$name.log" 2>&1 ||
        { cat "$work/$name.log" >&2; die "componentize-js failed"; }
    mv "$(staging_for "$out")" "$out"
    echo "$stamp" >"$work/$name.stamp"
}

build_c() { # DIR OUT
    local dir="$1" out="$2" name stamp files gen
    name="c-$(echo "$dir" | hash_of | cut -c1-12)"
    mapfile -t files < <(cd "$dir" && find . -maxdepth 1 \( -name '*.c' -o -name '*.h' \) | LC_ALL=C sort)
    ((${#files[@]})) || die "no .c files in $dir"
    stamp="$( { hash_files "$dir" "${files[@]}"; wit_hash; cat "$venv/.toolhost-stamp"; sha256sum <"$c_helper"; } | hash_of)"
    if up_to_date "$name" "$out" "$stamp"; then
        say "$(basename "$out") up to date"
        return
    fi
    gen="$work/$name-bindings"
    say "wit-bindgen-c + zig cc + reactor adapter: $dir -> $out"
    "$c_helper" bindings "$wit" plugin "$gen"
    local sources=()
    for f in "${files[@]}"; do [[ "$f" == *.c ]] && sources+=("$dir/${f#./}"); done
    # A preview1 reactor module (no main; exports the world's functions),
    # linked with the world's type (plugin_component_type.o). -s drops debug
    # info (~0.9 MB); the component-type section stays.
    ZIG_GLOBAL_CACHE_DIR="$here/.zig-cache" ZIG_LOCAL_CACHE_DIR="$here/.zig-cache" \
        "$venv/bin/python" -m ziglang cc -target wasm32-wasi -mexec-model=reactor -O2 -s \
        -Wall -Wextra -Werror=implicit-function-declaration -I "$gen" \
        -o "$work/$name.module.wasm" "${sources[@]}" "$gen/plugin.c" "$gen/plugin_component_type.o"
    "$c_helper" componentize "$work/$name.module.wasm" "$(staging_for "$out")"
    mv "$(staging_for "$out")" "$out"
    echo "$stamp" >"$work/$name.stamp"
}

for lang in "${langs[@]}"; do
    case "$lang" in
        python) setup_venv ;;
        js) setup_node ;;
        c) setup_c ;;
    esac
    if [[ -n "$source_dir" ]]; then
        "build_$lang" "$source_dir" "$out_file"
    else
        "build_$lang" "$here/$lang" "$out_dir/$lang.wasm"
    fi
    done_file="${out_file:-$out_dir/$lang.wasm}"
    say "$lang: $done_file ($(($(stat -c %s "$done_file") / 1024)) KiB)"
done
