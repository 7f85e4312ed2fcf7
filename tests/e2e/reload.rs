//! Hot reload and sidecars: plugins appear, change and disappear without a
//! restart; a broken file never replaces a working version; clients hear
//! about every change.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Session, Setup, artefact_dir};

/// Copies a built component into the plugins dir the way the README says
/// to deploy: write beside it under a hidden name, then rename into place.
fn deploy(src: &Path, plugins_dir: &Path, name: &str) -> anyhow::Result<()> {
    let staging = plugins_dir.join(format!(".{name}.tmp"));
    std::fs::copy(src, &staging)?;
    std::fs::rename(&staging, plugins_dir.join(name))?;
    Ok(())
}

fn bundled(name: &str) -> std::path::PathBuf {
    artefact_dir("TOOLHOST_PLUGINS", "target/plugins").join(format!("{name}.wasm"))
}

async fn tool_names(session: &Session<'_>) -> anyhow::Result<Vec<String>> {
    let list = session.request("tools/list", json!({})).await?;
    Ok(crate::harness::tool_names(&list))
}

/// Polls until `check` holds on the tool list, for at most `limit`.
async fn wait_for(
    session: &Session<'_>,
    limit: Duration,
    check: impl Fn(&[String]) -> bool,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        if check(&tool_names(session).await?) {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "tool list did not change within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn plugins_come_and_go_without_a_restart() -> anyhow::Result<()> {
    let server = Setup::new().fixture("hostile").start().await?;
    let session = server.session("2025-11-25").await?;
    let mut events = server
        .client
        .get(&server.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session.id)
        .header("mcp-protocol-version", &session.version)
        .send()
        .await?;
    assert_eq!(events.status(), 200);

    deploy(&bundled("devtools"), &server.plugins_dir, "devtools.wasm")?;
    // Compiling the 3 MB component dominates here; the bench measures the
    // swap delay itself.
    wait_for(&session, Duration::from_secs(60), |names| {
        names.iter().any(|n| n == "hash")
    })
    .await?;
    let chunk = tokio::time::timeout(Duration::from_secs(5), events.chunk())
        .await??
        .unwrap_or_default();
    assert!(String::from_utf8_lossy(&chunk).contains("notifications/tools/list_changed"));

    // A broken replacement is refused and the working version keeps serving.
    std::fs::write(
        server.plugins_dir.join(".devtools.wasm.tmp"),
        b"not a component",
    )?;
    std::fs::rename(
        server.plugins_dir.join(".devtools.wasm.tmp"),
        server.plugins_dir.join("devtools.wasm"),
    )?;
    let started = Instant::now();
    while !server.stderr().contains("previous version keeps serving") {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "refusal not logged: {}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let res = session.call("hash", json!({"input": "abc"})).await?;
    assert_eq!(res["result"]["isError"], false, "{res}");

    std::fs::remove_file(server.plugins_dir.join("devtools.wasm"))?;
    wait_for(&session, Duration::from_secs(30), |names| {
        !names.iter().any(|n| n == "hash")
    })
    .await?;
    let gone = session.call("hash", json!({"input": "abc"})).await?;
    assert_eq!(gone["error"]["code"], -32602, "{gone}");
    assert!(tool_names(&session).await?.contains(&"echo".to_string()));
    Ok(())
}

#[tokio::test]
async fn sidecars_grant_config_and_set_limits() -> anyhow::Result<()> {
    let server = Setup::new().fixture("hostile").start().await?;
    let session = server.session("2025-11-25").await?;
    let text = |res: &Value| {
        res["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        text(&session.call("config", json!({"key": "greeting"})).await?),
        "unset"
    );

    std::fs::write(
        server.plugins_dir.join("hostile.toml"),
        "[config]\ngreeting = \"hello from the sidecar\"\n\n[limits]\ndeadline_ms = 300\n",
    )?;
    let started = Instant::now();
    loop {
        if text(&session.call("config", json!({"key": "greeting"})).await?)
            == "hello from the sidecar"
        {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "sidecar not applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let spin = session.call("spin", json!({})).await?;
    assert!(text(&spin).contains("deadline of 300 ms"), "{spin}");

    // A sidecar asking for more than policy allows is refused; the last good
    // version keeps serving.
    std::fs::write(
        server.plugins_dir.join("hostile.toml"),
        "[limits]\nmemory_mib = 999999\n",
    )?;
    let started = Instant::now();
    while !server.stderr().contains("plugins.policy.max_memory_mib") {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "refusal not logged"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        text(&session.call("config", json!({"key": "greeting"})).await?),
        "hello from the sidecar"
    );
    Ok(())
}
