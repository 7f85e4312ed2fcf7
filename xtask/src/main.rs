//! `cargo xtask`: the project's build and test entry points, so the README's
//! commands need nothing but cargo.
//!
//! - `cargo xtask run [-- SERVE ARGS]`: build plugins and the release server, then serve.
//! - `cargo xtask test`: build plugins and fixtures, then run every test.
//! - `cargo xtask plugins`: build the bundled plugins into `target/plugins/`.
//! - `cargo xtask bench`: build release and run the benchmark.
//! - `cargo xtask lint`: `cargo fmt --check` and `clippy -D warnings` over
//!   every workspace (host, guest plugins, test fixtures).
//! - `cargo xtask fuzz [--seconds N] [TARGET]`: fuzz each target for N s (60).

mod fuzz;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The plugins `cargo xtask run` serves, one name a line (`#` comments):
/// kept in a file so the e2e test of a first run checks the same list.
const SERVED: &str = include_str!("../served-plugins.txt");

/// Bundled plugins: (guest workspace dir, cargo package, installed name),
/// from [`SERVED`]; each lives in `plugins/NAME` as `toolhost-plugin-NAME`.
fn bundled() -> Vec<(&'static str, String, String)> {
    SERVED
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|name| {
            (
                "plugins",
                format!("toolhost-plugin-{name}"),
                name.to_string(),
            )
        })
        .collect()
}

/// Plugins for outside services (GitHub, Jira): built into
/// `target/integrations/`, not served by `cargo xtask run`, because each needs
/// the operator's sidecar (site, credentials) before it can do anything.
const INTEGRATIONS: &[(&str, &str, &str)] = &[
    ("plugins", "toolhost-plugin-github", "github"),
    ("plugins", "toolhost-plugin-jira", "jira"),
];

/// Test fixtures: (guest workspace dir, cargo package, installed name).
/// The conformance suite's tools are fixtures too: a client pointed at a
/// first run should see the product, not `test_simple_text`.
const FIXTURES: &[(&str, &str, &str)] = &[
    ("plugins", "toolhost-plugin-conformance", "conformance"),
    ("tests/plugins", "toolhost-test-hostile", "hostile"),
    (
        "tests/plugins",
        "toolhost-test-invalid-name",
        "invalid-name",
    ),
    ("tests/plugins", "toolhost-test-bad-schema", "bad-schema"),
    ("tests/plugins", "toolhost-test-collide", "collide"),
    ("tests/plugins", "toolhost-test-many-tools", "many-tools"),
    ("tests/plugins", "toolhost-test-fetch", "fetch"),
];

fn main() -> anyhow::Result<()> {
    fuzz::wrap_rustc_if_asked()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    std::env::set_current_dir(&root).context("entering the project root")?;
    let (command, rest) = args
        .split_first()
        .map_or(("help", &[][..]), |(c, r)| (c.as_str(), r));
    // `cargo xtask run -- --listen …`: the separator is for us, not the server.
    let rest = match rest.split_first() {
        Some((first, tail)) if first == "--" => tail,
        _ => rest,
    };
    match command {
        "plugins" => {
            build_served(&root)?;
            build_guests(&root, INTEGRATIONS, "integrations")
        }
        "run" => {
            build_served(&root)?;
            let mut cargo = cargo();
            cargo.args([
                "run",
                "--release",
                "--package",
                "toolhost-host",
                "--bin",
                "toolhost",
                "--",
                "serve",
            ]);
            cargo.args(["--plugins", "target/plugins"]);
            cargo.args(rest);
            run(&mut cargo)
        }
        "test" => test(&root, rest),
        "lint" => lint(&root),
        "fuzz" => fuzz::fuzz(&root, rest),
        "bench" => {
            // The benchmark calls conformance tools too: it gets its own
            // directory with both, leaving `target/plugins` the product.
            build_served(&root)?;
            build_guests(&root, FIXTURES, "test-plugins")?;
            // The cluster phase starts its own PostgreSQL and Redis.
            run(Command::new("bash").arg(root.join("tests/services/setup.sh")))?;
            let bench_plugins = root.join("target/bench-plugins");
            std::fs::create_dir_all(&bench_plugins)?;
            for (dir, name) in [("plugins", "devtools"), ("test-plugins", "conformance")] {
                let file = format!("{name}.wasm");
                std::fs::copy(
                    root.join("target").join(dir).join(&file),
                    bench_plugins.join(&file),
                )
                .with_context(|| format!("copying {file} for the benchmark"))?;
            }
            run(cargo().args([
                "build",
                "--release",
                "--package",
                "toolhost-host",
                "--package",
                "toolhost-bench",
            ]))?;
            let mut bench = Command::new(root.join("target/release/toolhost-bench"));
            bench.env("TOOLHOST_BIN", root.join("target/release/toolhost"));
            bench.env("TOOLHOST_PLUGINS", &bench_plugins);
            bench.args(rest);
            run(&mut bench)
        }
        "help" | "--help" | "-h" => {
            println!("usage: cargo xtask <plugins|run|test|bench|lint|fuzz> [args]");
            Ok(())
        }
        other => bail!("unknown xtask command {other:?}; try `cargo xtask help`"),
    }
}

