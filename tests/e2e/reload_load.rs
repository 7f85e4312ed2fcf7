//! Hot reload under load: while 16 clients call a tool without pause, one
//! plugin file is replaced 20 times (bad and good versions alternating) and a
//! second plugin is added and removed. No call may fail, every client's event
//! stream hears each change of the served set exactly once, and once a call
//! has reached a new version no later call reaches an older one.
//!
//! The test prints how long each swap took, but does not bound it: every
//! end-to-end test shares the machine's cores with this one, so a wall-clock
//! target here measures the neighbours. `cargo xtask bench` holds the 300 ms
//! target on a machine with nothing else to do (`bench/src/reload.rs`).
//!
//! The swapped file is `swap.wasm`, holding either the `hostile` or the
//! `collide` fixture: both declare `echo`, so calls never fail for want of the
//! tool, and the reply tells which version answered (`collide: ` prefix).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

use crate::harness::{Reply, Server, Session, Setup, artefact_dir};

/// Concurrent clients, each on its own connection with its own session.
const WORKERS: usize = 16;
/// Replacements of `swap.wasm`: bad ones at odd steps, good ones at even.
const SWAPS: usize = 20;
/// The plugin file whose content is replaced.
const SWAP_FILE: &str = "swap.wasm";
/// Not a component at all: refused at compile time.
const GARBAGE: &[u8] = b"not a component";
/// A single call; far above any healthy call, so only a hung call trips it.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Waits that include compiling a component (a few seconds for devtools
/// unloaded; CI runs every test at once on two cores).
const COMPILE_WAIT: Duration = Duration::from_secs(90);
/// Waits for a reload that needs no compile, or for notifications.
const RELOAD_WAIT: Duration = Duration::from_secs(30);
/// Calls answered on each state between steps, so every version serves real
/// calls (one round of the workers).
const DWELL_CALLS: usize = WORKERS;
/// The whole test: about 15 s on an idle machine; a hung step must still end
/// the load rather than run for the sum of every wait.
const TEST_CAP: Duration = Duration::from_secs(180);

/// Which fixture serves `echo` from `swap.wasm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Version {
    Hostile,
    Collide,
}

impl Version {
    fn other(self) -> Version {
        match self {
            Version::Hostile => Version::Collide,
            Version::Collide => Version::Hostile,
        }
    }
}

/// One successful call as a worker saw it.
struct Call {
    start: Instant,
    end: Instant,
    version: Version,
}

/// What the swap loop waits for: the first call, started after arming, that
/// `target` answered.
struct Watch {
    target: Option<Version>,
    armed_at: Instant,
    seen_at: Option<Instant>,
}

/// State shared between the swap loop and the workers.
struct Load {
    stop: AtomicBool,
    failures: AtomicUsize,
    /// Successful calls so far, across workers.
    answered: AtomicUsize,
    /// The first few failures, for the assertion message.
    samples: Mutex<Vec<String>>,
    watch: Mutex<Watch>,
}

/// A poisoned lock only means another task panicked; the data is still the
/// best report we have.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Load {
    fn new() -> Load {
        Load {
            stop: AtomicBool::new(false),
            failures: AtomicUsize::new(0),
            answered: AtomicUsize::new(0),
            samples: Mutex::new(Vec::new()),
            watch: Mutex::new(Watch {
                target: None,
                armed_at: Instant::now(),
                seen_at: None,
            }),
        }
    }

    /// Arms the watch for `target`. Called only once the previous version has
    /// been observed, so a call started after this cannot be a straggler from
    /// an earlier generation that happened to serve the same version.
    fn arm(&self, target: Version) {
        *lock(&self.watch) = Watch {
            target: Some(target),
            armed_at: Instant::now(),
            seen_at: None,
        };
    }

    fn seen_at(&self) -> Option<Instant> {
        lock(&self.watch).seen_at
    }

    fn observe(&self, call: &Call) {
        let mut watch = lock(&self.watch);
        if watch.target == Some(call.version)
            && watch.seen_at.is_none()
            && call.start >= watch.armed_at
        {
            watch.seen_at = Some(call.end);
        }
    }

    fn fail(&self, message: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut samples = lock(&self.samples);
        if samples.len() < 10 {
            samples.push(message);
        }
    }
}

