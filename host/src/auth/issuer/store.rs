//! The embedded issuer's durable state in `<data_dir>/auth/state.json`:
//! registered clients, refresh-token families and remembered consents.
//! Secrets are stored only as SHA-256 digests (they are random 256-bit
//! values, so a fast hash loses nothing). Every change rewrites the file
//! atomically; a team's worth of clients keeps it small, and dynamic
//! clients that are never (or no longer) used expire so anonymous
//! registrations cannot grow it for good.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct State {
    #[serde(default)]
    pub(crate) clients: BTreeMap<String, Client>,
    #[serde(default)]
    pub(crate) families: BTreeMap<String, Family>,
    /// subject → client id → scopes the user agreed to.
    #[serde(default)]
    pub(crate) consents: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Client {
    pub(crate) client_id: String,
    #[serde(default)]
    pub(crate) client_name: Option<String>,
    /// Confidential clients only.
    #[serde(default)]
    pub(crate) secret_sha256: Option<String>,
    #[serde(default)]
    pub(crate) redirect_uris: Vec<String>,
    pub(crate) grant_types: Vec<String>,
    /// The scopes this client may be granted.
    pub(crate) scope: String,
    pub(crate) token_endpoint_auth_method: String,
    /// Unix seconds.
    pub(crate) created: u64,
    /// Registered through `/register` rather than by an operator.
    #[serde(default)]
    pub(crate) dynamic: bool,
    /// Dynamic clients: the address range that registered it (an IPv4
    /// address or an IPv6 /64), for the per-range cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) registered_from: Option<String>,
    /// Dynamic clients: unix seconds of the last sign-in or refresh; none
    /// yet means the client never completed a sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_used: Option<u64>,
}

/// How long dynamically registered clients live. Operator-made clients
/// never expire.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// A client that never completed a sign-in: this long after registering.
    pub unused: Duration,
    /// A client that did: this long after its last sign-in or refresh.
    pub idle: Duration,
}

impl Client {
    /// Unix seconds at which this client expires, if it can.
    pub(crate) fn expires(&self, lifetimes: &Lifetimes) -> Option<u64> {
        if !self.dynamic {
            return None;
        }
        Some(match self.last_used {
            None => self.created.saturating_add(lifetimes.unused.as_secs()),
            Some(used) => used.saturating_add(lifetimes.idle.as_secs()),
        })
    }

    pub(crate) fn expired(&self, lifetimes: &Lifetimes, now: u64) -> bool {
        self.expires(lifetimes).is_some_and(|at| at <= now)
    }
}

impl State {
    /// Whether any client has expired (cheap: no write needed otherwise).
    pub(crate) fn any_expired(&self, lifetimes: &Lifetimes, now: u64) -> bool {
        self.clients.values().any(|c| c.expired(lifetimes, now))
    }

    /// Removes expired clients with their refresh families and consents;
    /// returns how many clients went.
    pub(crate) fn sweep(&mut self, lifetimes: &Lifetimes, now: u64) -> usize {
        let expired: HashSet<String> = self
            .clients
            .values()
            .filter(|c| c.expired(lifetimes, now))
            .map(|c| c.client_id.clone())
            .collect();
        if expired.is_empty() {
            return 0;
        }
        self.clients.retain(|id, _| !expired.contains(id));
        self.families.retain(|_, f| !expired.contains(&f.client_id));
        for consents in self.consents.values_mut() {
            consents.retain(|id, _| !expired.contains(id));
        }
        self.consents.retain(|_, c| !c.is_empty());
        expired.len()
    }
}

/// One sign-in's chain of refresh tokens. Only the newest token is valid;
/// presenting an older one means it was stolen (or replayed), and the whole
/// family is revoked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Family {
    pub(crate) client_id: String,
    pub(crate) subject: String,
    pub(crate) scopes: Vec<String>,
    #[serde(default)]
    pub(crate) groups: Vec<String>,
    /// Unix seconds after which no token of the family is accepted.
    pub(crate) expires: u64,
    pub(crate) current_sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid issuer state: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("refresh-token family {0} exists already")]
    Exists(String),
}

