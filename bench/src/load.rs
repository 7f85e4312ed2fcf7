//! The load generator: a fixed number of tasks, each owning one kept-alive
//! connection and sending the next request as soon as the previous answer
//! is in (closed loop), for a fixed time after a warm-up or for a fixed
//! number of calls.
//!
//! It also samples CPU time of the server and of the client around the
//! measured window, so results can be read per request and not only per
//! second.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Barrier, watch};

use crate::mcp::{CallError, Caller, Target};
use crate::stats::Latency;
use crate::sys::{self, Usage};

/// How long a load lasts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Budget {
    /// Run for `warmup`, then measure for `measure`.
    Timed { warmup: Duration, measure: Duration },
    /// Make `calls` calls across all connections, measured from the start,
    /// giving up at `limit`.
    Count { calls: u64, limit: Duration },
}

/// Whose CPU time counts as the server's.
#[derive(Clone, Debug)]
pub(crate) enum ServerCpu {
    /// A separate process (toolhost).
    Process(u32),
    /// Several (replicas), summed.
    Processes(Vec<u32>),
    /// This process's threads with this name prefix (the echo baseline).
    OwnThreads(&'static str),
}

/// Reads the CPU time of server and client.
#[derive(Clone, Debug)]
pub(crate) struct CpuProbe {
    pub(crate) server: ServerCpu,
    /// Threads of this process that are not the client (the echo server,
    /// idle while toolhost is measured).
    pub(crate) not_client: &'static str,
    pub(crate) ticks_per_sec: u64,
}

#[derive(Clone, Copy)]
struct CpuSample {
    server: Usage,
    client: Usage,
}

impl CpuProbe {
    fn sample(&self) -> CpuSample {
        let own = sys::process_usage(std::process::id());
        let others = sys::own_threads_usage(self.not_client);
        let server = match &self.server {
            ServerCpu::Process(pid) => sys::process_usage(*pid),
            ServerCpu::Processes(pids) => pids
                .iter()
                .map(|pid| sys::process_usage(*pid))
                .fold(sys::Usage::default(), |sum, u| sum + u),
            ServerCpu::OwnThreads(prefix) => sys::own_threads_usage(prefix),
        };
        CpuSample {
            server,
            client: own.since(others),
        }
    }

    /// Microseconds of CPU per completed request.
    fn per_request(&self, used: Usage, requests: u64) -> f64 {
        if requests == 0 {
            return 0.0;
        }
        used.ticks as f64 * 1e6 / self.ticks_per_sec as f64 / requests as f64
    }
}

fn faults_per_request(used: Usage, requests: u64) -> f64 {
    if requests == 0 {
        return 0.0;
    }
    used.minor_faults as f64 / requests as f64
}

/// One load's outcome.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Run {
    pub(crate) target: &'static str,
    pub(crate) connections: usize,
    /// Successful calls answered inside the measured window.
    pub(crate) completed: u64,
    /// Failed calls or connections, warm-up included.
    pub(crate) errors: u64,
    /// Of those, the ones answered inside the measured window (their
    /// latencies are in `latency`, so a fast error cannot hide a slow
    /// success, nor the other way round).
    pub(crate) errors_in_window: u64,
    pub(crate) first_error: Option<String>,
    pub(crate) window_secs: f64,
    pub(crate) per_sec: f64,
    pub(crate) latency: Latency,
    /// CPU the server used per completed call (user + system).
    pub(crate) server_cpu_us: f64,
    /// CPU the load generator used per completed call.
    pub(crate) client_cpu_us: f64,
    /// Minor page faults the server took per completed call.
    pub(crate) server_faults: f64,
}

/// When the measured window is, decided once every connection is ready.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Window {
    from: Instant,
    end: Instant,
}