fn test_plugin(name: &str) -> PathBuf {
    artefact_dir("TOOLHOST_TEST_PLUGINS", "target/test-plugins").join(format!("{name}.wasm"))
}

fn bundled(name: &str) -> PathBuf {
    artefact_dir("TOOLHOST_PLUGINS", "target/plugins").join(format!("{name}.wasm"))
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path)
        .with_context(|| format!("reading {} (run `cargo xtask test`)", path.display()))
}

/// Deploys as the README says: write under a hidden name, rename into place.
/// Returns the instant just before the rename, from which delays are measured.
fn deploy(plugins_dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<Instant> {
    Ok(deploy_stamped(plugins_dir, name, bytes)?.0)
}

/// [`deploy`], also returning the wall-clock time of the rename (seconds
/// into the UTC day) to compare with the server's log timestamps.
fn deploy_stamped(plugins_dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<(Instant, f64)> {
    let staging = plugins_dir.join(format!(".{name}.tmp"));
    std::fs::write(&staging, bytes)?;
    let renamed_at = Instant::now();
    let wall = seconds_of_day(SystemTime::now());
    std::fs::rename(&staging, plugins_dir.join(name))?;
    Ok((renamed_at, wall))
}

fn seconds_of_day(time: SystemTime) -> f64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        % 86_400.0
}

/// Seconds into the UTC day of a log timestamp (`2026-01-02T10:20:30.123456Z`).
fn log_seconds_of_day(stamp: &str) -> Option<f64> {
    let (_, time) = stamp.split_once('T')?;
    let mut parts = time.strip_suffix('Z')?.split(':');
    let hours: f64 = parts.next()?.parse().ok()?;
    let minutes: f64 = parts.next()?.parse().ok()?;
    let seconds: f64 = parts.next()?.parse().ok()?;
    Some(hours * 3600.0 + minutes * 60.0 + seconds)
}

/// A client of its own for one worker. No overall timeout: the same client
/// holds the worker's event stream open for the whole test; calls set their
/// own. Over HTTP/2 (ALPN) the stream and the calls share one connection.
fn load_client(cert_path: &Path, token: Option<&str>) -> anyhow::Result<reqwest::Client> {
    Ok(crate::harness::client_builder(cert_path, token)?
        .pool_max_idle_per_host(1)
        .connect_timeout(RELOAD_WAIT)
        .build()?)
}

/// Ids of a session opened through the harness; the session is not tied to
/// the connection that opened it, so a worker uses it from its own client.
struct SessionIds {
    id: String,
    version: String,
}

/// One `tools/call echo`; any non-200, JSON-RPC error, `isError` or
/// unexpected text is an error. Returns which version answered.
async fn call_echo(
    client: &reqwest::Client,
    url: &str,
    session: &SessionIds,
    id: u64,
    text: &str,
) -> anyhow::Result<Version> {
    let body = json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": text}}
    });
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session.id)
        .header("mcp-protocol-version", &session.version)
        .timeout(CALL_TIMEOUT)
        .body(body.to_string())
        .send()
        .await?;
    let reply = Reply::read(response).await?;
    ensure!(
        reply.status == 200,
        "status {}: {}",
        reply.status,
        reply.text
    );
    let message = reply.response()?;
    ensure!(message.get("error").is_none(), "JSON-RPC error: {message}");
    let result = &message["result"];
    ensure!(result["isError"] != true, "isError: {message}");
    let answer = result["content"][0]["text"].as_str().unwrap_or_default();
    if answer == text {
        Ok(Version::Hostile)
    } else if answer.strip_prefix("collide: ") == Some(text) {
        Ok(Version::Collide)
    } else {
        bail!("unexpected echo {answer:?} for {text:?}: {message}")
    }
}

/// Calls `echo` back to back until told to stop.
async fn worker(
    n: usize,
    client: reqwest::Client,
    url: String,
    session: SessionIds,
    load: Arc<Load>,
) -> Vec<Call> {
    let mut calls = Vec::new();
    let mut id = 0u64;
    while !load.stop.load(Ordering::Relaxed) {
        id += 1;
        let text = format!("w{n}-{id}");
        let start = Instant::now();
        match call_echo(&client, &url, &session, id, &text).await {
            Ok(version) => {
                let call = Call {
                    start,
                    end: Instant::now(),
                    version,
                };
                load.observe(&call);
                load.answered.fetch_add(1, Ordering::Relaxed);
                calls.push(call);
            }
            Err(err) => load.fail(format!("worker {n} call {id}: {err:#}")),
        }
    }
    calls
}

