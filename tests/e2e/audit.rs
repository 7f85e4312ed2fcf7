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

/// Waits until `ready` holds for the log's records; an error (not a silent
/// pass) when it never does.
fn wait_for(dir: &Path, ready: impl Fn(&[Value]) -> bool) -> anyhow::Result<Vec<Value>> {
    let started = Instant::now();
    loop {
        let all = records(dir);
        if ready(&all) {
            return Ok(all);
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "the log never got there; it has {} records: {all:?}",
            all.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tool_calls(all: &[Value]) -> Vec<&Value> {
    all.iter()
        .filter(|r| r["api"]["operation"] == "tools/call")
        .collect()
}

/// The SHA-256 of a log line, as the next line's `prev` names it.
fn line_hash(line: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(line.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The raw last complete line of the log.
fn last_line(dir: &Path) -> Option<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files.iter().rev().find_map(|f| {
        let text = std::fs::read_to_string(f).ok()?;
        text.split_inclusive('\n')
            .rfind(|l| l.ends_with('\n'))
            .map(|l| l.trim_end_matches('\n').to_string())
    })
}

#[tokio::test]
async fn a_crash_mid_burst_leaves_a_verifiable_chain() -> anyhow::Result<()> {
    let mut server = Setup::new().fixture("hostile").start().await?;
    let data_dir = server.data_dir.clone();
    let dir = data_dir.join("audit");
    {
        let session = server.session("2025-11-25").await?;
        let burst = (0..200).map(|i| session.call("echo", json!({"text": format!("{i}")})));
        let _ = tokio::time::timeout(Duration::from_millis(300), futures::future::join_all(burst))
            .await;
        // Something must have been logged, or the crash proves nothing.
        wait_for(&dir, |all| !tool_calls(all).is_empty())?;
    }
    server.kill();
    let at_kill = records(&dir);
    let logged_calls = tool_calls(&at_kill).len();
    assert!(logged_calls >= 1, "calls logged before the kill");
    let last = last_line(&dir).expect("a complete line before the kill");
    let last_seq = at_kill.last().and_then(|r| r["seq"].as_u64()).expect("seq");
    let (ok, text) = verify(&dir);
    assert!(ok, "after kill -9: {text}");
    assert!(
        text.contains(&format!("{} records", at_kill.len())),
        "verify counts what was logged: {text}"
    );

    // A restart continues the same chain: its first line links to the
    // last line written before the kill.
    let server = Setup::new()
        .fixture("hostile")
        .data_dir(data_dir)
        .start()
        .await?;
    let session = server.session("2025-11-25").await?;
    session.call("echo", json!({"text": "after"})).await?;
    let all = wait_for(&dir, |all| tool_calls(all).len() > logged_calls)?;
    let first_after = &all[at_kill.len()];
    assert_eq!(
        first_after["seq"].as_u64(),
        Some(last_seq + 1),
        "{first_after}"
    );
    assert_eq!(
        first_after["prev"].as_str(),
        Some(line_hash(&last).as_str())
    );
    let (ok, text) = verify(&dir);
    assert!(ok, "after restart: {text}");
    assert!(
        text.contains(&format!("{} records", all.len())),
        "verify counts both runs: {text}"
    );
    Ok(())
}

#[tokio::test]
async fn verify_refuses_a_directory_without_records() -> anyhow::Result<()> {
    let empty = scratch_dir("audit-empty");
    let (ok, text) = verify(&empty);
    assert!(!ok, "an empty directory verified: {text}");
    let (ok, text) = verify(&empty.join("missing"));
    assert!(!ok, "a missing directory verified: {text}");
    Ok(())
}

fn batch_call(id: u64, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "echo", "arguments": arguments}})
}

/// A JSON-RPC batch (protocol 2025-03-26) is one HTTP request but many
/// calls: each gets its own audit line, the batch's request id plus its
/// index, with its tool, plugin, argument digest and outcome.
#[tokio::test]
async fn each_call_in_a_batch_is_audited_on_its_own() -> anyhow::Result<()> {
    let server = Setup::new().fixture("hostile").start().await?;
    let session = server.session("2025-03-26").await?;
    let reply = session
        .post(json!([
            batch_call(1, json!({"text": "one"})),
            batch_call(2, json!({"text": 5})),
        ]))
        .await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json().as_array().map(Vec::len),
        Some(2),
        "{}",
        reply.text
    );
    let dir = server.data_dir.join("audit");
    let all = wait_for(&dir, |all| tool_calls(all).len() >= 2)?;
    let calls = tool_calls(&all);
    assert_eq!(calls.len(), 2, "{calls:?}");
    let request_id = calls[0]["api"]["request"]["uid"].as_str();
    assert!(request_id.is_some(), "{}", calls[0]);
    for (index, call) in calls.iter().enumerate() {
        assert_eq!(call["api"]["request"]["uid"].as_str(), request_id, "{call}");
        assert_eq!(call["unmapped"]["batch_index"], index, "{call}");
        assert_eq!(call["resources"][0]["name"], "echo", "{call}");
        assert_eq!(call["resources"][0]["owner"], "hostile", "{call}");
        assert_eq!(
            call["resources"][0]["uid"].as_str().map(str::len),
            Some(64),
            "{call}"
        );
        assert!(
            call["unmapped"]["arguments_hmac"]
                .as_str()
                .is_some_and(|h| h.len() == 64),
            "{call}"
        );
    }
    assert_ne!(
        calls[0]["unmapped"]["arguments_hmac"],
        calls[1]["unmapped"]["arguments_hmac"]
    );
    assert_eq!(calls[0]["status"], "ok");
    assert_eq!(calls[1]["status"], "tool_error");
    let (ok, text) = verify(&dir);
    assert!(ok, "{text}");
    Ok(())
}

