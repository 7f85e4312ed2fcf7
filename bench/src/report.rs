//! The results of one benchmark run: what was measured, the targets
//! with pass/miss, the markdown tables printed at the end, and the JSON file
//! written for tooling.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::load::Run;
use crate::reload::ReloadResult;
use crate::server::StartTiming;
use crate::sessions::SessionsResult;
use crate::stats::ms;
use crate::sys::Memory;

/// How the run was set up, printed above the tables.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Setting {
    pub(crate) command: String,
    pub(crate) cores: usize,
    pub(crate) client_runtime: String,
    pub(crate) tool: String,
    pub(crate) duration_secs: f64,
    pub(crate) warmup_secs: f64,
    pub(crate) rounds: usize,
    pub(crate) calls: u64,
    pub(crate) calls_connections: usize,
    pub(crate) sessions: usize,
    /// Configuration overrides given to toolhost (none: its defaults).
    pub(crate) server_env: Vec<String>,
    pub(crate) loadavg_start: String,
    pub(crate) loadavg_end: String,
}

/// Both servers at one concurrency.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Level {
    pub(crate) connections: usize,
    /// The best round of each (highest throughput): on a shared machine the
    /// best round is the one least disturbed by other work.
    pub(crate) toolhost: Run,
    pub(crate) echo: Run,
    /// toolhost calls/s ÷ echo requests/s.
    pub(crate) ratio: f64,
    /// toolhost server CPU per call ÷ echo server CPU per request.
    pub(crate) cpu_ratio: f64,
    /// Server memory after this level.
    pub(crate) memory_after: Memory,
    pub(crate) rounds: Vec<Run>,
}

impl Level {
    pub(crate) fn new(connections: usize, rounds: Vec<Run>, memory_after: Memory) -> Option<Level> {
        let best = |target: &str| {
            rounds
                .iter()
                .filter(|r| r.target == target)
                .max_by(|a, b| a.per_sec.total_cmp(&b.per_sec))
                .cloned()
        };
        let toolhost = best("toolhost")?;
        let echo = best("echo")?;
        Some(Level {
            connections,
            ratio: ratio(toolhost.per_sec, echo.per_sec),
            cpu_ratio: ratio(toolhost.server_cpu_us, echo.server_cpu_us),
            toolhost,
            echo,
            memory_after,
            rounds,
        })
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// The same toolhost with rate limits and the audit log on, and off.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct FrontDoor {
    /// Best round of each.
    pub(crate) on: Option<Run>,
    pub(crate) off: Option<Run>,
    /// Calls/s with both on ÷ calls/s with both off.
    pub(crate) ratio: f64,
    pub(crate) rounds: Vec<Run>,
}

impl FrontDoor {
    pub(crate) fn new(rounds: Vec<Run>) -> FrontDoor {
        let best = |on: bool| {
            rounds
                .iter()
                .filter(|r| (r.target == "toolhost") == on)
                .max_by(|a, b| a.per_sec.total_cmp(&b.per_sec))
                .cloned()
        };
        let (on, off) = (best(true), best(false));
        let ratio = match (&on, &off) {
            (Some(on), Some(off)) => ratio(on.per_sec, off.per_sec),
            _ => 0.0,
        };
        FrontDoor {
            on,
            off,
            ratio,
            rounds,
        }
    }
}

/// The `--calls` phase: many calls on one server, memory before and after.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ManyCalls {
    pub(crate) run: Run,
    pub(crate) before: Memory,
    pub(crate) after: Memory,
}

/// One target of the issue, judged.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Check {
    pub(crate) what: String,
    pub(crate) measured: String,
    pub(crate) target: String,
    pub(crate) pass: bool,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) setting: Setting,
    pub(crate) cold_start: StartTiming,
    /// Resident after the cold start's first calls.
    pub(crate) cold_rss: Memory,
    pub(crate) warm_starts: Vec<StartTiming>,
    pub(crate) idle: Memory,
    /// Percent of one core the server uses while nobody calls it.
    pub(crate) idle_cpu_percent: f64,
    pub(crate) many_calls: ManyCalls,
    pub(crate) levels: Vec<Level>,
    pub(crate) front_door: FrontDoor,
    pub(crate) reload: ReloadResult,
    pub(crate) sessions: SessionsResult,
    /// Cluster mode against the embedded default, unless skipped.
    pub(crate) cluster: Option<crate::cluster::ClusterResult>,
    pub(crate) server_survived: bool,
    pub(crate) checks: Vec<Check>,
}

