//! `cargo xtask fuzz [--seconds N] [TARGET]`: coverage-guided fuzzing on the
//! stable toolchain.
//!
//! cargo-fuzz needs nightly for its sanitizers; without them all libFuzzer
//! needs is SanitizerCoverage, which stable rustc emits with `-C passes` and
//! `-C llvm-args`. Those flags must reach only the code under test: in
//! RUSTFLAGS they would also reach build scripts (which then fail to link)
//! and every dependency (a rebuild of wasmtime). So this binary acts as
//! cargo's `RUSTC_WRAPPER` for the fuzz build and adds the flags to the host
//! library and the fuzz targets alone; every other crate is built exactly as
//! the ordinary debug build builds it, and is reused from `target/`.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

/// One target per untrusted-input surface; each is a binary of `fuzz/`
/// with its seeds in `fuzz/corpus/<name>/`.
pub(crate) const TARGETS: &[&str] = &[
    "fuzz_jsonrpc",
    "fuzz_stateless",
    "fuzz_jwt_header",
    "fuzz_client_ip",
    "fuzz_sidecar",
    "fuzz_network_allow",
];

/// Set for the fuzz build's rustc invocations, which then come back here.
const WRAPPER_ENV: &str = "TOOLHOST_FUZZ_RUSTC_WRAPPER";

const COVERAGE_FLAGS: &[&str] = &[
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
];

/// When invoked as the rustc wrapper: runs rustc (the first argument) with
/// the rest, plus coverage flags for the crates under test, and exits.
pub(crate) fn wrap_rustc_if_asked() -> anyhow::Result<()> {
    if std::env::var_os(WRAPPER_ENV).is_none() {
        return Ok(());
    }
    let mut args = std::env::args_os().skip(1);
    let rustc = args.next().context("the rustc wrapper got no rustc")?;
    let args: Vec<_> = args.collect();
    let crate_name = args
        .iter()
        .position(|a| a == "--crate-name")
        .and_then(|i| args.get(i + 1))
        .and_then(|name| name.to_str());
    let instrument = crate_name.is_some_and(|name| name == "toolhost" || name.starts_with("fuzz_"));
    let mut command = Command::new(rustc);
    command.args(&args);
    if instrument {
        command.args(COVERAGE_FLAGS);
    }
    let status = command.status().context("running rustc")?;
    std::process::exit(status.code().unwrap_or(1));
}

/// Builds every target, then runs the chosen ones (all when `rest` names
/// none) for `--seconds` each (60 unless given).
pub(crate) fn fuzz(root: &Path, rest: &[String]) -> anyhow::Result<()> {
    let mut seconds = 60u64;
    let mut chosen = Vec::new();
    let mut args = rest.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .context("--seconds needs a number")?
                    .parse()
                    .context("--seconds needs a number")?;
            }
            name => {
                let name = if name.starts_with("fuzz_") {
                    name.to_string()
                } else {
                    format!("fuzz_{name}")
                };
                if !TARGETS.contains(&name.as_str()) {
                    bail!(
                        "unknown fuzz target {name:?}; targets: {}",
                        TARGETS.join(", ")
                    );
                }
                chosen.push(name);
            }
        }
    }
    if chosen.is_empty() {
        chosen = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    build(root)?;
    for target in &chosen {
        run_target(root, target, seconds)?;
    }
    Ok(())
}

fn build(root: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let wrapper = std::env::current_exe().context("finding the xtask binary")?;
    crate::run(
        crate::cargo()
            .current_dir(root.join("fuzz"))
            .env("CARGO_TARGET_DIR", root.join("target"))
            .env("RUSTC_WRAPPER", wrapper)
            .env(WRAPPER_ENV, "1")
            .args(["build", "--quiet", "--bins"]),
    )?;
    println!("fuzz: targets built in {:.0?}", started.elapsed());
    Ok(())
}

/// Runs one target over its seeds, keeping what it finds in
/// `target/fuzz/corpus/<name>/` (the committed seeds stay as they are) and
/// any crashing input in `target/fuzz/artifacts/<name>/`.
fn run_target(root: &Path, target: &str, seconds: u64) -> anyhow::Result<()> {
    let work = root.join("target/fuzz/corpus").join(target);
    let artifacts = root.join("target/fuzz/artifacts").join(target);
    let seeds = root.join("fuzz/corpus").join(target);
    for dir in [&work, &artifacts] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let log_path = root.join("target/fuzz").join(format!("{target}.log"));
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let status = Command::new(root.join("target/debug").join(target))
        .arg(&work)
        .arg(&seeds)
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        // A slow input is a finding too: nothing here should take a second.
        .arg("-timeout=10")
        .arg("-rss_limit_mb=2048")
        .arg("-print_final_stats=1")
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .with_context(|| format!("starting the {target} fuzzer"))?;
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = output.lines().rev().take(40).collect();
        for line in tail.iter().rev() {
            eprintln!("{line}");
        }
        bail!(
            "{target} failed ({status}); the input is in {} and the log in {}",
            artifacts.display(),
            log_path.display()
        );
    }
    let runs = final_stat(&output, "stat::number_of_executed_units:").unwrap_or("?");
    let coverage = output
        .lines()
        // `#RUNS\tDONE   cov: N ft: …`
        .rfind(|l| l.split_whitespace().nth(1) == Some("DONE"))
        .and_then(|l| l.split_once("cov:"))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("?");
    let corpus = std::fs::read_dir(&work)?.count() + std::fs::read_dir(&seeds)?.count();
    println!(
        "fuzz: {target}: {runs} runs in {seconds} s, coverage {coverage} edges, corpus {corpus} inputs, no crash"
    );
    Ok(())
}

fn final_stat<'a>(output: &'a str, key: &str) -> Option<&'a str> {
    output
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
}
