//! `toolhost-bench`: the benchmark behind `cargo xtask bench`. In one run it
//! measures toolhost's `tools/call` throughput and latency against an
//! in-process axum + rustls echo baseline, cold and warm start-up, idle
//! memory, memory after many calls, and 10,000 concurrent sessions, then
//! prints markdown tables with the targets and writes
//! `target/bench/results.json`.
//!
//! This file owns the command line, the runtimes and the order of phases;
//! each phase lives in its own module.

mod cluster;
mod conn;
mod echo;
mod load;
mod mcp;
mod reload;
mod report;
mod server;
mod sessions;
mod stats;
mod sys;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

use crate::load::{Budget, CpuProbe, ServerCpu};
use crate::mcp::{Kind, Target, Tool};
use crate::report::{FrontDoor, Level, ManyCalls, Report, Setting};
use crate::server::{Setup, Toolhost};

/// Plugins the server is started with (the product and the conformance fixtures).
const PLUGINS: &[&str] = &["devtools", "conformance"];

/// Configuration every toolhost start gets, before `--server-env`: the
/// benchmark measures capacity, so the per-client call budget (100 calls per
/// hour by default) is raised out of reach, but still checked on every
/// call; the metrics listener takes any free port instead of the fixed
/// 9464 that another server on the machine may hold; and one public URL. Everything else
/// (audit log with fsync, metrics) stays at its default.
const SERVER_ENV: &[(&str, &str)] = &[
    ("TOOLHOST_LIMITS__TOOL_CALLS_PER_HOUR", "4000000000"),
    ("TOOLHOST_LIMITS__TOOL_CALLS_BURST", "1000000000"),
    ("TOOLHOST_METRICS__LISTEN", "127.0.0.1:0"),
    // Each start binds a free port; one public URL keeps the issuer and
    // audience the same across starts, so a token minted before a warm
    // start (from the data dir's published issuer) is valid for it.
    ("TOOLHOST_SERVER__PUBLIC_URL", "https://127.0.0.1:7443"),
];

/// What the front-door comparison turns off: the call budget and the audit log.
const BARE_ENV: &[(&str, &str)] = &[
    ("TOOLHOST_LIMITS__TOOL_CALLS_PER_HOUR", "0"),
    ("TOOLHOST_AUDIT__ENABLED", "false"),
];

/// Connections for the front-door comparison (the reference level).
const FRONT_DOOR_CONNECTIONS: usize = 16;

/// How long the idle server's CPU use is watched.
const IDLE_WINDOW: Duration = Duration::from_secs(2);

/// Name prefix of the load generator's threads when it runs multi-threaded.
const CLIENT_THREAD_NAME: &str = "bench-client";

#[derive(Parser, Debug)]
#[command(
    name = "toolhost-bench",
    about = "Benchmark toolhost against an axum+rustls echo baseline (run through `cargo xtask bench`)"
)]
struct Args {
    /// Seconds measured per concurrency level and server.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of load before each measured window.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Concurrency levels (connections), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    connections: Vec<usize>,
    /// Rounds per level; toolhost and echo alternate, the best round counts.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Calls made before reading the server's memory again.
    #[arg(long, default_value_t = 1_000_000)]
    calls: u64,
    /// Connections used for the `--calls` phase.
    #[arg(long, default_value_t = 16)]
    calls_connections: usize,
    /// Give up on the `--calls` phase after this many seconds.
    #[arg(long, default_value_t = 900.0)]
    calls_timeout: f64,
    /// Sessions held open at once.
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// Connections the sessions are opened and pinged over.
    #[arg(long, default_value_t = 8)]
    session_connections: usize,
    /// Warm starts (same data dir) to time after the cold one.
    #[arg(long, default_value_t = 5)]
    warm_starts: usize,
    /// The tool called under load (`simple-text` separates the plugin's
    /// own work from the host's).
    #[arg(long, value_enum, default_value = "hash")]
    tool: Tool,
    /// Load generator threads: 0 runs it on one current-thread runtime.
    #[arg(long, default_value_t = 0)]
    client_threads: usize,
    /// Extra environment for every toolhost start, e.g.
    /// `TOOLHOST_AUDIT__FSYNC=never` to see what a setting costs; repeatable.
    #[arg(long = "server-env", value_name = "KEY=VALUE", value_parser = parse_env)]
    server_env: Vec<(String, String)>,
    /// The release `toolhost` binary.
    #[arg(long, env = "TOOLHOST_BIN")]
    bin: Option<PathBuf>,
    /// Directory holding devtools.wasm and conformance.wasm (`cargo xtask
    /// bench` assembles `target/bench-plugins`).
    #[arg(long, env = "TOOLHOST_PLUGINS")]
    plugins: Option<PathBuf>,
    /// Where to write the JSON results.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Skip the cluster phase (its own PostgreSQL and Redis, three replicas).
    #[arg(long)]
    skip_cluster: bool,
}