/// Strategy: build guests (bundled plugins and fixtures), build the host once
/// in the test profile, then run the whole workspace's tests with the paths
/// of those artefacts in the environment.
fn test(root: &Path, rest: &[String]) -> anyhow::Result<()> {
    build_served(root)?;
    build_guests(root, INTEGRATIONS, "integrations")?;
    build_guests(root, FIXTURES, "test-plugins")?;
    // Third-party MCP clients (Python and TypeScript SDKs, Inspector, the
    // conformance suite) for the interop tests, from PyPI and npm.
    run(Command::new("bash").arg(root.join("tests/interop/setup.sh")))?;
    // Debian's Chromium and playwright-core for the browser tests (the
    // consent page as a person sees it).
    run(Command::new("bash").arg(root.join("tests/browser/setup.sh")))?;
    // PostgreSQL's server programs, for the state tests' own throwaway
    // database servers (Debian's packages, when missing).
    run(Command::new("bash").arg(root.join("tests/services/setup.sh")))?;
    // Helm's Go SDK (as a Python package) and the Kubernetes schemas, to
    // render and validate the chart and manifests under deploy/ offline.
    run(Command::new("bash").arg(root.join("tests/deploy/setup.sh")))?;
    // Example plugins in Python, JavaScript and C, with toolchains from PyPI,
    // npm and crates.io (stamped: a few seconds when nothing changed).
    run(Command::new("bash").arg(root.join("plugins/examples/build.sh")))?;
    run(cargo().args(["build", "--package", "toolhost-host", "--bin", "toolhost"]))?;
    let mut tests = cargo();
    tests.args(["test", "--workspace"]);
    tests.env("TOOLHOST_BIN", root.join("target/debug/toolhost"));
    tests.env("TOOLHOST_PLUGINS", root.join("target/plugins"));
    tests.env("TOOLHOST_TEST_PLUGINS", root.join("target/test-plugins"));
    tests.env("TOOLHOST_LANG_PLUGINS", root.join("target/lang-plugins"));
    tests.env("TOOLHOST_INTEGRATIONS", root.join("target/integrations"));
    tests.args(rest);
    run(&mut tests)?;
    // Guest crates have their own unit tests, run natively.
    let mut guest_tests = cargo();
    guest_tests
        .current_dir(root.join("plugins"))
        .env("CARGO_TARGET_DIR", root.join("target/guest-native"))
        .args(["test", "--workspace", "--quiet"]);
    run(&mut guest_tests)?;
    // A short fuzzing smoke: every target builds and survives a few seconds
    // from its seeds (longer runs: `cargo xtask fuzz --seconds N`).
    fuzz::fuzz(
        root,
        &["--seconds".to_string(), FUZZ_SMOKE_SECONDS.to_string()],
    )
}

/// Seconds each fuzz target runs in `cargo xtask test`.
const FUZZ_SMOKE_SECONDS: u64 = 5;

