//! Session-era state (`Mcp-Session-Id`): which protocol version a client
//! negotiated, its log level, and its calls in flight so they can be cancelled.
//!
//! Kept small per session (no per-request history), so 10,000 idle sessions
//! cost a few megabytes, and bounded in number and idle time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::oneshot;

use crate::plugins::ClientSupport;

pub(crate) struct Sessions {
    map: RwLock<Table>,
    max: usize,
    max_per_principal: usize,
    idle: Duration,
    epoch: Instant,
}

/// Sessions by id, and how many each principal holds, changed together.
#[derive(Default)]
struct Table {
    sessions: HashMap<Arc<str>, Arc<Session>>,
    per_principal: HashMap<Arc<str>, usize>,
}

impl Table {
    fn forget(&mut self, session: &Session) {
        if let Some(n) = self.per_principal.get_mut(&session.principal) {
            *n -= 1;
            if *n == 0 {
                self.per_principal.remove(&session.principal);
            }
        }
    }
}

pub(crate) struct Session {
    pub(crate) id: Arc<str>,
    pub(crate) version: &'static str,
    /// What the client declared it can answer (from `initialize`).
    pub(crate) supports: ClientSupport,
    /// Who opened it; counts against that principal's session cap.
    principal: Arc<str>,
    /// Milliseconds since `Sessions::epoch` at last use.
    last_seen: AtomicU64,
    /// 0 = no `logging/setLevel` yet (plugin logs are not forwarded), else rank + 1.
    log_level: AtomicU8,
    inflight: Mutex<HashMap<String, oneshot::Sender<()>>>,
    /// Server-to-client requests awaiting the client's response, by id.
    awaiting: Mutex<HashMap<String, oneshot::Sender<Result<Value, Value>>>>,
    next_server_request: AtomicU64,
}

/// Refusal to open another session.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TooManySessions {
    /// The server holds as many as it will.
    Server,
    /// This principal holds as many as one may: without this cap one client
    /// could fill the table and lock everyone else out.
    Principal,
}

impl Sessions {
    pub(crate) fn new(max: usize, max_per_principal: usize, idle: Duration) -> Sessions {
        Sessions {
            map: RwLock::new(Table::default()),
            max,
            max_per_principal,
            idle,
            epoch: Instant::now(),
        }
    }

    pub(crate) fn create(
        &self,
        version: &'static str,
        supports: ClientSupport,
        principal: &str,
    ) -> Result<Arc<Session>, TooManySessions> {
        let id: Arc<str> = Arc::from(uuid::Uuid::new_v4().simple().to_string());
        let session = Arc::new(Session {
            id: id.clone(),
            version,
            supports,
            principal: Arc::from(principal),
            last_seen: AtomicU64::new(self.now_ms()),
            log_level: AtomicU8::new(0),
            inflight: Mutex::new(HashMap::new()),
            awaiting: Mutex::new(HashMap::new()),
            next_server_request: AtomicU64::new(1),
        });
        let mut table = self
            .map
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        if table.sessions.len() >= self.max {
            return Err(TooManySessions::Server);
        }
        let held = table
            .per_principal
            .entry(session.principal.clone())
            .or_insert(0);
        if *held >= self.max_per_principal {
            return Err(TooManySessions::Principal);
        }
        *held += 1;
        table.sessions.insert(id, session.clone());
        Ok(session)
    }

    /// Finds a live session and marks it used.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<Session>> {
        let table = self.map.read().unwrap_or_else(|poison| poison.into_inner());
        let session = table.sessions.get(id)?.clone();
        session.last_seen.store(self.now_ms(), Ordering::Relaxed);
        Some(session)
    }

    pub(crate) fn remove(&self, id: &str) -> Option<Arc<Session>> {
        let mut table = self
            .map
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        let session = table.sessions.remove(id)?;
        table.forget(&session);
        drop(table);
        session.cancel_all();
        Some(session)
    }

    pub(crate) fn len(&self) -> usize {
        self.map
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .sessions
            .len()
    }

    /// Forgets sessions idle longer than the configured timeout. Called
    /// periodically by the server's sweeper task.
    pub(crate) fn sweep(&self) -> usize {
        let cutoff = self.now_ms().saturating_sub(self.idle.as_millis() as u64);
        let mut table = self
            .map
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        let expired: Vec<Arc<str>> = table
            .sessions
            .iter()
            .filter(|(_, session)| session.last_seen.load(Ordering::Relaxed) < cutoff)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            if let Some(session) = table.sessions.remove(id) {
                table.forget(&session);
            }
        }
        expired.len()
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

