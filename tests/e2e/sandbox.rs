//! Hostile plugins are contained: loops hit the deadline, allocation hits the
//! memory limit, panics and stack overflows become tool errors, and nothing
//! is shared between calls or leaks in from the host.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use crate::harness::{Server, Setup};

fn text(res: &serde_json::Value) -> String {
    res["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The value of the first sample line of `series` in a metrics scrape.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Plugin instances created so far: each call gets one as it starts
/// running, after any queueing.
async fn instantiations(server: &Server) -> anyhow::Result<f64> {
    let url = server.metrics_url.as_deref().context("metrics listener")?;
    let scrape = reqwest::get(url).await?.text().await?;
    sample(&scrape, "toolhost_plugin_instantiation_seconds_count").context("no instantiation count")
}

/// Waits until at least `n` more calls than `before` have started running.
async fn started(server: &Server, before: f64, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while instantiations(server).await? < before + n as f64 {
        anyhow::ensure!(Instant::now() < deadline, "{n} calls never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

#[tokio::test]
async fn every_failure_mode_is_a_clear_tool_error() -> anyhow::Result<()> {
    let mut server = Setup::new()
        .fixture("hostile")
        .config("[plugins.limits]\ndeadline_ms = 1000\nmemory_mib = 32\nmax_output_bytes = 1048576")
        .start()
        .await?;
    let session = server.session("2025-11-25").await?;
    let check = |tool: &'static str, args: serde_json::Value, expect: &'static str| {
        let session = &session;
        async move {
            let started = Instant::now();
            let res = session.call(tool, args).await?;
            assert_eq!(res["result"]["isError"], true, "{tool}: {res}");
            let message = text(&res);
            assert!(
                message.contains(expect),
                "{tool}: {message:?} lacks {expect:?}"
            );
            anyhow::Ok(started.elapsed())
        }
    };
    let spin = check("spin", json!({}), "deadline of 1000 ms").await?;
    assert!(
        spin < Duration::from_secs(5),
        "deadline enforced promptly: {spin:?}"
    );
    check("hog", json!({}), "memory limit of 32 MiB").await?;
    check("panic", json!({}), "panicked").await?;
    // Rust keeps its stack in linear memory: overflowing it is an out-of-bounds access.
    check("recurse", json!({}), "the tool crashed").await?;
    check(
        "huge_output",
        json!({"mib": 2}),
        "over the limit of 1048576 bytes",
    )
    .await?;
    check("error", json!({}), "upstream error: upstream exploded").await?;
    check("is_error", json!({}), "this is a tool-level error").await?;
    let res = session.call("echo", json!({"text": "alive"})).await?;
    assert_eq!(text(&res), "alive");
    assert!(server.alive(), "server survived every hostile call");
    Ok(())
}

#[tokio::test]
async fn no_state_survives_between_calls() -> anyhow::Result<()> {
    let server = Setup::new().fixture("hostile").start().await?;
    let session = server.session("2025-11-25").await?;
    for _ in 0..3 {
        let res = session.call("counter", json!({})).await?;
        assert_eq!(text(&res), "1", "each call gets a fresh instance");
    }
    Ok(())
}

#[tokio::test]
async fn the_sandbox_grants_nothing_by_default() -> anyhow::Result<()> {
    let server = Setup::new().fixture("hostile").start().await?;
    let session = server.session("2025-11-25").await?;
    let file = session
        .call("read_file", json!({"path": "/etc/passwd"}))
        .await?;
    // The call runs and reports the refusal itself: an error reply or a
    // crashed tool would say nothing about the filesystem.
    assert_eq!(file["result"]["isError"], false, "{file}");
    let probe = &file["result"]["structuredContent"];
    assert_eq!(probe["ok"], false, "no filesystem: {file}");
    assert!(
        probe["error"].as_str().is_some_and(|e| !e.is_empty()),
        "the I/O error is reported: {file}"
    );
    assert!(probe.get("contents").is_none(), "{file}");
    let env = session.call("env", json!({})).await?;
    assert_eq!(text(&env).trim(), "{}", "no environment: {env}");
    // The plugin learns who calls, as verified, and never the token.
    let who = session.call("caller", json!({})).await?;
    let record: serde_json::Value = serde_json::from_str(&text(&who))?;
    assert_eq!(record["subject"], "e2e", "{who}");
    assert_eq!(record["scopes"], json!(["read", "write"]), "{who}");
    assert!(record["request-id"].is_string(), "{who}");
    let token = server.token.as_deref().unwrap_or("no token");
    assert!(
        !who.to_string().contains(token),
        "the token reached the plugin"
    );
    let config = session.call("config", json!({"key": "anything"})).await?;
    assert_eq!(text(&config), "unset");
    Ok(())
}

#[tokio::test]
async fn a_spinning_plugin_does_not_stall_other_calls() -> anyhow::Result<()> {
    let server = Setup::new()
        .fixture("hostile")
        .config("[plugins.limits]\ndeadline_ms = 8000")
        .start()
        .await?;
    let session = server.session("2025-11-25").await?;
    let before = instantiations(&server).await?;
    let begun = Instant::now();
    let spinners = async {
        let calls = (0..2).map(|_| session.call("spin", json!({})));
        let results = futures::future::join_all(calls).await;
        (results, begun.elapsed())
    };
    let echoes = async {
        // Both spinners hold a core before the first echo is sent.
        started(&server, before, 2).await?;
        for i in 0..20 {
            let res = session
                .call("echo", json!({"text": format!("e{i}")}))
                .await?;
            assert_eq!(text(&res), format!("e{i}"));
        }
        anyhow::Ok(begun.elapsed())
    };
    let ((spun, spinners_done), echoes_done) = tokio::join!(spinners, echoes);
    let echoes_done = echoes_done?;
    // Both cores are busy with spinners, yet the echoes finish long before
    // the spinners hit their deadline: guests yield every millisecond.
    assert!(
        echoes_done + Duration::from_secs(3) < spinners_done,
        "echo calls waited on spinners: echoes done at {echoes_done:?}, spinners at {spinners_done:?}"
    );
    for res in spun {
        assert_eq!(res?["result"]["isError"], true);
    }
    Ok(())
}

#[tokio::test]
async fn a_saturated_plugin_queues_then_refuses() -> anyhow::Result<()> {
    let server = Setup::new().fixture("hostile").start().await?;
    std::fs::write(
        server.plugins_dir.join("hostile.toml"),
        "[config]\nmarker = \"saturated\"\n\n[limits]\nmax_concurrent = 1\n",
    )?;
    let session = server.session("2025-11-25").await?;
    // The sidecar is live once the generation it built answers: the marker
    // and the cap arrive together.
    let deadline = Instant::now() + Duration::from_secs(60);
    while text(&session.call("config", json!({"key": "marker"})).await?) != "saturated" {
        anyhow::ensure!(Instant::now() < deadline, "the sidecar never took effect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = instantiations(&server).await?;
    // One call holds the only slot for long enough that everything sent
    // once it runs arrives while it still does, however loaded the machine.
    let holder = session.call("sleep", json!({"ms": 3000}));
    let crowd = async {
        started(&server, before, 1).await?;
        let calls = (0..14).map(|_| session.call("sleep", json!({"ms": 10})));
        anyhow::Ok(futures::future::join_all(calls).await)
    };
    let (held, crowd) = tokio::join!(holder, crowd);
    assert_eq!(text(&held?), "slept");
    let mut n_busy = 0;
    let mut n_done = 0;
    for res in crowd? {
        let res = res?;
        if text(&res).contains("the tool is busy") {
            n_busy += 1;
        } else if text(&res) == "slept" {
            n_done += 1;
        }
    }
    // Behind the running call, eight wait their turn; the rest are refused
    // at once.
    assert_eq!(n_done, 8, "served: {n_done}, busy: {n_busy}");
    assert_eq!(n_busy, 6);
    Ok(())
}

#[tokio::test]
async fn a_fuel_budget_stops_a_loop_by_work_done() -> anyhow::Result<()> {
    let server = Setup::new()
        .fixture("hostile")
        .config("[plugins.policy]\nfuel_metering = true\n[plugins.limits]\ndeadline_ms = 20000")
        // The budget comes from the plugin's sidecar; the default is none.
        .sidecar("hostile", "[limits]\nfuel = 50000000\n")
        .start()
        .await?;
    let session = server.session("2025-11-25").await?;
    let started = Instant::now();
    let res = session.call("spin", json!({})).await?;
    assert_eq!(res["result"]["isError"], true, "{res}");
    assert!(text(&res).contains("CPU budget of 50000000 fuel"), "{res}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped by fuel, not the 20 s deadline: {:?}",
        started.elapsed()
    );
    // Ordinary calls fit the budget easily.
    let res = session.call("echo", json!({"text": "fits"})).await?;
    assert_eq!(text(&res), "fits");
    Ok(())
}

/// The median of `samples`.
fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test]
async fn devtools_keeps_its_speed_while_the_hostile_suite_runs() -> anyhow::Result<()> {
    let server = Setup::new()
        .bundled("devtools")
        .fixture("hostile")
        .config("[plugins.limits]\ndeadline_ms = 2000\nmemory_mib = 32\nmax_output_bytes = 1048576")
        .start()
        .await?;
    let session = server.session("2025-11-25").await?;
    let hash_calls = |n: usize| {
        let session = &session;
        async move {
            let mut took = Vec::with_capacity(n);
            for i in 0..n {
                let started = Instant::now();
                let res = session
                    .call(
                        "hash",
                        json!({"input": format!("call {i}"), "algorithm": "sha256"}),
                    )
                    .await?;
                took.push(started.elapsed());
                anyhow::ensure!(res["result"]["isError"] != true, "devtools failed: {res}");
            }
            anyhow::Ok(took)
        }
    };
    hash_calls(5).await?;
    let alone = median(hash_calls(40).await?);

    // Every hostile behaviour at once, over and over, while devtools is timed.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let storm = async {
        let mut rounds = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let calls = [
                ("spin", json!({})),
                ("spin", json!({})),
                ("hog", json!({})),
                ("recurse", json!({})),
                ("panic", json!({})),
                ("huge_output", json!({"mib": 2})),
            ]
            .map(|(tool, args)| session.call(tool, args));
            for res in futures::future::join_all(calls).await {
                anyhow::ensure!(
                    res?["result"]["isError"] == true,
                    "a hostile call succeeded"
                );
            }
            rounds += 1;
        }
        anyhow::Ok(rounds)
    };
    let before = instantiations(&server).await?;
    let timed = async {
        // The storm's first round is running (spinners included) before
        // devtools is timed.
        let took = match started(&server, before, 6).await {
            Ok(()) => hash_calls(40).await,
            Err(err) => Err(err),
        };
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        took
    };
    let (rounds, during) = tokio::join!(storm, timed);
    let (rounds, during) = (rounds?, median(during?));
    assert!(rounds >= 1, "the storm ran");
    eprintln!("devtools median {during:?} under the hostile suite, {alone:?} alone");
    // Two spinners can hold both cores of a small machine; guests yield
    // every epoch tick, and the server checks its sockets every few polls,
    // so devtools waits a tick or two per step (measured: 5.7 ms against
    // 0.55 ms alone; 61 ms with tokio's default polling intervals).
    assert!(
        during <= alone * 5 + Duration::from_millis(25),
        "devtools median {during:?} under the hostile suite vs {alone:?} alone"
    );
    Ok(())
}