/// Each call in a batch spends the budget like a call of its own: a batch
/// of three against a budget of two runs two and refuses the third.
#[tokio::test]
async fn a_batch_cannot_outspend_the_budget() -> anyhow::Result<()> {
    let server = Setup::new()
        .fixture("hostile")
        .config(
            "[limits]\ntool_calls_per_hour = 2\ntool_calls_burst = 2\nauth_requests_per_minute = 0",
        )
        .start()
        .await?;
    let session = server.session("2025-03-26").await?;
    let reply = session
        .post(json!([
            batch_call(1, json!({"text": "a"})),
            batch_call(2, json!({"text": "b"})),
            batch_call(3, json!({"text": "c"})),
        ]))
        .await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let answers = reply.json();
    let answers = answers.as_array().expect("a JSON array");
    assert_eq!(answers.len(), 3, "{}", reply.text);
    assert!(answers[0]["result"].is_object(), "{}", reply.text);
    assert!(answers[1]["result"].is_object(), "{}", reply.text);
    assert_eq!(answers[2]["id"], 3, "{}", reply.text);
    assert_eq!(
        answers[2]["error"]["code"], -32029,
        "rate limited: {}",
        reply.text
    );
    let dir = server.data_dir.join("audit");
    let all = wait_for(&dir, |all| tool_calls(all).len() >= 3)?;
    let statuses: Vec<&Value> = tool_calls(&all).iter().map(|c| &c["status"]).collect();
    assert_eq!(statuses, vec!["ok", "ok", "limited"]);
    Ok(())
}

/// The data directory holds keys and the audit log: no other user may list
/// or read it, whatever the umask the server started with.
#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_is_private() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let server = Setup::new().fixture("hostile").start().await?;
    let session = server.session("2025-11-25").await?;
    session.call("echo", json!({"text": "x"})).await?;
    let dir = server.data_dir.join("audit");
    wait_for(&dir, |all| !tool_calls(all).is_empty())?;
    let mode = |p: &Path| -> anyhow::Result<u32> {
        Ok(std::fs::metadata(p)?.permissions().mode() & 0o777)
    };
    let mut dirs = vec![server.data_dir.clone()];
    let mut checked = 0;
    while let Some(current) = dirs.pop() {
        assert_eq!(mode(&current)?, 0o700, "{}", current.display());
        checked += 1;
        for entry in std::fs::read_dir(&current)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            }
        }
    }
    assert!(checked >= 3, "the data, audit and auth directories");
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        assert_eq!(mode(&path)?, 0o600, "{}", path.display());
    }
    Ok(())
}