impl Window {
    /// The window of a load that starts at `start`: after the warm-up for a
    /// timed load, from the start (until the time limit) for a counted one.
    fn for_budget(start: Instant, budget: Budget) -> Window {
        match budget {
            Budget::Timed { warmup, measure } => Window {
                from: start + warmup,
                end: start + warmup + measure,
            },
            Budget::Count { limit, .. } => Window {
                from: start,
                end: start + limit,
            },
        }
    }

    /// Whether an answer that arrived at `answered` counts.
    fn counts(&self, answered: Instant) -> bool {
        answered >= self.from && answered <= self.end
    }
}

#[derive(Default)]
struct WorkerOut {
    latencies: Vec<u32>,
    completed: u64,
    errors: u64,
    errors_in_window: u64,
    first_error: Option<String>,
}

impl WorkerOut {
    fn error(&mut self, err: impl std::fmt::Display) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(format!("{err:#}"));
        }
    }

    /// Records how long an answer (a success or an error) took, when it
    /// arrived inside the window.
    fn answered(&mut self, window: &Window, sent: Instant, ok: bool) -> bool {
        let answered = Instant::now();
        if !window.counts(answered) {
            return false;
        }
        let us = answered.duration_since(sent).as_micros();
        self.latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
        if ok {
            self.completed += 1;
        } else {
            self.errors_in_window += 1;
        }
        true
    }
}

/// Loads `target` over `connections` connections under `budget`.
///
/// Strategy: every task connects (and opens its session) first and waits at
/// a barrier, so set-up never falls inside the window; then all start
/// together and each records the latency of every answer that arrives
/// inside the window.
pub(crate) async fn run(
    target: &Arc<Target>,
    connections: usize,
    budget: Budget,
    probe: &CpuProbe,
) -> anyhow::Result<Run> {
    anyhow::ensure!(connections > 0, "at least one connection is needed");
    let barrier = Arc::new(Barrier::new(connections + 1));
    let (window_tx, window_rx) = watch::channel(None::<Window>);
    let remaining = match budget {
        Budget::Count { calls, .. } => Some(Arc::new(AtomicU64::new(calls))),
        Budget::Timed { .. } => None,
    };
    let expected = match budget {
        Budget::Timed { measure, .. } => {
            // Room for the samples of a fast run without regrowing mid-window.
            (measure.as_secs_f64() * 80_000.0 / connections as f64) as usize
        }
        Budget::Count { calls, .. } => (calls / connections as u64) as usize + 1,
    };
    let handles: Vec<_> = (0..connections)
        .map(|_| {
            let target = target.clone();
            let barrier = barrier.clone();
            let window_rx = window_rx.clone();
            let remaining = remaining.clone();
            tokio::spawn(worker(target, barrier, window_rx, remaining, expected))
        })
        .collect();
    barrier.wait().await;
    let window = Window::for_budget(Instant::now(), budget);
    let _ = window_tx.send(Some(window));
    tokio::time::sleep_until(window.from.into()).await;
    let cpu_begin = probe.sample();
    let measured_from = Instant::now();
    let mut outs = Vec::with_capacity(connections);
    let (cpu_end, measured) = match budget {
        Budget::Timed { .. } => {
            tokio::time::sleep_until(window.end.into()).await;
            let sample = probe.sample();
            let measured = window.end.saturating_duration_since(window.from);
            for handle in handles {
                outs.push(handle.await?);
            }
            (sample, measured)
        }
        Budget::Count { .. } => {
            for handle in handles {
                outs.push(handle.await?);
            }
            (probe.sample(), measured_from.elapsed())
        }
    };
    let mut latencies = Vec::with_capacity(outs.iter().map(|o| o.latencies.len()).sum());
    let mut completed = 0;
    let mut errors = 0;
    let mut errors_in_window = 0;
    let mut first_error = None;
    for out in outs {
        latencies.extend_from_slice(&out.latencies);
        completed += out.completed;
        errors += out.errors;
        errors_in_window += out.errors_in_window;
        first_error = first_error.or(out.first_error);
    }
    let window_secs = measured.as_secs_f64();
    let server = cpu_end.server.since(cpu_begin.server);
    let client = cpu_end.client.since(cpu_begin.client);
    Ok(Run {
        target: target.kind.label(),
        connections,
        completed,
        errors,
        errors_in_window,
        first_error,
        window_secs,
        per_sec: completed as f64 / window_secs,
        latency: Latency::from_samples(&mut latencies),
        server_cpu_us: probe.per_request(server, completed),
        client_cpu_us: probe.per_request(client, completed),
        server_faults: faults_per_request(server, completed),
    })
}