/// The median first-call time of the warm starts.
pub(crate) fn warm_median_ms(warm: &[StartTiming]) -> f64 {
    let mut times: Vec<f64> = warm.iter().map(|t| t.first_call_ms).collect();
    times.sort_by(f64::total_cmp);
    times.get(times.len() / 2).copied().unwrap_or(0.0)
}

/// Errors of every round at a level, warm-up included: a target is met only
/// when no round of either server failed a call.
fn level_errors(level: &Level) -> u64 {
    level.rounds.iter().map(|r| r.errors).sum()
}

/// " (N errors)" when there were any, so a table never shows a passing
/// figure without its failures.
fn with_errors(measured: String, errors: u64) -> String {
    if errors == 0 {
        measured
    } else {
        format!("{measured}, {errors} errors")
    }
}

/// The throughput and latency targets of one concurrency level.
fn level_checks(level: &Level) -> Vec<Check> {
    let mut checks = Vec::new();
    let errors = level_errors(level);
    if level.connections == 16 || level.connections == 256 {
        checks.push(Check {
            what: format!("throughput at {} connections vs echo", level.connections),
            measured: with_errors(
                format!(
                    "{:.2}× ({:.0} / {:.0} per s)",
                    level.ratio, level.toolhost.per_sec, level.echo.per_sec
                ),
                errors,
            ),
            target: "≥ 0.5×, no errors".into(),
            pass: errors == 0 && level.ratio >= 0.5,
        });
    }
    if level.connections == 16 {
        let l = &level.toolhost.latency;
        checks.push(Check {
            what: "p50 latency at 16 connections".into(),
            measured: with_errors(format!("{:.3} ms", ms(l.p50_us)), errors),
            target: "≤ 0.5 ms, no errors".into(),
            pass: errors == 0 && l.samples > 0 && l.p50_us <= 500,
        });
        checks.push(Check {
            what: "p99 latency at 16 connections".into(),
            measured: with_errors(format!("{:.3} ms", ms(l.p99_us)), errors),
            target: "≤ 3 ms, no errors".into(),
            pass: errors == 0 && l.samples > 0 && l.p99_us <= 3000,
        });
    }
    checks
}

/// The cluster-mode targets: a shared budget's Redis round trip may cost a
/// call little throughput and latency.
fn cluster_checks(c: &crate::cluster::ClusterResult) -> Vec<Check> {
    let errors: u64 = c.rounds.iter().map(|r| r.errors).sum();
    let throughput = ratio(c.cluster_16.best.per_sec, c.embedded_16.best.per_sec);
    let added_us = f64::from(c.cluster_1.best_p50_us) - f64::from(c.embedded_1.best_p50_us);
    vec![
        Check {
            what: "cluster mode, one replica, 16 connections: throughput vs embedded".into(),
            measured: with_errors(
                format!(
                    "{throughput:.2}× ({:.0} / {:.0} per s)",
                    c.cluster_16.best.per_sec, c.embedded_16.best.per_sec
                ),
                errors,
            ),
            target: "≥ 0.8×, no errors".into(),
            pass: errors == 0 && throughput >= 0.8,
        },
        Check {
            what: "p50 a shared rate check adds (cluster − embedded, 1 connection)".into(),
            measured: format!(
                "{:+.3} ms ({:.3} vs {:.3} ms)",
                added_us / 1000.0,
                ms(c.cluster_1.best_p50_us),
                ms(c.embedded_1.best_p50_us)
            ),
            target: "≤ 0.2 ms".into(),
            pass: errors == 0 && added_us <= 200.0,
        },
    ]
}

