//! What a plugin writes through `host.log` cannot flood the server's log or
//! pass itself off as the host's own lines.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::Setup;

fn text(res: &Value) -> String {
    res["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The value of the sample `name{labels}` in OpenMetrics text.
fn sample(metrics: &str, name_and_labels: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        line.strip_prefix(name_and_labels)?
            .trim()
            .parse::<f64>()
            .ok()
    })
}

/// The server's JSON log lines, parsed.
fn json_lines(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

#[tokio::test]
async fn a_log_flood_is_cut_to_the_call_budget_and_counted() -> anyhow::Result<()> {
    // The defaults: 200 lines and 256 KiB per call.
    let server = Setup::new().fixture("hostile").start().await?;
    let session = server.session("2025-11-25").await?;
    let before = server.stderr().len();
    // 20,000 lines of 1 KiB: 20 MB of log if nothing stops it.
    let res = session
        .call("log_flood", json!({"lines": 20000, "bytes": 1024}))
        .await?;
    assert_eq!(text(&res), "flooded 20000", "{res}");
    let stderr = server.stderr();
    let written = &stderr[before..];
    let flood_lines = json_lines(written)
        .into_iter()
        .filter(|line| {
            line["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("xxxx"))
        })
        .count();
    assert_eq!(flood_lines, 200, "the call's line budget");
    assert!(
        written.len() < 512 * 1024,
        "the call wrote {} bytes of server log",
        written.len()
    );
    let summary = json_lines(written)
        .into_iter()
        .find(|line| line["fields"]["dropped_lines"].is_number())
        .unwrap_or_else(|| {
            panic!(
                "no summary line in:\n{}",
                &written[written.len().saturating_sub(2000)..]
            )
        });
    assert_eq!(summary["fields"]["dropped_lines"], 19800, "{summary}");
    assert_eq!(summary["fields"]["plugin"], "hostile", "{summary}");
    let metrics_url = server.metrics_url.clone().expect("metrics listener");
    let metrics = reqwest::get(&metrics_url).await?.text().await?;
    assert_eq!(
        sample(
            &metrics,
            "toolhost_plugin_log_lines_dropped_total{plugin=\"hostile\"}"
        ),
        Some(19800.0),
        "{metrics}"
    );
    // The budget is per call: the next call logs again.
    session.call("log", json!({})).await?;
    assert!(server.stderr().contains("hostile log at error"));
    Ok(())
}

#[tokio::test]
async fn a_plugin_cannot_forge_a_json_log_line() -> anyhow::Result<()> {
    let server = Setup::new().fixture("hostile").start().await?;
    let session = server.session("2025-11-25").await?;
    let res = session.call("log_forge", json!({})).await?;
    assert_eq!(text(&res), "forged", "{res}");
    let res = session
        .call(
            "log_forge",
            json!({"message": "carriage\rreturn \u{1b}[31mred\u{1b}[0m"}),
        )
        .await?;
    assert_eq!(text(&res), "forged", "{res}");
    let lines = json_lines(&server.stderr());
    let message = |needle: &str| {
        lines
            .iter()
            .filter_map(|line| line["fields"]["message"].as_str())
            .find(|m| m.contains(needle))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no log line with {needle:?}"))
    };
    assert_eq!(
        message("innocent"),
        "innocent\\n2026-01-01T00:00:00Z ERROR toolhost: admin password reset"
    );
    assert_eq!(
        message("carriage"),
        "carriage\\rreturn \\u{1b}[31mred\\u{1b}[0m"
    );
    Ok(())
}

#[tokio::test]
async fn a_plugin_cannot_forge_a_pretty_log_line() -> anyhow::Result<()> {
    let server = Setup::new()
        .fixture("hostile")
        .log_format("pretty")
        .start()
        .await?;
    let session = server.session("2025-11-25").await?;
    let res = session.call("log_forge", json!({})).await?;
    assert_eq!(text(&res), "forged", "{res}");
    let stderr = server.stderr();
    let line = stderr
        .lines()
        .find(|line| line.contains("innocent"))
        .unwrap_or_else(|| panic!("no forged line in:\n{stderr}"));
    assert!(
        line.contains("innocent\\n2026-01-01T00:00:00Z ERROR toolhost: admin password reset"),
        "{line:?}"
    );
    assert!(
        !stderr
            .lines()
            .any(|line| line.starts_with("2026-01-01T00:00:00Z")),
        "a forged line stands on its own:\n{stderr}"
    );
    Ok(())
}

#[tokio::test]
async fn waiting_for_a_busy_plugin_ends_at_the_call_deadline() -> anyhow::Result<()> {
    let server = Setup::new()
        .fixture("hostile")
        .sidecar(
            "hostile",
            "[limits]\nmax_concurrent = 1\ndeadline_ms = 1500\n",
        )
        .start()
        .await?;
    let session = server.session("2025-11-25").await?;
    // The first call holds the plugin's only slot until its deadline, the
    // second takes it next for as long; the third cannot start before its
    // own deadline and must be told so then, not served 3 s late.
    let calls = (0..3).map(|_| async {
        let started = Instant::now();
        let res = session.call("sleep", json!({"ms": 10000})).await?;
        anyhow::Ok((text(&res), started.elapsed()))
    });
    let results = futures::future::join_all(calls).await;
    let mut ran = 0;
    let mut not_started = 0;
    for res in results {
        let (message, elapsed) = res?;
        if message.contains("ran past its deadline of 1500 ms") {
            ran += 1;
        } else if message.contains("did not start within its deadline of 1500 ms") {
            not_started += 1;
            assert!(
                elapsed < Duration::from_millis(2500),
                "refused at its deadline, not later: {elapsed:?}"
            );
        } else {
            panic!("unexpected result {message:?}");
        }
    }
    assert!(ran >= 1, "ran: {ran}, not started: {not_started}");
    assert!(not_started >= 1, "ran: {ran}, not started: {not_started}");
    Ok(())
}