async fn worker(
    target: Arc<Target>,
    barrier: Arc<Barrier>,
    mut window_rx: watch::Receiver<Option<Window>>,
    remaining: Option<Arc<AtomicU64>>,
    expected: usize,
) -> WorkerOut {
    let mut out = WorkerOut {
        latencies: Vec::with_capacity(expected),
        ..WorkerOut::default()
    };
    let opened = Caller::open(&target).await;
    // Every task reaches the barrier, ready or not, or the others would wait forever.
    barrier.wait().await;
    let mut caller = match opened {
        Ok(caller) => caller,
        Err(err) => {
            out.error(err.context(format!("opening a {} connection", target.kind.label())));
            return out;
        }
    };
    let Ok(Some(window)) = window_rx.wait_for(Option::is_some).await.map(|w| *w) else {
        return out;
    };
    loop {
        if let Some(remaining) = &remaining
            && remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_err()
        {
            break;
        }
        let sent = Instant::now();
        if sent >= window.end {
            break;
        }
        match caller.call().await {
            Ok(()) => {
                out.answered(&window, sent, true);
            }
            Err(err @ CallError::Answer(_)) => {
                out.answered(&window, sent, false);
                out.error(err);
            }
            Err(CallError::Transport(err)) => {
                out.answered(&window, sent, false);
                out.error(err);
                // The connection is gone; start over on a new one (and a new
                // session), as a client would.
                match Caller::open(&target).await {
                    Ok(fresh) => caller = fresh,
                    Err(err) => {
                        out.error(err.context("reconnecting"));
                        return out;
                    }
                }
            }
        }
    }
    caller.close().await;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timed_window_starts_after_the_warm_up() {
        let start = Instant::now();
        let budget = Budget::Timed {
            warmup: Duration::from_secs(1),
            measure: Duration::from_secs(5),
        };
        let window = Window::for_budget(start, budget);
        assert_eq!(window.from, start + Duration::from_secs(1));
        assert_eq!(window.end, start + Duration::from_secs(6));
        assert!(!window.counts(start + Duration::from_millis(999)));
        assert!(window.counts(start + Duration::from_secs(1)));
        assert!(window.counts(start + Duration::from_secs(6)));
        assert!(!window.counts(start + Duration::from_millis(6001)));
    }

    #[test]
    fn a_counted_window_starts_at_once_and_ends_at_the_limit() {
        let start = Instant::now();
        let budget = Budget::Count {
            calls: 10,
            limit: Duration::from_secs(30),
        };
        let window = Window::for_budget(start, budget);
        assert!(window.counts(start));
        assert!(!window.counts(start + Duration::from_secs(31)));
    }

    #[test]
    fn errors_in_the_window_count_in_the_latencies() {
        let now = Instant::now();
        let window = Window {
            from: now - Duration::from_secs(1),
            end: now + Duration::from_secs(60),
        };
        let mut out = WorkerOut::default();
        assert!(out.answered(&window, now, true));
        assert!(out.answered(&window, now, false));
        assert_eq!(
            (out.completed, out.errors_in_window, out.latencies.len()),
            (1, 1, 2)
        );
        let closed = Window {
            from: now - Duration::from_secs(2),
            end: now - Duration::from_secs(1),
        };
        assert!(!out.answered(&closed, now, false));
        assert_eq!(out.latencies.len(), 2);
    }
}
