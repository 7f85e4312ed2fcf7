//! Many concurrent sessions: open N session-era sessions over a handful of
//! connections (a session is server state keyed by `Mcp-Session-Id`, not a
//! connection), then `ping` every one of them, and read the server's memory
//! before and after.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use http::HeaderValue;
use serde::Serialize;

use crate::conn::Conn;
use crate::mcp::{self, Target};
use crate::sys::{self, Memory};

/// Upper bound for each of the two phases; they take seconds normally.
const PHASE_LIMIT: Duration = Duration::from_secs(300);

#[derive(Clone, Debug, Serialize)]
pub(crate) struct SessionsResult {
    pub(crate) requested: usize,
    pub(crate) connections: usize,
    pub(crate) opened: usize,
    pub(crate) open_errors: u64,
    pub(crate) pinged: u64,
    pub(crate) ping_errors: u64,
    pub(crate) first_error: Option<String>,
    pub(crate) open_secs: f64,
    pub(crate) ping_secs: f64,
    pub(crate) before: Memory,
    pub(crate) after_open: Memory,
    pub(crate) after_ping: Memory,
}

impl SessionsResult {
    pub(crate) fn errors(&self) -> u64 {
        self.open_errors + self.ping_errors
    }

    /// Every requested session opened and answered its ping.
    pub(crate) fn all_ok(&self) -> bool {
        self.errors() == 0 && self.opened == self.requested && self.pinged == self.requested as u64
    }

    /// Server memory per open session, from the growth while opening them.
    pub(crate) fn kib_per_session(&self) -> f64 {
        if self.opened == 0 {
            return 0.0;
        }
        self.after_ping.rss_kib.saturating_sub(self.before.rss_kib) as f64 / self.opened as f64
    }
}

#[derive(Default)]
struct Tally {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn error(&mut self, err: &anyhow::Error) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(format!("{err:#}"));
        }
    }
}

/// Opens `sessions` sessions over `connections` connections and pings each.
pub(crate) async fn hold(
    target: &Arc<Target>,
    pid: u32,
    sessions: usize,
    connections: usize,
) -> anyhow::Result<SessionsResult> {
    let connections = connections.clamp(1, sessions.max(1));
    let before = sys::memory(pid)?;

    let started = Instant::now();
    let opens: Vec<_> = share(sessions, connections)
        .map(|n| tokio::spawn(open_many(target.clone(), n)))
        .collect();
    let mut ids: Vec<HeaderValue> = Vec::with_capacity(sessions);
    let mut open_tally = Tally::default();
    for handle in opens {
        let (opened, tally) = tokio::time::timeout(PHASE_LIMIT, handle)
            .await
            .context("opening sessions took too long")??;
        ids.extend(opened);
        open_tally.errors += tally.errors;
        open_tally.first_error = open_tally.first_error.or(tally.first_error);
    }
    let open_secs = started.elapsed().as_secs_f64();
    let after_open = sys::memory(pid)?;

    let started = Instant::now();
    let ids = Arc::new(ids);
    let pings: Vec<_> = (0..connections)
        .map(|k| tokio::spawn(ping_every(target.clone(), ids.clone(), k, connections)))
        .collect();
    let mut ping_tally = Tally::default();
    for handle in pings {
        let tally = tokio::time::timeout(PHASE_LIMIT, handle)
            .await
            .context("pinging sessions took too long")??;
        ping_tally.ok += tally.ok;
        ping_tally.errors += tally.errors;
        ping_tally.first_error = ping_tally.first_error.or(tally.first_error);
    }
    let ping_secs = started.elapsed().as_secs_f64();
    let after_ping = sys::memory(pid)?;

    Ok(SessionsResult {
        requested: sessions,
        connections,
        opened: ids.len(),
        open_errors: open_tally.errors,
        pinged: ping_tally.ok,
        ping_errors: ping_tally.errors,
        first_error: open_tally.first_error.or(ping_tally.first_error),
        open_secs,
        ping_secs,
        before,
        after_open,
        after_ping,
    })
}

/// `total` split into `parts` near-equal counts.
fn share(total: usize, parts: usize) -> impl Iterator<Item = usize> {
    (0..parts).map(move |k| total / parts + usize::from(k < total % parts))
}

async fn open_many(target: Arc<Target>, n: usize) -> (Vec<HeaderValue>, Tally) {
    let base = target.base_headers();
    let mut ids = Vec::with_capacity(n);
    let mut tally = Tally::default();
    let mut conn = None::<Conn>;
    for _ in 0..n {
        let res = async {
            if conn.is_none() {
                conn = Some(target.connect().await?);
            }
            let c = conn.as_mut().context("no connection")?;
            mcp::open_session(c, &base).await
        }
        .await;
        match res {
            Ok(id) => ids.push(id),
            Err(err) => {
                tally.error(&err);
                conn = None;
            }
        }
    }
    (ids, tally)
}

/// Pings the sessions `k, k + step, k + 2·step, …`.
async fn ping_every(
    target: Arc<Target>,
    ids: Arc<Vec<HeaderValue>>,
    k: usize,
    step: usize,
) -> Tally {
    let base = target.base_headers();
    let mut tally = Tally::default();
    let mut conn = None::<Conn>;
    for id in ids.iter().skip(k).step_by(step) {
        let res = async {
            if conn.is_none() {
                conn = Some(target.connect().await?);
            }
            let c = conn.as_mut().context("no connection")?;
            mcp::ping(c, &base, id).await
        }
        .await;
        match res {
            Ok(()) => tally.ok += 1,
            Err(err) => {
                tally.error(&err);
                conn = None;
            }
        }
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn shares_add_up() {
        assert_eq!(share(10, 3).collect::<Vec<_>>(), vec![4, 3, 3]);
        assert_eq!(share(10_000, 8).sum::<usize>(), 10_000);
    }
}