impl Report {
    /// Judges the targets against the measurements.
    pub(crate) fn judge(&mut self) {
        let mut checks = Vec::new();
        for level in &self.levels {
            checks.extend(level_checks(level));
        }
        let door = &self.front_door;
        if let (Some(on), Some(off)) = (&door.on, &door.off) {
            checks.push(Check {
                what: format!(
                    "cost of rate limits and audit at {} connections (on ÷ off)",
                    on.connections
                ),
                measured: format!(
                    "{:.2}× ({:.0} / {:.0} per s)",
                    door.ratio, on.per_sec, off.per_sec
                ),
                target: "≥ 0.9×".into(),
                pass: door.ratio >= 0.9 && on.errors == 0 && off.errors == 0,
            });
        }
        if let Some(cluster) = &self.cluster {
            checks.extend(cluster_checks(cluster));
        }
        let reload = &self.reload;
        checks.push(Check {
            what: format!(
                "hot reload: rename → calls reach the new plugin ({} swaps)",
                reload.add_ms.len()
            ),
            measured: format!(
                "median {:.1} ms, worst {:.1} ms",
                ReloadResult::median(&reload.add_ms),
                reload.worst_add_ms()
            ),
            target: "≤ 300 ms".into(),
            pass: !reload.add_ms.is_empty() && reload.worst_add_ms() <= 300.0,
        });
        let warm = warm_median_ms(&self.warm_starts);
        checks.push(Check {
            what: "warm cold-start (spawn → first tools/call)".into(),
            measured: format!("{warm:.1} ms (median of {})", self.warm_starts.len()),
            target: "≤ 50 ms".into(),
            pass: !self.warm_starts.is_empty() && warm <= 50.0,
        });
        checks.push(Check {
            what: "RSS after a first start that compiled the plugins".into(),
            measured: format!(
                "{:.1} MiB (peak {:.1} MiB)",
                self.cold_rss.rss_mib(),
                self.cold_rss.peak_kib as f64 / 1024.0
            ),
            target: "≤ 40 MB".into(),
            pass: self.cold_rss.rss_kib <= 40 * 1024,
        });
        checks.push(Check {
            what: "idle RSS after start".into(),
            measured: format!("{:.1} MiB", self.idle.rss_mib()),
            target: "≤ 32 MB".into(),
            pass: self.idle.rss_kib <= 32 * 1024,
        });
        let calls = &self.many_calls;
        checks.push(Check {
            what: format!("RSS after {} calls", thousands(calls.run.completed)),
            measured: format!(
                "{:.1} MiB (peak {:.1} MiB)",
                calls.after.rss_mib(),
                calls.after.peak_mib()
            ),
            target: format!("≤ 64 MB (after {} calls)", thousands(self.setting.calls)),
            pass: calls.after.rss_kib <= 64 * 1024
                && calls.run.errors == 0
                && calls.run.completed == self.setting.calls,
        });
        let s = &self.sessions;
        checks.push(Check {
            what: format!("{} concurrent sessions", thousands(s.requested as u64)),
            measured: format!(
                "{} opened, {} pinged, {} errors",
                thousands(s.opened as u64),
                thousands(s.pinged),
                s.errors()
            ),
            target: "no errors".into(),
            pass: s.all_ok(),
        });
        self.checks = checks;
    }

    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        let s = &self.setting;
        let _ = writeln!(out, "## toolhost benchmark\n");
        let _ = writeln!(out, "`{}`\n", s.command);
        let _ = writeln!(
            out,
            "{} cores shared by server and load generator ({}); {} over HTTPS/1.1 keep-alive \
             (TLS 1.3), one connection per worker; {} s per level after {} s warm-up, best of {} \
             round(s) per server; load average {} at start, {} at end.\n",
            s.cores,
            s.client_runtime,
            s.tool,
            s.duration_secs,
            s.warmup_secs,
            s.rounds,
            s.loadavg_start,
            s.loadavg_end
        );
        if !s.server_env.is_empty() {
            let _ = writeln!(out, "toolhost started with `{}`.\n", s.server_env.join(" "));
        }
        let _ = writeln!(out, "### Throughput and latency\n");
        let _ = writeln!(
            out,
            "| conns | server | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | server CPU µs/req | server page faults/req | client CPU µs/req | errors |"
        );
        let _ = writeln!(
            out,
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for level in &self.levels {
            for run in [&level.toolhost, &level.echo] {
                let l = &run.latency;
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2} | {:.1} | {:.1} | {:.1} | {} |",
                    run.connections,
                    run.target,
                    run.per_sec,
                    ms(l.p50_us),
                    ms(l.p90_us),
                    ms(l.p99_us),
                    ms(l.p999_us),
                    ms(l.max_us),
                    run.server_cpu_us,
                    run.server_faults,
                    run.client_cpu_us,
                    run.errors
                );
            }
            let _ = writeln!(
                out,
                "| {} | **toolhost / echo** | **{:.2}×** | | | | | | {:.1}× | | | |",
                level.connections, level.ratio, level.cpu_ratio
            );
        }
        if let (Some(on), Some(off)) = (&self.front_door.on, &self.front_door.off) {
            let _ = writeln!(
                out,
                "\n### Front door: rate limits and audit log on vs off\n"
            );
            let _ = writeln!(
                out,
                "| conns | server | req/s | p50 ms | p99 ms | server CPU µs/req | errors |"
            );
            let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---:|");
            for run in [on, off] {
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.0} | {:.3} | {:.3} | {:.1} | {} |",
                    run.connections,
                    run.target,
                    run.per_sec,
                    ms(run.latency.p50_us),
                    ms(run.latency.p99_us),
                    run.server_cpu_us,
                    run.errors
                );
            }
            let _ = writeln!(
                out,
                "| {} | **on / off** | **{:.2}×** | | | | |",
                on.connections, self.front_door.ratio
            );
        }
        if let Some(c) = &self.cluster {
            let _ = writeln!(
                out,
                "\n### Cluster mode (PostgreSQL + Redis) vs embedded\n\n\
                 Best round of each (highest throughput); p50 is the lowest of the rounds. \
                 Three replicas share this machine's two cores with the load generator, so \
                 that row measures the overhead of three processes and a balancer, not scaling.\n"
            );
            let _ = writeln!(
                out,
                "| conns | server | req/s | p50 ms | p99 ms | server CPU µs/req | errors |"
            );
            let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---:|");
            for (label, side) in [
                ("embedded", &c.embedded_1),
                ("cluster, one replica", &c.cluster_1),
                ("embedded", &c.embedded_16),
                ("cluster, one replica", &c.cluster_16),
                ("cluster, one replica (again)", &c.one_replica),
                (
                    "cluster, three replicas behind round robin",
                    &c.three_replicas,
                ),
            ] {
                let run = &side.best;
                let _ = writeln!(
                    out,
                    "| {} | {label} | {:.0} | {:.3} | {:.3} | {:.1} | {} |",
                    run.connections,
                    run.per_sec,
                    ms(side.best_p50_us),
                    ms(run.latency.p99_us),
                    run.server_cpu_us,
                    run.errors
                );
            }
        }
        let r = &self.reload;
        let _ = writeln!(out, "\n### Hot reload (ms)\n");
        let _ = writeln!(out, "| event | median | worst |");
        let _ = writeln!(out, "|---|---:|---:|");
        let _ = writeln!(
            out,
            "| first rename → first call served (compiles the component) | {:.1} | {:.1} |",
            r.first_add_ms, r.first_add_ms
        );
        let _ = writeln!(
            out,
            "| rename → first call served, {} times (compiled code cached) | {:.1} | {:.1} |",
            r.add_ms.len(),
            ReloadResult::median(&r.add_ms),
            r.worst_add_ms()
        );
        let _ = writeln!(
            out,
            "| delete → tool gone, {} times | {:.1} | {:.1} |",
            r.remove_ms.len(),
            ReloadResult::median(&r.remove_ms),
            r.remove_ms.iter().copied().fold(0.0, f64::max)
        );
        let _ = writeln!(out, "\n### Start-up (spawn → …, ms)\n");
        let _ = writeln!(
            out,
            "| start | banner | token minted | TLS handshake done | session open | first call answered | the next call alone |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
        let starts = std::iter::once(("cold (fresh data dir)".to_string(), &self.cold_start))
            .chain(
                self.warm_starts
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (format!("warm {}", i + 1), t)),
            );
        for (label, t) in starts {
            let _ = writeln!(
                out,
                "| {label} | {:.1} | {} | {:.1} | {:.1} | **{:.1}** | {:.2} |",
                t.banner_ms,
                t.token_ms
                    .map_or_else(|| "before spawn".to_string(), |ms| format!("{ms:.1}")),
                t.connected_ms,
                t.session_ms,
                t.first_call_ms,
                t.second_call_ms
            );
        }
        let _ = writeln!(out, "\n### Memory and sessions\n");
        let _ = writeln!(out, "| measure | value |");
        let _ = writeln!(out, "|---|---|");
        let _ = writeln!(
            out,
            "| idle RSS after start (devtools + conformance) | {:.1} MiB |",
            self.idle.rss_mib()
        );
        let _ = writeln!(
            out,
            "| idle server CPU | {:.2}% of a core |",
            self.idle_cpu_percent
        );
        let calls = &self.many_calls;
        let _ = writeln!(
            out,
            "| {} calls at {} connections | {:.1} s, {:.0} calls/s, p50 {:.3} ms, p99 {:.3} ms, {} errors |",
            thousands(calls.run.completed),
            calls.run.connections,
            calls.run.window_secs,
            calls.run.per_sec,
            ms(calls.run.latency.p50_us),
            ms(calls.run.latency.p99_us),
            calls.run.errors
        );
        let _ = writeln!(
            out,
            "| RSS before → after those calls | {:.1} → {:.1} MiB (peak {:.1} MiB) |",
            calls.before.rss_mib(),
            calls.after.rss_mib(),
            calls.after.peak_mib()
        );
        for level in &self.levels {
            let _ = writeln!(
                out,
                "| RSS after the {}-connection level | {:.1} MiB (peak {:.1} MiB) |",
                level.connections,
                level.memory_after.rss_mib(),
                level.memory_after.peak_mib()
            );
        }
        let se = &self.sessions;
        let _ = writeln!(
            out,
            "| {} sessions over {} connections (fresh server) | opened in {:.2} s ({} errors), pinged in {:.2} s ({} errors) |",
            thousands(se.requested as u64),
            se.connections,
            se.open_secs,
            se.open_errors,
            se.ping_secs,
            se.ping_errors
        );
        let _ = writeln!(
            out,
            "| RSS before → after the sessions | {:.1} → {:.1} MiB ({:.2} KiB per session) |",
            se.before.rss_mib(),
            se.after_ping.rss_mib(),
            se.kib_per_session()
        );
        let _ = writeln!(
            out,
            "| servers still running at the end | {} |",
            if self.server_survived {
                "yes"
            } else {
                "**no**"
            }
        );
        if let Some(err) = self.first_error() {
            let err: String = err.chars().take(300).collect();
            let err = err.replace('|', "\\|").replace(['\n', '`'], " ");
            let _ = writeln!(out, "| first error | `{err}` |");
        }
        let _ = writeln!(out, "\n### Targets\n");
        let _ = writeln!(out, "| target | measured | goal | |");
        let _ = writeln!(out, "|---|---|---|---|");
        for check in &self.checks {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                check.what,
                check.measured,
                check.target,
                if check.pass { "pass" } else { "**miss**" }
            );
        }
        out
    }

    fn first_error(&self) -> Option<&str> {
        self.levels
            .iter()
            .flat_map(|l| l.rounds.iter())
            .chain([&self.many_calls.run])
            .find_map(|r| r.first_error.as_deref())
            .or(self.sessions.first_error.as_deref())
    }

    pub(crate) fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let json = serde_json::to_vec_pretty(self)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))
    }
}