/// Opens the session-era GET event stream.
async fn open_stream(
    client: &reqwest::Client,
    url: &str,
    session: &SessionIds,
) -> anyhow::Result<reqwest::Response> {
    let events = client
        .get(url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session.id)
        .header("mcp-protocol-version", &session.version)
        .send()
        .await?;
    ensure!(events.status() == 200, "GET stream: {}", events.status());
    Ok(events)
}

/// Counts `notifications/tools/list_changed` events until the stream ends.
async fn count_list_changed(mut events: reqwest::Response, count: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = events.chunk().await {
        buf.extend_from_slice(&chunk);
        // Events end with a blank line; a chunk may hold several or half of one.
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buf.drain(..end + 2).collect();
            let is_list_changed = String::from_utf8_lossy(&event)
                .lines()
                .filter_map(|line| line.strip_prefix("data: "))
                .filter_map(|data| serde_json::from_str::<Value>(data).ok())
                .any(|m| m["method"] == "notifications/tools/list_changed");
            if is_list_changed {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Polls `check` every few milliseconds; returns when it first held.
async fn wait_until(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> bool,
) -> anyhow::Result<Instant> {
    let started = Instant::now();
    loop {
        if check() {
            return Ok(Instant::now());
        }
        ensure!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Polls `tools/list` every 10 ms; returns when the reply that satisfied
/// `check` arrived.
async fn wait_tools(
    session: &Session<'_>,
    limit: Duration,
    check: impl Fn(&HashSet<String>) -> bool,
) -> anyhow::Result<Instant> {
    let started = Instant::now();
    loop {
        let list = session.request("tools/list", json!({})).await?;
        let names: HashSet<String> = list["result"]["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str().map(str::to_string))
            .collect();
        if check(&names) {
            return Ok(Instant::now());
        }
        ensure!(
            started.elapsed() < limit,
            "tool list not as expected within {limit:?}: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Lines the server logged when it refused a new `swap.wasm` for `reason`
/// and kept the previous version. Matching the reason keeps a late line about
/// the previous bad version from passing for this one.
fn refusals(server: &Server, reason: &str) -> usize {
    server
        .stderr()
        .lines()
        .filter(|l| {
            l.contains("previous version keeps serving")
                && l.contains("\"swap\"")
                && l.contains(reason)
        })
        .count()
}

/// Waits until every event stream has counted at least `expected` changes.
async fn wait_notified(counts: &[Arc<AtomicUsize>], expected: usize) -> anyhow::Result<()> {
    wait_until("list_changed on every stream", RELOAD_WAIT, || {
        counts.iter().all(|c| c.load(Ordering::Relaxed) >= expected)
    })
    .await
    .map(|_| ())
}

/// Keeps the load on the current state until the workers have answered
/// [`DWELL_CALLS`] more calls.
async fn dwell(load: &Load) -> anyhow::Result<()> {
    let target = load.answered.load(Ordering::Relaxed) + DWELL_CALLS;
    wait_until("calls on the current version", RELOAD_WAIT, || {
        load.answered.load(Ordering::Relaxed) >= target
    })
    .await
    .map(|_| ())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// A good swap as the loop saw it.
struct Swap {
    step: usize,
    version: Version,
    /// The first appearance of this component: its load included compiling.
    first_seen: bool,
    renamed: Instant,
    /// The rename on the wall clock, for the server's log.
    renamed_wall: f64,
    seen: Instant,
}

// Two threads, so the swap loop and the 32 client tasks do not queue behind
// each other on one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_under_load_lose_no_call() -> anyhow::Result<()> {
    tokio::time::timeout(TEST_CAP, swaps_under_load())
        .await
        .with_context(|| format!("the test did not finish within {TEST_CAP:?}"))?
}

async fn swaps_under_load() -> anyhow::Result<()> {
    // A short quiet period: the bound is measured from the rename, and the
    // default 150 ms debounce would use half of it.
    let server = Setup::new()
        .config("[plugins]\ndebounce_ms = 50")
        .start()
        .await?;
    let hostile = read(&test_plugin("hostile"))?;
    let collide = read(&test_plugin("collide"))?;
    let invalid_name = read(&test_plugin("invalid-name"))?;
    let devtools = read(&bundled("devtools"))?;
    let bytes_of = |v: Version| match v {
        Version::Hostile => &hostile,
        Version::Collide => &collide,
    };
    let plugins_dir = server.plugins_dir.clone();

    // The server starts empty and `swap.wasm` arrives as its first plugin, so
    // the fixture serves under that file stem.
    let admin = server.session("2025-11-25").await?;
    deploy(&plugins_dir, SWAP_FILE, &hostile)?;
    wait_tools(&admin, COMPILE_WAIT, |names| names.contains("echo")).await?;

    let load = Arc::new(Load::new());
    let mut counts = Vec::new();
    let mut streams = Vec::new();
    let mut workers = Vec::new();
    let mut http_version = None;
    for n in 0..WORKERS {
        let client = load_client(&server.cert_path, server.token.as_deref())?;
        let opened = server.session("2025-11-25").await?;
        let ids = SessionIds {
            id: opened.id.clone(),
            version: opened.version.clone(),
        };
        // The stream is subscribed before its response head is sent, so no
        // change after this point can be missed.
        let events = open_stream(&client, &server.url, &ids).await?;
        http_version.get_or_insert(events.version());
        let count = Arc::new(AtomicUsize::new(0));
        counts.push(count.clone());
        streams.push(tokio::spawn(count_list_changed(events, count)));
        workers.push(tokio::spawn(worker(
            n,
            client,
            server.url.clone(),
            ids,
            load.clone(),
        )));
    }
    let load_started = Instant::now();
    eprintln!("reload_load: {WORKERS} workers over {http_version:?}");

    // hostile was compiled by the first deploy above.
    let mut compiled = HashSet::from([Version::Hostile]);
    let mut serving = Version::Hostile;
    let mut changes = 0;
    let mut swaps = Vec::new();
    for step in 1..=SWAPS {
        if step % 2 == 1 {
            let (label, bytes, reason) = if step % 4 == 1 {
                ("garbage", GARBAGE, "is not a valid component")
            } else {
                ("invalid-name", invalid_name.as_slice(), "is invalid")
            };
            let before = refusals(&server, reason);
            let renamed = deploy(&plugins_dir, SWAP_FILE, bytes)?;
            let refused = wait_until(
                &format!("step {step}: refusal of {label}"),
                COMPILE_WAIT,
                || refusals(&server, reason) > before,
            )
            .await?;
            eprintln!(
                "reload_load: step {step:2} bad  {label:<12} refused {} after the rename",
                ms(refused - renamed)
            );
        } else {
            let version = serving.other();
            let first_seen = compiled.insert(version);
            load.arm(version);
            let (renamed, renamed_wall) =
                deploy_stamped(&plugins_dir, SWAP_FILE, bytes_of(version))?;
            let limit = if first_seen {
                COMPILE_WAIT
            } else {
                RELOAD_WAIT
            };
            let seen = wait_until(&format!("step {step}: calls on {version:?}"), limit, || {
                load.seen_at().is_some()
            })
            .await
            .map(|_| load.seen_at().unwrap_or(renamed))?;
            changes += 1;
            wait_notified(&counts, changes).await?;
            eprintln!(
                "reload_load: step {step:2} good {:<12} first call on it {} after the rename{}",
                format!("{version:?}"),
                ms(seen - renamed),
                if first_seen {
                    " (first seen: compiled)"
                } else {
                    " (cached)"
                }
            );
            swaps.push(Swap {
                step,
                version,
                first_seen,
                renamed,
                renamed_wall,
                seen,
            });
            serving = version;
        }
        dwell(&load).await?;
    }

    // A second plugin comes and goes while the load continues.
    let renamed = deploy(&plugins_dir, "devtools.wasm", &devtools)?;
    let added = wait_tools(&admin, COMPILE_WAIT, |names| names.contains("hash")).await?;
    changes += 1;
    wait_notified(&counts, changes).await?;
    let hash = admin.call("hash", json!({"input": "abc"})).await?;
    ensure!(hash["result"]["isError"] == false, "hash: {hash}");
    dwell(&load).await?;
    let removing = Instant::now();
    std::fs::remove_file(plugins_dir.join("devtools.wasm"))?;
    let removed = wait_tools(&admin, RELOAD_WAIT, |names| {
        !names.contains("hash") && names.contains("echo")
    })
    .await?;
    changes += 1;
    wait_notified(&counts, changes).await?;
    eprintln!(
        "reload_load: devtools added: listed {} after the rename (first seen: compiled); \
         removed: unlisted {} after the unlink",
        ms(added - renamed),
        ms(removed - removing)
    );
    dwell(&load).await?;

    load.stop.store(true, Ordering::Relaxed);
    let stopped = Instant::now();
    let mut calls = Vec::new();
    for (n, handle) in workers.into_iter().enumerate() {
        let done = handle.await?;
        ensure!(
            done.len() >= SWAPS,
            "worker {n} made only {} successful calls",
            done.len()
        );
        calls.push(done);
    }
    // A last change as a barrier: each stream delivers in order, so once
    // every stream has heard it, any late or spurious notification sent
    // before it has been counted too.
    std::fs::remove_file(plugins_dir.join(SWAP_FILE))?;
    wait_tools(&admin, RELOAD_WAIT, |names| names.is_empty()).await?;
    changes += 1;
    wait_notified(&counts, changes).await?;
    let received: Vec<usize> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    for stream in &streams {
        stream.abort();
    }

    // Between the first call seen on a version and the next good rename, every
    // call that both started and finished in that window must have been
    // answered by that version: the bad swaps in between changed nothing.
    let mut windows = vec![(load_started, swaps[0].renamed, Version::Hostile)];
    for (k, swap) in swaps.iter().enumerate() {
        let until = swaps.get(k + 1).map_or(stopped, |next| next.renamed);
        windows.push((swap.seen, until, swap.version));
    }
    let mut checked = 0;
    let mut stale = Vec::new();
    for call in calls.iter().flatten() {
        for &(from, until, version) in &windows {
            if call.start >= from && call.end < until {
                checked += 1;
                if call.version != version {
                    stale.push(format!(
                        "call at +{} answered by {:?}, expected {version:?}",
                        ms(call.start - load_started),
                        call.version
                    ));
                }
            }
        }
    }

    let total: usize = calls.iter().map(Vec::len).sum();
    let failures = load.failures.load(Ordering::Relaxed);
    let elapsed = stopped - load_started;
    eprintln!(
        "reload_load: {total} successful calls ({:.0}/s) in {:.1} s, {failures} failed; \
         {checked} checked against the serving version, {} stale",
        total as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        stale.len()
    );
    eprintln!("reload_load: list_changed per stream {received:?}, expected {changes} each");
    // The server's own account: when each generation was swapped in (log
    // time of "plugins reloaded"), to tell server latency from observation.
    let mut swapped_in = Vec::new();
    for line in server.stderr().lines() {
        let Ok(entry) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let fields = &entry["fields"];
        if fields["message"] == "plugins reloaded"
            && let Some(at) = entry["timestamp"].as_str().and_then(log_seconds_of_day)
        {
            swapped_in.push(at);
        }
        if fields["message"] == "plugin loaded" && fields["plugin"] == "swap" {
            eprintln!(
                "reload_load: server loaded swap.wasm ({} tools) from_cache={} in {} ms",
                fields["tools"], fields["from_cache"], fields["elapsed_ms"]
            );
        }
    }
    for swap in &swaps {
        let server_ms = swapped_in
            .iter()
            .find(|&&at| at >= swap.renamed_wall)
            .map_or("?".to_string(), |at| {
                format!("{:.1} ms", (at - swap.renamed_wall) * 1000.0)
            });
        eprintln!(
            "reload_load: step {:2} {:?} {}: server swapped {server_ms} after the rename, \
             first call on it {}",
            swap.step,
            swap.version,
            if swap.first_seen {
                "first seen"
            } else {
                "cached"
            },
            ms(swap.seen - swap.renamed)
        );
    }

    ensure!(
        failures == 0,
        "{failures} calls failed under reload; first: {:#?}",
        lock(&load.samples)
    );
    ensure!(
        received.iter().all(|&n| n == changes),
        "every stream should see {changes} list_changed, got {received:?}"
    );
    ensure!(stale.is_empty(), "stale versions served: {stale:#?}");
    Ok(())
}
