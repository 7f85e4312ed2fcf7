//! Health, readiness and Prometheus metrics as a monitoring system sees them.

use serde_json::json;

use crate::harness::Setup;

/// The value of the first sample line starting with `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Lines in the audit log files of `dir`, one per record.
fn audit_lines(dir: &std::path::Path) -> anyhow::Result<usize> {
    let mut lines = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            lines += std::fs::read_to_string(&path)?.lines().count();
        }
    }
    Ok(lines)
}

#[tokio::test]
async fn metrics_move_with_traffic() -> anyhow::Result<()> {
    let server = Setup::new()
        .fixture("hostile")
        .config("[limits]\ntool_calls_per_hour = 3600\ntool_calls_burst = 2")
        .start()
        .await?;
    let metrics_url = server
        .metrics_url
        .clone()
        .expect("metrics listener announced");
    let scrape = || async {
        let text = reqwest::get(&metrics_url).await?.text().await?;
        anyhow::Ok(text)
    };
    let before = scrape().await?;
    assert_eq!(
        sample(&before, "toolhost_plugins_loaded"),
        Some(1.0),
        "{before}"
    );
    assert_eq!(sample(&before, "toolhost_sessions_open"), Some(0.0));

    let session = server.session("2025-11-25").await?;
    session.call("echo", json!({"text": "a"})).await?;
    session.call("echo", json!({"text": 5})).await?;
    let limited = session.post(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "c"}}})).await?;
    assert_eq!(limited.status, 429);

    let after = scrape().await?;
    assert_eq!(
        sample(&after, "toolhost_sessions_open"),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            "toolhost_tool_calls_total{plugin=\"hostile\",tool=\"echo\",outcome=\"ok\"}"
        ),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            "toolhost_tool_calls_total{plugin=\"hostile\",tool=\"echo\",outcome=\"toolerror\"}"
        ),
        Some(1.0),
        "{after}"
    );
    assert_eq!(sample(&after, "toolhost_rate_limited_total"), Some(1.0));
    // The calls' instance slots stay warm: their keep-resident windows are
    // what the pool holds between calls.
    assert!(
        sample(&after, "toolhost_plugin_pool_resident_bytes").is_some_and(|b| b > 0.0),
        "{after}"
    );
    assert!(
        sample(
            &after,
            "toolhost_http_requests_total{method=\"POST\",status=\"200\"}"
        )
        .is_some_and(|n| n >= 3.0),
        "{after}"
    );
    assert!(
        sample(
            &after,
            "toolhost_request_duration_seconds_count{operation=\"tools/call\"}"
        )
        .is_some_and(|n| n >= 2.0)
    );
    // Once traffic stops the audit backlog drains: the queue gauge reads
    // zero, nothing was dropped, and the written count is the number of
    // lines in the log.
    let audit_dir = server.data_dir.join("audit");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let now = scrape().await?;
        let on_disk = audit_lines(&audit_dir)?;
        let depth = sample(&now, "toolhost_audit_queue_depth");
        let written = sample(&now, "toolhost_audit_records_written");
        if depth == Some(0.0) && written == Some(on_disk as f64) && on_disk >= 4 {
            assert_eq!(sample(&now, "toolhost_audit_records_dropped"), Some(0.0));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "audit backlog never drained: depth {depth:?}, written {written:?}, \
             {on_disk} lines on disk\n{now}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let ready: serde_json::Value = server
        .client
        .get(server.url.replace("/mcp", "/readyz"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["plugins"], 1);
    Ok(())
}

#[tokio::test]
async fn plugin_time_is_measured_in_the_plugin_even_when_streamed() -> anyhow::Result<()> {
    let server = Setup::new().fixture("hostile").start().await?;
    let metrics_url = server.metrics_url.clone().expect("metrics listener");
    let session = server.session("2025-11-25").await?;
    session.call("sleep", json!({"ms": 300})).await?;
    // With a progress token the answer is an event stream: its headers
    // leave before the tool finishes, so only the plugin layer can time it.
    let streamed = session
        .post(
            json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {
            "name": "progress", "arguments": {"steps": 2}, "_meta": {"progressToken": "p"}}}),
        )
        .await?;
    assert_eq!(
        streamed.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    let text = reqwest::get(&metrics_url).await?.text().await?;
    let executed = |suffix: &str| {
        sample(
            &text,
            &format!("toolhost_tool_execution_seconds_{suffix}{{plugin=\"hostile\"}}"),
        )
    };
    assert_eq!(executed("count"), Some(2.0), "{text}");
    assert!(executed("sum").is_some_and(|s| s >= 0.3), "{text}");
    assert!(
        sample(&text, "toolhost_plugin_instantiation_seconds_count").is_some_and(|n| n >= 2.0),
        "{text}"
    );
    Ok(())
}
