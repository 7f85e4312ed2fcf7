//! Session-era state (`Mcp-Session-Id`): which protocol version a client
//! negotiated, its log level, and its calls in flight so they can be cancelled.
//!
//! Kept small per session (no per-request history), so 10,000 idle sessions
//! cost a few megabytes, and bounded in number and idle time.
//!
//! A session id is sealed: it carries what `initialize` negotiated (version,
//! client capabilities, a digest of the owner, an expiry) under an HMAC with
//! a key every replica shares. A replica that does not know a session takes
//! it up from the id alone, so a client keeps its session whichever replica
//! a balancer picks, and across restarts. Calls in flight stay with the
//! replica running them: a cancellation or an answer to a call's question
//! that lands elsewhere is passed on over the deployment's relay (see
//! `state::relay`), found here by the session's digest. Server-to-client
//! request ids carry a tag of the replica that sent them, so two replicas
//! asking in one session never issue the same id.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use crate::plugins::ClientSupport;
use crate::state::unix_now;

pub(crate) struct Sessions {
    map: RwLock<Table>,
    max: usize,
    max_per_principal: usize,
    idle: Duration,
    epoch: Instant,
    /// Signs session ids; the same on every replica.
    seal_key: [u8; 32],
    /// Digests of ended session ids, from every replica (refreshed by the
    /// server from the state database): such an id is never taken up again.
    ended: RwLock<HashSet<String>>,
    /// This process's part of server-to-client request ids.
    tag: Arc<str>,
}

/// How long a session id stays valid from `initialize`, whatever its use:
/// a replica cannot see another's idle clock, so a sealed id carries a hard
/// end. Clients initialize again on the 404.
pub(crate) const SESSION_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// What a sealed id says.
struct Sealed {
    version: &'static str,
    supports: ClientSupport,
    owner: String,
    expires: u64,
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
    /// How other replicas and the state database name it.
    pub(crate) digest: Box<str>,
    /// When the id stops being valid (unix seconds).
    pub(crate) expires: u64,
    /// Taken up from another replica's id and not yet settled (its log
    /// level read from the state database).
    adopted: std::sync::atomic::AtomicBool,
    tag: Arc<str>,
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
    /// `key` is the deployment's shared secret; session ids are sealed
    /// with a key derived from it.
    pub(crate) fn new(
        max: usize,
        max_per_principal: usize,
        idle: Duration,
        key: &[u8; 32],
    ) -> Sessions {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(b"toolhost session ids v1");
        Sessions {
            map: RwLock::new(Table::default()),
            max,
            max_per_principal,
            idle,
            epoch: Instant::now(),
            seal_key: mac.finalize().into_bytes().into(),
            ended: RwLock::new(HashSet::new()),
            tag: Arc::from(replica_tag()),
        }
    }

    pub(crate) fn create(
        &self,
        version: &'static str,
        supports: ClientSupport,
        principal: &str,
    ) -> Result<Arc<Session>, TooManySessions> {
        let sealed = Sealed {
            version,
            supports,
            owner: owner_digest(principal),
            expires: unix_now() + SESSION_LIFETIME.as_secs(),
        };
        self.insert(Arc::from(self.seal(&sealed)), &sealed, principal, false)
    }

    /// The session `id` names, known here or taken up from its seal when
    /// `principal` opened it, it has not expired and nobody ended it.
    pub(crate) fn find_or_adopt(&self, id: &str, principal: &str) -> Option<Arc<Session>> {
        if let Some(session) = self.get(id) {
            return (session.owner() == principal).then_some(session);
        }
        let sealed = self.unseal(id, unix_now())?;
        if sealed.owner != owner_digest(principal) || self.is_ended(id) {
            return None;
        }
        match self.insert(Arc::from(id), &sealed, principal, true) {
            Ok(session) => Some(session),
            Err(refusal) => {
                tracing::warn!(
                    ?refusal,
                    "a session from another replica could not be taken up here"
                );
                None
            }
        }
    }

    /// Ends `id` here and returns its digest and expiry, for the record
    /// every replica reads.
    pub(crate) fn end(&self, id: &str) -> (String, u64) {
        let digest = id_digest(id);
        self.ended
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert(digest.clone());
        self.remove(id);
        let expires = self
            .unseal(id, 0)
            .map_or(unix_now() + SESSION_LIFETIME.as_secs(), |s| s.expires);
        (digest, expires)
    }

