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
    assert!(sample(&after, "toolhost_audit_records_written").is_some_and(|n| n >= 1.0));
    assert!(
        sample(&after, "toolhost_audit_queue_depth").is_some_and(|n| n >= 0.0),
        "the audit backlog is exported"
    );

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