/// What redeeming a refresh token found.
#[derive(Debug)]
pub(crate) enum Rotation {
    /// The token was the family's newest; the family now expects the new one.
    Rotated,
    /// An older token of the family: someone holds a copy. The family is gone.
    Reused(Family),
    /// The family had expired; it is gone.
    Expired,
    /// No such family for this client: revoked, expired earlier, or never issued.
    Gone,
}

pub(crate) struct Store {
    path: PathBuf,
    state: Mutex<Loaded>,
}

/// The state and the file version it came from: `toolhost client add` may
/// change the file while the server runs, and the server must not write
/// over that change.
struct Loaded {
    state: State,
    modified: Option<SystemTime>,
}

impl Store {
    pub(crate) fn open(auth_dir: &Path) -> Result<Store, StoreError> {
        let path = auth_dir.join("state.json");
        let loaded = load(&path)?;
        Ok(Store {
            path,
            state: Mutex::new(loaded),
        })
    }

    pub(crate) fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.lock().state)
    }

    /// Changes the state and writes it out before returning, so nothing
    /// handed to a client is lost by a crash right after.
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> Result<R, StoreError> {
        let mut loaded = self.lock();
        let result = f(&mut loaded.state);
        self.save(&mut loaded)?;
        Ok(result)
    }

    /// A sign-in's family, as it stands.
    pub(crate) fn family(&self, family_id: &str) -> Option<Family> {
        self.read(|s| s.families.get(family_id).cloned())
    }

    /// Starts a family. Ids are random, so one that exists already is a
    /// bug; it is refused rather than overwritten.
    pub(crate) fn create_family(&self, family_id: &str, family: Family) -> Result<(), StoreError> {
        let mut loaded = self.lock();
        if loaded.state.families.contains_key(family_id) {
            return Err(StoreError::Exists(family_id.to_string()));
        }
        mark_used(&mut loaded.state, &family.client_id, now());
        loaded.state.families.insert(family_id.to_string(), family);
        self.save(&mut loaded)
    }

    /// Redeems a refresh token of `client_id`'s family in one step (a
    /// compare-and-swap under the state's lock): when `presented_sha256` is
    /// the family's current digest and the family is unexpired, it becomes
    /// `new_sha256`. Anything else changes nothing but for two cases that
    /// end the family: an older digest (reuse) and expiry. A missing family
    /// is never recreated, so a refresh racing a revocation cannot bring the
    /// sign-in back. (In SQL: one `UPDATE … WHERE id AND client_id AND
    /// current AND expires > now RETURNING`, and when it matches nothing a
    /// `DELETE … WHERE id AND client_id RETURNING`.)
    pub(crate) fn rotate(
        &self,
        family_id: &str,
        client_id: &str,
        presented_sha256: &str,
        new_sha256: &str,
        now: u64,
    ) -> Result<Rotation, StoreError> {
        let mut loaded = self.lock();
        let Some(family) = loaded
            .state
            .families
            .get_mut(family_id)
            .filter(|f| f.client_id == client_id)
        else {
            return Ok(Rotation::Gone);
        };
        let rotation = if family.expires <= now {
            Rotation::Expired
        } else if constant_time_eq(
            family.current_sha256.as_bytes(),
            presented_sha256.as_bytes(),
        ) {
            family.current_sha256 = new_sha256.to_string();
            Rotation::Rotated
        } else {
            Rotation::Reused(family.clone())
        };
        if matches!(rotation, Rotation::Rotated) {
            mark_used(&mut loaded.state, client_id, now);
        } else {
            loaded.state.families.remove(family_id);
        }
        self.save(&mut loaded)?;
        Ok(rotation)
    }

    /// Ends `client_id`'s family `family_id`. Whether it existed.
    pub(crate) fn revoke_family(
        &self,
        family_id: &str,
        client_id: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut loaded = self.lock();
        let owned = loaded
            .state
            .families
            .get(family_id)
            .is_some_and(|f| client_id.is_none_or(|c| f.client_id == c));
        if !owned {
            return Ok(false);
        }
        loaded.state.families.remove(family_id);
        self.save(&mut loaded)?;
        Ok(true)
    }

    fn save(&self, loaded: &mut Loaded) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(&loaded.state).map_err(|e| StoreError::Parse {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        if let Some(dir) = self.path.parent() {
            crate::secret_file::create_dir(dir).map_err(|source| StoreError::Write {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        crate::secret_file::write(&self.path, &bytes).map_err(|source| StoreError::Write {
            path: self.path.clone(),
            source,
        })?;
        loaded.modified = modified(&self.path);
        Ok(())
    }

    /// The state, re-read first if another process changed the file.
    fn lock(&self) -> std::sync::MutexGuard<'_, Loaded> {
        let mut guard = self
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if modified(&self.path) != guard.modified {
            match load(&self.path) {
                Ok(fresh) => *guard = fresh,
                Err(err) => tracing::error!("re-reading issuer state: {err}"),
            }
        }
        guard
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn load(path: &Path) -> Result<Loaded, StoreError> {
    let modified = modified(path);
    let state = match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => State::default(),
        Err(source) => {
            return Err(StoreError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    Ok(Loaded {
        state: mark_used_before_upgrade(state),
        modified,
    })
}

/// State written before clients recorded their use has none: a dynamic
/// client holding a refresh family did complete a sign-in, so its idle time
/// counts from now rather than it expiring as never used.
fn mark_used_before_upgrade(mut state: State) -> State {
    let signed_in: HashSet<&str> = state
        .families
        .values()
        .map(|f| f.client_id.as_str())
        .collect();
    let now = now();
    for client in state.clients.values_mut() {
        if client.dynamic
            && client.last_used.is_none()
            && signed_in.contains(client.client_id.as_str())
        {
            client.last_used = Some(now);
        }
    }
    state
}

pub(crate) fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A random secret: 32 bytes, hex.
pub(crate) fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    // getrandom only fails if the OS has no entropy source at all; a zeroed
    // secret would be guessable, so that is fatal.
    if let Err(err) = getrandom::fill(&mut bytes) {
        panic!("the operating system's random source failed: {err}");
    }
    hex::encode(bytes)
}

pub(crate) fn random_id() -> String {
    random_secret()[..32].to_string()
}

/// Unix seconds now.
pub(crate) fn now() -> u64 {
    super::super::keys::now_ms() / 1000
}

/// A dynamic client that signed someone in (or refreshed) is in use, and
/// does not expire for a while; stamped in the same write as the token.
fn mark_used(state: &mut State, client_id: &str, now: u64) {
    if let Some(client) = state.clients.get_mut(client_id)
        && client.dynamic
    {
        client.last_used = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_survives_reopening() {
        let dir = std::env::temp_dir().join(format!("toolhost-store-{}", uuid::Uuid::new_v4()));
        let store = Store::open(&dir).expect("open");
        store
            .update(|s| {
                s.consents
                    .entry("alice".into())
                    .or_default()
                    .insert("c1".into(), vec!["read".into()]);
            })
            .expect("update");
        let again = Store::open(&dir).expect("reopen");
        assert!(again.read(|s| s.consents["alice"].contains_key("c1")));
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn dynamic(id: &str, created: u64, last_used: Option<u64>) -> Client {
        Client {
            client_id: id.into(),
            client_name: None,
            secret_sha256: None,
            redirect_uris: vec!["http://localhost/cb".into()],
            grant_types: vec!["authorization_code".into()],
            scope: "read".into(),
            token_endpoint_auth_method: "none".into(),
            created,
            dynamic: true,
            registered_from: Some("192.0.2.1".into()),
            last_used,
        }
    }

    #[test]
    fn unused_and_idle_dynamic_clients_expire_with_what_they_hold() {
        let lifetimes = Lifetimes {
            unused: Duration::from_secs(100),
            idle: Duration::from_secs(1000),
        };
        let mut state = State::default();
        for client in [
            dynamic("never", 0, None),
            dynamic("idle", 0, Some(50)),
            dynamic("recent", 0, Some(900)),
            Client {
                dynamic: false,
                ..dynamic("operator", 0, None)
            },
        ] {
            state.clients.insert(client.client_id.clone(), client);
        }
        state.families.insert(
            "f".into(),
            Family {
                client_id: "idle".into(),
                subject: "alice".into(),
                scopes: vec![],
                groups: vec![],
                expires: u64::MAX,
                current_sha256: String::new(),
            },
        );
        state
            .consents
            .entry("alice".into())
            .or_default()
            .insert("never".into(), vec!["read".into()]);
        assert!(!state.any_expired(&lifetimes, 99));
        assert!(state.any_expired(&lifetimes, 100));
        assert_eq!(state.sweep(&lifetimes, 100), 1);
        assert!(!state.clients.contains_key("never") && state.consents.is_empty());
        assert_eq!(state.sweep(&lifetimes, 1050), 1);
        assert!(!state.clients.contains_key("idle") && state.families.is_empty());
        assert_eq!(
            state.sweep(&lifetimes, u64::MAX),
            1,
            "only dynamic clients go"
        );
        assert!(state.clients.contains_key("operator"));
    }

    #[test]
    fn clients_signed_in_before_the_upgrade_count_as_used() {
        let mut state = State::default();
        state.clients.insert("old".into(), dynamic("old", 0, None));
        state
            .clients
            .insert("unused".into(), dynamic("unused", 0, None));
        state.families.insert(
            "f".into(),
            Family {
                client_id: "old".into(),
                subject: "alice".into(),
                scopes: vec![],
                groups: vec![],
                expires: u64::MAX,
                current_sha256: String::new(),
            },
        );
        let state = mark_used_before_upgrade(state);
        assert!(state.clients["old"].last_used.is_some());
        assert!(state.clients["unused"].last_used.is_none());
    }

    fn family(expires: u64, digest: &str) -> Family {
        Family {
            client_id: "c1".into(),
            subject: "alice".into(),
            scopes: vec!["read".into()],
            groups: Vec::new(),
            expires,
            current_sha256: digest.into(),
        }
    }

    #[test]
    fn rotation_is_one_compare_and_swap() {
        let dir = std::env::temp_dir().join(format!("toolhost-store-{}", uuid::Uuid::new_v4()));
        let store = Store::open(&dir).expect("open");
        store.create_family("f", family(100, "d1")).expect("create");
        assert!(store.create_family("f", family(100, "x")).is_err());
        // Another client's token, or an unknown family: nothing changes.
        assert!(matches!(
            store.rotate("f", "c2", "d1", "d2", 10),
            Ok(Rotation::Gone)
        ));
        assert!(matches!(
            store.rotate("nope", "c1", "d1", "d2", 10),
            Ok(Rotation::Gone)
        ));
        assert!(matches!(
            store.rotate("f", "c1", "d1", "d2", 10),
            Ok(Rotation::Rotated)
        ));
        assert_eq!(
            store.family("f").map(|f| f.current_sha256).as_deref(),
            Some("d2")
        );
        // The same digest again is reuse, which ends the family for good.
        assert!(matches!(
            store.rotate("f", "c1", "d1", "d3", 10),
            Ok(Rotation::Reused(_))
        ));
        assert!(matches!(
            store.rotate("f", "c1", "d2", "d3", 10),
            Ok(Rotation::Gone)
        ));
        assert!(store.family("f").is_none());

        store.create_family("g", family(100, "d1")).expect("create");
        assert!(matches!(
            store.rotate("g", "c1", "d1", "d2", 100),
            Ok(Rotation::Expired)
        ));
        assert!(store.family("g").is_none());

        store.create_family("h", family(100, "d1")).expect("create");
        assert_eq!(store.revoke_family("h", Some("c2")).ok(), Some(false));
        assert_eq!(store.revoke_family("h", Some("c1")).ok(), Some(true));
        assert!(matches!(
            store.rotate("h", "c1", "d1", "d2", 10),
            Ok(Rotation::Gone)
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