    /// Replaces the set of ended sessions with the deployment's, and drops
    /// any of them held here.
    pub(crate) fn set_ended(&self, digests: HashSet<String>) {
        // Most refreshes find the set as it was: nothing to look for.
        if *self
            .ended
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            == digests
        {
            return;
        }
        let held: Vec<Arc<str>> = self
            .map
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .sessions
            .values()
            .filter(|session| digests.contains(&*session.digest))
            .map(|session| session.id.clone())
            .collect();
        for id in held {
            self.remove(&id);
        }
        *self
            .ended
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = digests;
    }

    fn is_ended(&self, id: &str) -> bool {
        self.ended
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .contains(&id_digest(id))
    }

    fn seal(&self, sealed: &Sealed) -> String {
        let bits = u8::from(sealed.supports.elicitation)
            | u8::from(sealed.supports.sampling) << 1
            | u8::from(sealed.supports.roots) << 2;
        let mut nonce = [0u8; 12];
        // A repeated nonce would only make two ids of one owner, version
        // and second equal; the OS's random source failing is fatal anyway.
        let _ = getrandom::fill(&mut nonce);
        let body = format!(
            "s1~{}~{bits}~{}~{}~{}",
            sealed.version,
            sealed.owner,
            sealed.expires,
            URL_SAFE_NO_PAD.encode(nonce)
        );
        format!("{body}~{}", self.mac(&body))
    }

