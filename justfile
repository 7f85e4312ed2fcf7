# A thin menu over `cargo xtask`; CI runs `just ci` (= .ci/run).

# Build plugins and the release server, then serve on https://127.0.0.1:8443/mcp.
run *ARGS:
    cargo xtask run {{ARGS}}

# Build plugins and fixtures, then run every test.
test *ARGS:
    cargo xtask test {{ARGS}}

# Build the bundled plugins into target/plugins/.
plugins:
    cargo xtask plugins

# Run the benchmark against a release build.
bench *ARGS:
    cargo xtask bench {{ARGS}}

# fmt --check and clippy -D warnings over every workspace.
lint:
    cargo xtask lint

# What CI runs.
ci:
    bash .ci/run
