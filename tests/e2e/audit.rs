//! The audit log as an operator meets it: one chained JSON line per API call
//! and security event, no arguments in clear, `toolhost audit verify`
//! catching edits, deletions and reordering, and a crash leaving a chain
//! that still verifies.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Setup, scratch_dir, toolhost_bin};

fn records(dir: &Path) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect()
}

/// Waits until the log holds at least `n` API-call records.
fn wait_for_calls(dir: &Path, n: usize) -> anyhow::Result<Vec<Value>> {
    let started = Instant::now();
    loop {
        let all = records(dir);
        if all.iter().filter(|r| r["activity"] == "api_call").count() >= n {
            return Ok(all);
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "log has {} records",
            all.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn verify(dir: &Path) -> (bool, String) {
    let output = Command::new(toolhost_bin())
        .args(["audit", "verify"])
        .arg(dir)
        .output()
        .expect("run toolhost audit verify");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Copies the audit files of `dir` into a fresh directory for tampering.
fn copy_log(dir: &Path) -> anyhow::Result<PathBuf> {
    let copy = scratch_dir("audit-copy");
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            std::fs::copy(&path, copy.join(path.file_name().unwrap_or_default()))?;
        }
    }
    Ok(copy)
}

/// Rewrites the lines of the single log file in `dir` through `edit`.
fn tamper(dir: &Path, edit: impl Fn(&mut Vec<String>)) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let text = std::fs::read_to_string(&path)?;
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() > 4 {
            edit(&mut lines);
            std::fs::write(&path, lines.join("\n") + "\n")?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn every_call_is_chained_and_tampering_is_caught() -> anyhow::Result<()> {
    let server = Setup::new().fixture("hostile").start().await?;
    let session = server.session("2025-11-25").await?;
    for i in 0..3 {
        session
            .call("echo", json!({"text": format!("secret-value-{i}")}))
            .await?;
    }
    session.call("echo", json!({"text": 5})).await?;
    let refused = server
        .post_raw(
            &[("origin", "https://evil.example.com")],
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
        )
        .await?;
    assert_eq!(refused.status, 403);
    let dir = server.data_dir.join("audit");
    // initialize + initialized + 4 calls + the refusal.
    let all = wait_for_calls(&dir, 7)?;
    assert_eq!(all[0]["type"], "server_started");
    assert!(
        all.iter()
            .any(|r| r["type"] == "plugin_loaded" && r["message"] == "hostile")
    );
    let calls: Vec<&Value> = all
        .iter()
        .filter(|r| r["api"]["operation"] == "tools/call")
        .collect();
    assert_eq!(calls.len(), 4);
    for call in &calls {
        assert_eq!(call["resources"][0]["name"], "echo");
        assert_eq!(call["resources"][0]["owner"], "hostile");
        assert_eq!(
            call["resources"][0]["uid"].as_str().map(str::len),
            Some(64),
            "component SHA-256"
        );
        assert_eq!(call["src_endpoint"]["ip"], "127.0.0.1");
        assert!(
            call["unmapped"]["arguments_hmac"]
                .as_str()
                .is_some_and(|h| h.len() == 64)
        );
    }
    assert_eq!(calls[3]["status"], "tool_error");
    assert!(
        all.iter()
            .any(|r| r["status"] == "denied" && r["status_code"] == 403)
    );
    let raw: String = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        !raw.contains("secret-value"),
        "arguments never reach the log"
    );

    let (ok, text) = verify(&dir);
    assert!(ok, "{text}");
    assert!(text.contains("verifies"), "{text}");

    let edited = copy_log(&dir)?;
    tamper(&edited, |lines| {
        lines[2] = lines[2].replace("\"ok\"", "\"tool_error\"")
    })?;
    let (ok, text) = verify(&edited);
    assert!(
        !ok && text.contains(":4: prev does not match"),
        "edited: {text}"
    );

    let deleted = copy_log(&dir)?;
    tamper(&deleted, |lines| drop(lines.remove(2)))?;
    let (ok, text) = verify(&deleted);
    assert!(
        !ok && text.contains(":3: prev does not match"),
        "deleted: {text}"
    );

    let reordered = copy_log(&dir)?;
    tamper(&reordered, |lines| lines.swap(2, 3))?;
    let (ok, text) = verify(&reordered);
    assert!(
        !ok && text.contains(":3: prev does not match"),
        "reordered: {text}"
    );
    Ok(())
}

#[tokio::test]
async fn a_crash_mid_burst_leaves_a_verifiable_chain() -> anyhow::Result<()> {
    let mut server = Setup::new().fixture("hostile").start().await?;
    let data_dir = server.data_dir.clone();
    {
        let session = server.session("2025-11-25").await?;
        let burst = (0..200).map(|i| session.call("echo", json!({"text": format!("{i}")})));
        let _ = tokio::time::timeout(Duration::from_millis(300), futures::future::join_all(burst))
            .await;
    }
    server.kill();
    let dir = data_dir.join("audit");
    let (ok, text) = verify(&dir);
    assert!(ok, "after kill -9: {text}");

    // A restart continues the same chain.
    let server = Setup::new()
        .fixture("hostile")
        .data_dir(data_dir)
        .start()
        .await?;
    let session = server.session("2025-11-25").await?;
    session.call("echo", json!({"text": "after"})).await?;
    let before = records(&dir).len();
    let started = Instant::now();
    while records(&dir).len() < before + 1 && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (ok, text) = verify(&dir);
    assert!(ok, "after restart: {text}");
    Ok(())
}