impl Args {
    /// Keeps every loop bounded in count and time.
    fn validate(&self) -> anyhow::Result<()> {
        let seconds = |v: f64, name: &str, max: f64| {
            if !(v.is_finite() && v >= 0.0 && v <= max) {
                bail!("--{name} must be between 0 and {max} seconds");
            }
            Ok(())
        };
        seconds(self.duration, "duration", 600.0)?;
        seconds(self.warmup, "warmup", 60.0)?;
        seconds(self.calls_timeout, "calls-timeout", 3600.0)?;
        if self.duration <= 0.0 {
            bail!("--duration must be positive");
        }
        if self.connections.is_empty() || self.connections.iter().any(|&c| c == 0 || c > 4096) {
            bail!("--connections must list levels between 1 and 4096");
        }
        if self.rounds == 0 || self.rounds > 20 {
            bail!("--rounds must be between 1 and 20");
        }
        if self.calls == 0 || self.calls > 100_000_000 {
            bail!("--calls must be between 1 and 100,000,000");
        }
        if self.calls_connections == 0 || self.calls_connections > 4096 {
            bail!("--calls-connections must be between 1 and 4096");
        }
        // toolhost refuses sessions beyond mcp.max_sessions (default
        // 100,000), and the load phases hold a few hundred of their own.
        if self.sessions == 0 || self.sessions > 90_000 {
            bail!("--sessions must be between 1 and 90,000");
        }
        if self.session_connections == 0 || self.session_connections > 256 {
            bail!("--session-connections must be between 1 and 256");
        }
        if self.warm_starts == 0 || self.warm_starts > 50 {
            bail!("--warm-starts must be between 1 and 50");
        }
        if self.client_threads > 64 {
            bail!("--client-threads must be at most 64");
        }
        Ok(())
    }
}

fn parse_env(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((key, value)) if key.starts_with("TOOLHOST_") => Ok((key.into(), value.into())),
        _ => Err(format!("expected TOOLHOST_...=VALUE, got {arg:?}")),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn main() -> anyhow::Result<()> {
    // `cargo xtask bench -- --duration 3` hands the `--` through; the flags
    // after it are still ours.
    let args = Args::parse_from(
        std::env::args_os()
            .enumerate()
            .filter(|(i, arg)| !(*i == 1 && arg == "--"))
            .map(|(_, arg)| arg),
    );
    args.validate()?;
    let root = workspace_root();
    let echo = echo::start()?;
    // The load generator shares two cores with the server it measures, so it
    // must leave the server as much CPU as possible. A current-thread runtime
    // caps it at one core with no work stealing. Measured here against a
    // one- and a two-thread runtime, its CPU per request and the throughput of
    // both servers were the same within the run-to-run noise of this shared
    // machine (12-25 µs per echo request, 40-60 µs per toolhost call), and a
    // two-thread client can take both cores from the server at peaks, so
    // current-thread is the default; `--client-threads` repeats the test.
    let client = if args.client_threads == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.client_threads)
            .thread_name(CLIENT_THREAD_NAME)
            .enable_all()
            .build()?
    };
    let report = client.block_on(run(&args, &root, &echo))?;
    drop(client);
    println!("{}", report.markdown());
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| root.join("target/bench/results.json"));
    report.write_json(&out)?;
    println!("results written to {}", out.display());
    Ok(())
}