/// 1000000 → "1,000,000".
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Latency;

    fn run(target: &'static str, per_sec: f64, p50_us: u32, errors: u64) -> Run {
        Run {
            target,
            connections: 16,
            completed: 1000,
            errors,
            errors_in_window: errors,
            first_error: None,
            window_secs: 1.0,
            per_sec,
            latency: Latency {
                samples: 1000,
                mean_us: f64::from(p50_us),
                p50_us,
                p90_us: p50_us,
                p99_us: p50_us * 2,
                p999_us: p50_us * 2,
                max_us: p50_us * 3,
            },
            server_cpu_us: 10.0,
            client_cpu_us: 10.0,
            server_faults: 0.0,
        }
    }

    fn level(rounds: Vec<Run>) -> Level {
        Level::new(
            16,
            rounds,
            Memory {
                rss_kib: 0,
                peak_kib: 0,
            },
        )
        .expect("both servers ran")
    }

    fn verdicts(level: &Level) -> Vec<(String, bool)> {
        level_checks(level)
            .into_iter()
            .map(|c| (c.what, c.pass))
            .collect()
    }

    #[test]
    fn fast_error_free_rounds_meet_the_targets() {
        let level = level(vec![
            run("toolhost", 600.0, 400, 0),
            run("echo", 1000.0, 100, 0),
        ]);
        assert!(
            verdicts(&level).iter().all(|(_, pass)| *pass),
            "{:?}",
            verdicts(&level)
        );
    }

    #[test]
    fn any_error_misses_every_target_of_the_level() {
        // The best round is clean, but another round of the same level failed calls.
        let level = level(vec![
            run("toolhost", 600.0, 400, 0),
            run("toolhost", 500.0, 400, 3),
            run("echo", 1000.0, 100, 0),
        ]);
        let checks = level_checks(&level);
        assert_eq!(checks.len(), 3);
        assert!(checks.iter().all(|c| !c.pass));
        assert!(checks.iter().all(|c| c.measured.ends_with(", 3 errors")));
    }

    #[test]
    fn errors_of_the_baseline_count_too() {
        let level = level(vec![
            run("toolhost", 600.0, 400, 0),
            run("echo", 1000.0, 100, 1),
        ]);
        assert!(!level_checks(&level)[0].pass);
    }

    #[test]
    fn slow_or_low_throughput_misses() {
        let slow = level(vec![
            run("toolhost", 600.0, 501, 0),
            run("echo", 1000.0, 100, 0),
        ]);
        assert_eq!(
            verdicts(&slow),
            [
                ("throughput at 16 connections vs echo".to_string(), true),
                ("p50 latency at 16 connections".to_string(), false),
                ("p99 latency at 16 connections".to_string(), true),
            ]
        );
        let low = level(vec![
            run("toolhost", 499.0, 400, 0),
            run("echo", 1000.0, 100, 0),
        ]);
        assert!(!level_checks(&low)[0].pass);
    }

    #[test]
    fn groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