    /// The seal's contents, if the id is one of ours, intact and unexpired
    /// at `now` (unix seconds; 0 skips the expiry check).
    fn unseal(&self, id: &str, now: u64) -> Option<Sealed> {
        let (body, tag) = id.rsplit_once('~')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.seal_key).ok()?;
        mac.update(body.as_bytes());
        // Constant-time: a timing difference must not guide a forgery.
        mac.verify_slice(&tag).ok()?;
        let mut parts = body.split('~');
        if parts.next()? != "s1" {
            return None;
        }
        let version = parts.next()?;
        let version = super::protocol::SESSION_VERSIONS
            .iter()
            .find(|v| **v == version)?;
        let bits: u8 = parts.next()?.parse().ok()?;
        let owner = parts.next()?.to_string();
        let expires: u64 = parts.next()?.parse().ok()?;
        if now != 0 && expires <= now {
            return None;
        }
        Some(Sealed {
            version,
            supports: ClientSupport {
                elicitation: bits & 1 != 0,
                sampling: bits & 2 != 0,
                roots: bits & 4 != 0,
            },
            owner,
            expires,
        })
    }

    fn mac(&self, body: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.seal_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(body.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    fn insert(
        &self,
        id: Arc<str>,
        sealed: &Sealed,
        principal: &str,
        adopted: bool,
    ) -> Result<Arc<Session>, TooManySessions> {
        let session = Arc::new(Session {
            digest: id_digest(&id).into(),
            id: id.clone(),
            expires: sealed.expires,
            adopted: std::sync::atomic::AtomicBool::new(adopted),
            tag: self.tag.clone(),
            version: sealed.version,
            supports: sealed.supports,
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
        if let Some(existing) = table.sessions.get(&id) {
            // Taken up by a request racing this one.
            return Ok(existing.clone());
        }
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

    /// The session held here whose id has `digest`, as the relay names it.
    /// A scan: relay notes are rare, and a second index would cost every
    /// session memory.
    pub(crate) fn by_digest(&self, digest: &str) -> Option<Arc<Session>> {
        let table = self.map.read().unwrap_or_else(|poison| poison.into_inner());
        table
            .sessions
            .values()
            .find(|session| &*session.digest == digest)
            .cloned()
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

/// Who owns a session, as the id carries it: a digest, so the id does not
/// spell out the principal.
fn owner_digest(principal: &str) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(principal.as_bytes())[..16])
}

/// How an ended id is recorded, and how replicas name a session.
fn id_digest(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Random, so replicas (and restarts) never share one.
fn replica_tag() -> String {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        return format!("{:x}", crate::state::unix_now_ms() & 0xffff_ffff);
    }
    hex::encode(bytes)
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

    /// `true` once, for the first request after the session was taken up
    /// from another replica's id: that request settles what the id does not
    /// carry.
    pub(crate) fn take_adopted(&self) -> bool {
        self.adopted.swap(false, Ordering::Relaxed)
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
        let request_id = format!("toolhost-{}-{n}", self.tag);
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

    /// Whether `request_id` names a question another replica asked in this
    /// session (and so the answer is for that replica).
    pub(crate) fn asked_elsewhere(&self, request_id: &str) -> bool {
        request_id
            .strip_prefix("toolhost-")
            .and_then(|rest| rest.split_once('-'))
            .is_some_and(|(tag, _)| tag != &*self.tag)
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
        let sessions = Sessions::new(10, 10, Duration::from_secs(60), &[3; 32]);
        let session = sessions
            .create("2025-11-25", NONE, "alice")
            .expect("session");
        let (id, mut rx) = session.expect_response();
        assert!(!session.asked_elsewhere(&id));
        assert!(session.asked_elsewhere("toolhost-0badf00d-1"));
        assert!(!session.asked_elsewhere("7"));
        assert!(!session.resolve("toolhost-999", Ok(Value::Null)));
        assert!(session.resolve(&id, Ok(Value::Bool(true))));
        assert!(!session.resolve(&id, Ok(Value::Null)));
        assert_eq!(rx.try_recv().ok(), Some(Ok(Value::Bool(true))));
    }

    #[test]
    fn bounded_and_swept() {
        let sessions = Sessions::new(3, 2, Duration::ZERO, &[3; 32]);
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
        let sessions = Sessions::new(10, 10, Duration::from_secs(60), &[3; 32]);
        let session = sessions
            .create("2025-11-25", NONE, "alice")
            .expect("session");
        let mut rx = session.track("7".into());
        assert!(!session.cancel("8"));
        assert!(session.cancel("7"));
        assert!(rx.try_recv().is_ok());
    }

    /// Another replica (the same key) takes a session up from its id alone;
    /// a forged, altered, foreign-keyed, expired or ended id is not, and
    /// neither is an id presented by someone other than its owner.
    #[test]
    fn sealed_ids_travel_between_replicas() {
        let supports = ClientSupport {
            elicitation: true,
            sampling: false,
            roots: true,
        };
        let a = Sessions::new(10, 10, Duration::from_secs(60), &[3; 32]);
        let b = Sessions::new(10, 10, Duration::from_secs(60), &[3; 32]);
        let stranger = Sessions::new(10, 10, Duration::from_secs(60), &[4; 32]);
        let session = a.create("2025-06-18", supports, "alice").expect("session");
        let id = session.id.to_string();
        assert!(id.bytes().all(|c| (0x21..=0x7e).contains(&c)), "{id}");

        let taken = b.find_or_adopt(&id, "alice").expect("taken up");
        assert_eq!(taken.version, "2025-06-18");
        assert!(taken.supports.elicitation && !taken.supports.sampling && taken.supports.roots);
        assert!(b.find_or_adopt(&id, "mallory").is_none(), "not the owner");
        assert!(
            stranger.find_or_adopt(&id, "alice").is_none(),
            "another key"
        );
        let tampered = id.replacen("2025-06-18", "2025-11-25", 1);
        assert!(a.find_or_adopt(&tampered, "alice").is_none(), "altered");
        assert!(
            a.find_or_adopt("0123456789abcdef", "alice").is_none(),
            "not sealed"
        );
        let expired = a.seal(&Sealed {
            version: "2025-11-25",
            supports,
            owner: owner_digest("alice"),
            expires: unix_now() - 1,
        });
        assert!(b.find_or_adopt(&expired, "alice").is_none(), "expired");

        // Ended on A: B, once it has the deployment's ended set, lets go.
        let (digest, expires) = a.end(&id);
        assert!(expires > unix_now());
        assert!(a.find_or_adopt(&id, "alice").is_none());
        b.set_ended(HashSet::from([digest]));
        assert!(b.find_or_adopt(&id, "alice").is_none());
    }
}