/// Strategy: start-up first (it needs fresh processes), then one long-lived
/// server for idle memory, the many-calls phase, the throughput levels
/// (alternating with the echo baseline) and the sessions, so memory figures
/// describe one process's life.
async fn run(args: &Args, root: &Path, echo: &echo::Echo) -> anyhow::Result<Report> {
    let setting = Setting {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        client_runtime: if args.client_threads == 0 {
            "load generator on a current-thread runtime".into()
        } else {
            format!("load generator on {} threads", args.client_threads)
        },
        tool: args.tool.label().into(),
        duration_secs: args.duration,
        warmup_secs: args.warmup,
        rounds: args.rounds,
        calls: args.calls,
        calls_connections: args.calls_connections,
        sessions: args.sessions,
        server_env: server_env(args)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        loadavg_start: sys::loadavg(),
        loadavg_end: String::new(),
    };
    let setup = prepare(args, root)?;
    let data_dir = root.join("target/bench/work/data");
    let ticks = sys::clock_ticks_per_sec();

    eprintln!("bench: cold start (fresh data dir)");
    let (server, cold_start) = Toolhost::spawn_and_call(&setup, &data_dir, "cold").await?;
    // What a first start (which compiled every plugin) leaves resident.
    let cold_rss = sys::memory(server.pid)?;
    drop(server);
    let mut warm_starts = Vec::with_capacity(args.warm_starts);
    for i in 0..args.warm_starts {
        let (server, timing) =
            Toolhost::spawn_and_call(&setup, &data_dir, &format!("warm-{i}")).await?;
        drop(server);
        warm_starts.push(timing);
    }
    eprintln!(
        "bench: warm starts {:?} ms",
        warm_starts
            .iter()
            .map(|t| t.first_call_ms.round())
            .collect::<Vec<_>>()
    );

    let mut server = Toolhost::spawn(&setup, &data_dir, "main").await?;
    // Lets lazily started parts (epoch ticker, allocator arenas) settle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = sys::memory(server.pid)?;
    let idle_cpu_percent = idle_cpu(server.pid, IDLE_WINDOW).await;
    eprintln!(
        "bench: idle RSS {:.1} MiB, idle CPU {idle_cpu_percent:.2}% of a core",
        idle.rss_mib()
    );
    let toolhost_probe = CpuProbe {
        server: ServerCpu::Process(server.pid),
        not_client: echo::THREAD_NAME,
        ticks_per_sec: ticks,
    };

    eprintln!(
        "bench: {} calls at {} connections",
        args.calls, args.calls_connections
    );
    let before = sys::memory(server.pid)?;
    let run = load::run(
        &server.target,
        args.calls_connections,
        Budget::Count {
            calls: args.calls,
            limit: Duration::from_secs_f64(args.calls_timeout),
        },
        &toolhost_probe,
    )
    .await?;
    let after = sys::memory(server.pid)?;
    let many_calls = ManyCalls { run, before, after };

    let echo_target = Arc::new(Target {
        kind: Kind::Echo,
        tool: args.tool,
        addr: echo.addr,
        tls: echo.client_tls.clone(),
        authorization: None,
    });
    let echo_probe = CpuProbe {
        server: ServerCpu::OwnThreads(echo::THREAD_NAME),
        not_client: echo::THREAD_NAME,
        ticks_per_sec: ticks,
    };
    let budget = Budget::Timed {
        warmup: Duration::from_secs_f64(args.warmup),
        measure: Duration::from_secs_f64(args.duration),
    };
    let mut levels = Vec::with_capacity(args.connections.len());
    for &connections in &args.connections {
        let mut rounds = Vec::with_capacity(args.rounds * 2);
        for round in 0..args.rounds {
            // Alternate who goes first so slow drift in machine load does
            // not always favour the same server.
            let order = if round % 2 == 0 {
                [Kind::Toolhost, Kind::Echo]
            } else {
                [Kind::Echo, Kind::Toolhost]
            };
            for kind in order {
                let (target, probe) = match kind {
                    Kind::Toolhost => (&server.target, &toolhost_probe),
                    Kind::Echo => (&echo_target, &echo_probe),
                };
                let run = load::run(target, connections, budget, probe).await?;
                eprintln!(
                    "bench: {connections:>4} conns {:>8}: {:>8.0}/s p50 {:.3} ms p99 {:.3} ms, server {:.1} µs/req ({:.0} faults), client {:.1} µs/req, {} errors",
                    run.target,
                    run.per_sec,
                    stats::ms(run.latency.p50_us),
                    stats::ms(run.latency.p99_us),
                    run.server_cpu_us,
                    run.server_faults,
                    run.client_cpu_us,
                    run.errors
                );
                rounds.push(run);
            }
        }
        let memory_after = sys::memory(server.pid)?;
        levels.extend(Level::new(connections, rounds, memory_after));
    }

    // What rate limits and the audit log cost: two fresh servers, one as
    // configured and one with both off, in alternating rounds. Fresh, so
    // neither carries what the phases above left behind (a long audit
    // file, allocator state).
    eprintln!(
        "bench: front door (limits and audit) on vs off at {FRONT_DOOR_CONNECTIONS} connections"
    );
    let mut bare_setup = setup.clone();
    bare_setup
        .env
        .extend(BARE_ENV.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let guarded = Toolhost::spawn(
        &setup,
        &root.join("target/bench/work/data-guarded"),
        "guarded",
    )
    .await?;
    let guarded_probe = CpuProbe {
        server: ServerCpu::Process(guarded.pid),
        not_client: echo::THREAD_NAME,
        ticks_per_sec: ticks,
    };
    let bare = Toolhost::spawn(
        &bare_setup,
        &root.join("target/bench/work/data-bare"),
        "bare",
    )
    .await?;
    let bare_probe = CpuProbe {
        server: ServerCpu::Process(bare.pid),
        not_client: echo::THREAD_NAME,
        ticks_per_sec: ticks,
    };
    let mut front_door_rounds = Vec::with_capacity(args.rounds * 2);
    for round in 0..args.rounds {
        let on = (&guarded.target, &guarded_probe);
        let off = (&bare.target, &bare_probe);
        let order = if round % 2 == 0 { [on, off] } else { [off, on] };
        for (target, probe) in order {
            let mut run = load::run(target, FRONT_DOOR_CONNECTIONS, budget, probe).await?;
            if Arc::ptr_eq(target, &bare.target) {
                run.target = "toolhost without limits and audit";
            }
            eprintln!(
                "bench: {:>34}: {:>8.0}/s p50 {:.3} ms, server {:.1} µs/req, {} errors",
                run.target,
                run.per_sec,
                stats::ms(run.latency.p50_us),
                run.server_cpu_us,
                run.errors
            );
            front_door_rounds.push(run);
        }
    }
    drop(bare);
    drop(guarded);
    let front_door = FrontDoor::new(front_door_rounds);

    let mut survived = server.alive();
    drop(server);

    let cluster = if args.skip_cluster {
        None
    } else {
        eprintln!("bench: cluster mode (PostgreSQL + Redis) vs embedded, and three replicas");
        Some(
            cluster::measure(
                &setup,
                &root.join("target/bench/work"),
                budget,
                args.rounds,
                ticks,
                echo::THREAD_NAME,
            )
            .await?,
        )
    };

    // A fresh server, so the memory growth is the sessions' alone and not
    // hidden in what the load phases left allocated.
    eprintln!(
        "bench: {} sessions over {} connections",
        args.sessions, args.session_connections
    );
    eprintln!("bench: hot-reload delay (rename → first call served, delete → refused)");
    let reload = reload::measure(
        &setup,
        &setup.plugins.join("conformance.wasm"),
        &root.join("target/bench/work"),
    )
    .await?;
    eprintln!(
        "bench: reload: first add {:.1} ms (compiles), adds median {:.1} ms worst {:.1} ms, removals median {:.1} ms",
        reload.first_add_ms,
        reload::ReloadResult::median(&reload.add_ms),
        reload.worst_add_ms(),
        reload::ReloadResult::median(&reload.remove_ms)
    );

    let mut server = Toolhost::spawn(&setup, &data_dir, "sessions").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sessions = sessions::hold(
        &server.target,
        server.pid,
        args.sessions,
        args.session_connections,
    )
    .await?;
    survived &= server.alive();
    drop(server);

    let mut report = Report {
        setting: Setting {
            loadavg_end: sys::loadavg(),
            ..setting
        },
        cold_start,
        cold_rss,
        warm_starts,
        idle,
        idle_cpu_percent,
        many_calls,
        levels,
        front_door,
        reload,
        sessions,
        cluster,
        server_survived: survived,
        checks: Vec::new(),
    };
    report.judge();
    Ok(report)
}

/// Percent of one core the server uses over `window` while nobody calls it.
async fn idle_cpu(pid: u32, window: Duration) -> f64 {
    let before = sys::process_cpu_ns(pid);
    tokio::time::sleep(window).await;
    let used = sys::process_cpu_ns(pid).saturating_sub(before);
    used as f64 / window.as_nanos() as f64 * 100.0
}

/// [`SERVER_ENV`] followed by `--server-env`, so the latter wins.
fn server_env(args: &Args) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = SERVER_ENV
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    // All bench sessions come from one address, and toolhost caps sessions
    // per client (20,000 by default); only raised when the run needs it.
    if args.sessions > 16_000 {
        env.push((
            "TOOLHOST_MCP__MAX_SESSIONS_PER_CLIENT".into(),
            (args.sessions + 4096).to_string(),
        ));
    }
    env.extend(args.server_env.iter().cloned());
    env
}

/// A fresh work dir with the bundled plugins copied in and no data dir, so
/// the first start is cold (no certificate, no compiled-code cache).
fn prepare(args: &Args, root: &Path) -> anyhow::Result<Setup> {
    let bin = args
        .bin
        .clone()
        .unwrap_or_else(|| root.join("target/release/toolhost"));
    let source = args
        .plugins
        .clone()
        .unwrap_or_else(|| root.join("target/bench-plugins"));
    let work = root.join("target/bench/work");
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("clearing {}", work.display()))?;
    }
    let plugins = work.join("plugins");
    std::fs::create_dir_all(&plugins)?;
    for name in PLUGINS {
        let from = source.join(format!("{name}.wasm"));
        std::fs::copy(&from, plugins.join(format!("{name}.wasm"))).with_context(|| {
            format!(
                "copying {} (run through `cargo xtask bench`, which builds it)",
                from.display()
            )
        })?;
    }
    anyhow::ensure!(
        bin.is_file(),
        "{} is missing (run through `cargo xtask bench`, which builds it)",
        bin.display()
    );
    Ok(Setup {
        bin,
        plugins,
        logs: work.join("logs"),
        env: server_env(args),
        tool: args.tool,
    })
}