/// Workspaces besides the root one, linted for the target they ship to.
const GUEST_WORKSPACES: &[&str] = &["plugins", "tests/plugins"];

/// Strategy: format and lint every workspace, not only the root one, so a
/// guest plugin or fixture cannot drift from the house style unnoticed.
/// Guests are checked for `wasm32-wasip2` in the directory their release
/// builds use, so the dependencies' metadata is shared.
fn lint(root: &Path) -> anyhow::Result<()> {
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--quiet",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    ensure_wasm_target()?;
    for workspace in GUEST_WORKSPACES {
        run(cargo()
            .current_dir(root.join(workspace))
            .args(["fmt", "--all", "--", "--check"]))?;
        run(cargo()
            .current_dir(root.join(workspace))
            .env("CARGO_TARGET_DIR", root.join("target/wasm"))
            .args([
                "clippy",
                "--quiet",
                "--workspace",
                "--all-targets",
                "--target",
                "wasm32-wasip2",
                "--",
                "-D",
                "warnings",
            ]))?;
    }
    Ok(())
}

/// Builds the served plugins into `target/plugins` and removes any other
/// component there (say, `conformance.wasm` from an older checkout), so the
/// directory `cargo xtask run` serves holds exactly [`SERVED`].
fn build_served(root: &Path) -> anyhow::Result<()> {
    let bundled = bundled();
    let guests: Vec<(&str, &str, &str)> = bundled
        .iter()
        .map(|(ws, package, name)| (*ws, package.as_str(), name.as_str()))
        .collect();
    build_guests(root, &guests, "plugins")?;
    let dir = root.join("target/plugins");
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let stale = path.extension().is_some_and(|e| e == "wasm")
            && path
                .file_stem()
                .and_then(|s| s.to_str())
                .is_none_or(|stem| !bundled.iter().any(|(_, _, name)| name == stem));
        if stale {
            std::fs::remove_file(&path)
                .with_context(|| format!("removing {} (not a served plugin)", path.display()))?;
        }
    }
    Ok(())
}

/// Builds the listed guest packages for `wasm32-wasip2` and copies each
/// component to `target/<dest>/<name>.wasm`.
fn build_guests(root: &Path, guests: &[(&str, &str, &str)], dest: &str) -> anyhow::Result<()> {
    ensure_wasm_target()?;
    let target_dir = root.join("target/wasm");
    let mut workspaces: Vec<&str> = guests.iter().map(|(ws, _, _)| *ws).collect();
    workspaces.dedup();
    for workspace in workspaces {
        let mut cargo = cargo();
        cargo
            .current_dir(root.join(workspace))
            .env("CARGO_TARGET_DIR", &target_dir)
            .args(["build", "--release", "--target", "wasm32-wasip2"]);
        for (ws, package, _) in guests {
            if *ws == workspace {
                cargo.args(["--package", package]);
            }
        }
        run(&mut cargo)?;
    }
    let out_dir = root.join("target").join(dest);
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    for (_, package, name) in guests {
        let built = target_dir
            .join("wasm32-wasip2/release")
            .join(format!("{}.wasm", package.replace('-', "_")));
        let installed = out_dir.join(format!("{name}.wasm"));
        // Copy then rename, as the README tells operators to deploy, so a
        // running server never sees a half-written file.
        let staging = out_dir.join(format!(".{name}.wasm.tmp"));
        std::fs::copy(&built, &staging)
            .with_context(|| format!("copying {} to {}", built.display(), staging.display()))?;
        std::fs::rename(&staging, &installed)?;
    }
    Ok(())
}

fn ensure_wasm_target() -> anyhow::Result<()> {
    let output = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running rustup (the wasm32-wasip2 target is installed with it)")?;
    if String::from_utf8_lossy(&output.stdout)
        .lines()
        .any(|l| l.trim() == "wasm32-wasip2")
    {
        return Ok(());
    }
    run(Command::new("rustup").args(["target", "add", "wasm32-wasip2"]))
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("starting {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