impl Session {
    /// The principal that opened it; only that principal may use it.
    pub(crate) fn owner(&self) -> &str {
        &self.principal
    }

    /// The minimum severity (an index into [`super::methods::LOG_LEVELS`])
    /// the client asked for with `logging/setLevel`, if it asked.
    pub(crate) fn log_level(&self) -> Option<u8> {
        self.log_level.load(Ordering::Relaxed).checked_sub(1)
    }

    pub(crate) fn set_log_level(&self, rank: u8) {
        self.log_level
            .store(rank.saturating_add(1), Ordering::Relaxed);
    }

    /// Registers a call so `notifications/cancelled` can stop it; the returned
    /// receiver fires on cancellation.
    pub(crate) fn track(&self, request_id: String) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.inflight
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert(request_id, tx);
        rx
    }

    pub(crate) fn untrack(&self, request_id: &str) {
        self.inflight
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .remove(request_id);
    }

    pub(crate) fn cancel(&self, request_id: &str) -> bool {
        let sender = self
            .inflight
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .remove(request_id);
        sender.is_some_and(|tx| tx.send(()).is_ok())
    }

    /// Allocates an id for a server-to-client request and returns where its
    /// response will arrive.
    pub(crate) fn expect_response(&self) -> (String, oneshot::Receiver<Result<Value, Value>>) {
        let n = self.next_server_request.fetch_add(1, Ordering::Relaxed);
        let request_id = format!("toolhost-{n}");
        let (tx, rx) = oneshot::channel();
        self.awaiting
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert(request_id.clone(), tx);
        (request_id, rx)
    }

    pub(crate) fn forget_response(&self, request_id: &str) {
        self.awaiting
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .remove(request_id);
    }

    /// Delivers a client's response; `false` if nothing was waiting for it.
    pub(crate) fn resolve(&self, request_id: &str, outcome: Result<Value, Value>) -> bool {
        let waiter = self
            .awaiting
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .remove(request_id);
        waiter.is_some_and(|tx| tx.send(outcome).is_ok())
    }

    fn cancel_all(&self) {
        let drained: Vec<_> = self
            .inflight
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .drain()
            .collect();
        for (_, tx) in drained {
            let _ = tx.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: ClientSupport = ClientSupport {
        elicitation: false,
        sampling: false,
        roots: false,
    };

    #[test]
    fn responses_reach_their_waiter_once() {
        let sessions = Sessions::new(10, 10, Duration::from_secs(60));
        let session = sessions
            .create("2025-11-25", NONE, "alice")
            .expect("session");
        let (id, mut rx) = session.expect_response();
        assert!(!session.resolve("toolhost-999", Ok(Value::Null)));
        assert!(session.resolve(&id, Ok(Value::Bool(true))));
        assert!(!session.resolve(&id, Ok(Value::Null)));
        assert_eq!(rx.try_recv().ok(), Some(Ok(Value::Bool(true))));
    }

    #[test]
    fn bounded_and_swept() {
        let sessions = Sessions::new(3, 2, Duration::ZERO);
        let a = sessions.create("2025-11-25", NONE, "alice").expect("first");
        sessions
            .create("2025-11-25", NONE, "alice")
            .expect("second");
        assert_eq!(
            sessions.create("2025-11-25", NONE, "alice").err(),
            Some(TooManySessions::Principal)
        );
        sessions
            .create("2025-11-25", NONE, "bob")
            .expect("bob's first");
        assert_eq!(
            sessions.create("2025-11-25", NONE, "carol").err(),
            Some(TooManySessions::Server)
        );
        assert!(sessions.get(&a.id).is_some());
        sessions.remove(&a.id);
        assert!(sessions.get(&a.id).is_none());
        let again = sessions
            .create("2025-11-25", NONE, "alice")
            .expect("alice has room again");
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(sessions.sweep(), 3);
        assert!(sessions.get(&again.id).is_none());
        sessions
            .create("2025-11-25", NONE, "alice")
            .expect("sweeping frees the principal's slots");
    }

    #[test]
    fn cancellation_reaches_the_call() {
        let sessions = Sessions::new(10, 10, Duration::from_secs(60));
        let session = sessions
            .create("2025-11-25", NONE, "alice")
            .expect("session");
        let mut rx = session.track("7".into());
        assert!(!session.cancel("8"));
        assert!(session.cancel("7"));
        assert!(rx.try_recv().is_ok());
    }
}
