//! The embedded issuer's signing keys: ES256 key pairs in the state
//! database, shared by every replica, rotated on a schedule.
//!
//! Each key signs from its `active_from_ms` until a newer key's. A new key
//! is stored [`KeyRing::propagation`] ahead of that moment, and every
//! replica reloads the set more often than that, so all of them publish and
//! verify a key before any signs with it. A replaced key is kept (and
//! published in the JWKS) until every token it signed has expired, so
//! rotation never breaks a valid token; after that it is dropped, and
//! tokens signed with it fail on `kid`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::Deserialize;
use serde::Serialize;

use crate::state::keys::{KeyPlan, StoredKey};
use crate::state::{Durable, StateError};

pub(crate) const ALGORITHM: Algorithm = Algorithm::ES256;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the signing keys in the state database: {0}")]
    State(#[from] StateError),
    #[error("importing {path}: {message}")]
    Import { path: String, message: String },
    #[error("a stored signing key is unusable: {0}")]
    Parse(String),
    #[error("generating a signing key: {0}")]
    Generate(String),
    #[error("no signing key is active")]
    NoCurrent,
    #[error("signing a token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

struct SigningKey {
    stored: StoredKey,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Jwk,
}

impl SigningKey {
    fn from_stored(stored: StoredKey) -> Result<SigningKey, KeyError> {
        let bad = |e: &dyn std::fmt::Display| KeyError::Parse(format!("key {}: {e}", stored.kid));
        let der = STANDARD.decode(&stored.pkcs8).map_err(|e| bad(&e))?;
        let jwk: Jwk = serde_json::from_str(&stored.public_jwk).map_err(|e| bad(&e))?;
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| bad(&e))?;
        Ok(SigningKey {
            encoding: EncodingKey::from_ec_der(&der),
            decoding,
            jwk,
            stored,
        })
    }

    fn generate(active_from_ms: u64) -> Result<StoredKey, KeyError> {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        let mut id = [0u8; 12];
        getrandom::fill(&mut id).map_err(|e| KeyError::Generate(e.to_string()))?;
        let kid = hex::encode(id);
        let der = pair.serialize_der();
        Ok(StoredKey {
            public_jwk: public_jwk(&kid, &der)?,
            kid,
            active_from_ms,
            pkcs8: STANDARD.encode(der),
        })
    }
}

/// The public half of a PKCS#8 key as the JWK the JWKS publishes.
fn public_jwk(kid: &str, der: &[u8]) -> Result<String, KeyError> {
    let encoding = EncodingKey::from_ec_der(der);
    let mut jwk = Jwk::from_encoding_key(&encoding, ALGORITHM)
        .map_err(|e| KeyError::Generate(format!("key {kid}: {e}")))?;
    jwk.common.key_id = Some(kid.to_string());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(KeyAlgorithm::ES256);
    serde_json::to_string(&jwk).map_err(|e| KeyError::Generate(e.to_string()))
}

/// The key set, shared by the token endpoint, the JWKS document, the
/// verifier and the rotation task.
pub struct KeyRing {
    store: Arc<Durable>,
    rotation: Duration,
    /// How long a replaced key stays valid: the longest token lifetime plus leeway.
    retain: Duration,
    /// Oldest first.
    keys: ArcSwap<Vec<Arc<SigningKey>>>,
}

pub(crate) fn now_ms() -> u64 {
    crate::state::unix_now_ms()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl KeyRing {
    /// Loads the deployment's keys, first importing `auth_dir/keys.json`
    /// if an earlier release left one, and creating a first key if there
    /// is none. Does not rotate: only the server does that.
    pub async fn open(
        store: Arc<Durable>,
        auth_dir: &Path,
        rotation: Duration,
        retain: Duration,
    ) -> Result<KeyRing, KeyError> {
        let ring = KeyRing {
            store,
            rotation,
            retain,
            keys: ArcSwap::from_pointee(Vec::new()),
        };
        ring.import_file(auth_dir).await?;
        let now = now_ms();
        // Nobody signs yet, so the first key is active at once; of replicas
        // starting together, the lock lets one add it.
        let first = SigningKey::generate(now)?;
        let keys = ring
            .store
            .change_signing_keys(|keys| KeyPlan {
                add: (!keys.iter().any(|k| k.active_from_ms <= now)).then_some(first),
                remove: Vec::new(),
            })
            .await?;
        ring.install(keys)?;
        if ring.current(now).is_none() {
            return Err(KeyError::NoCurrent);
        }
        Ok(ring)
    }

    /// How far ahead of its first use a new key is stored: two reloads of
    /// every replica.
    pub(crate) fn propagation(&self) -> Duration {
        self.check_interval() * 2
    }

    /// How often the rotation task reloads and rotates: often enough for
    /// short test periods, rarely enough to cost nothing.
    pub(crate) fn check_interval(&self) -> Duration {
        (self.rotation.min(self.retain) / 8)
            .clamp(Duration::from_millis(100), Duration::from_secs(30))
    }

    fn install(&self, stored: Vec<StoredKey>) -> Result<(), KeyError> {
        let loaded = self.keys.load();
        let keys = stored
            .into_iter()
            .map(|key| match loaded.iter().find(|k| k.stored == key) {
                Some(same) => Ok(same.clone()),
                None => SigningKey::from_stored(key).map(Arc::new),
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.keys.store(Arc::new(keys));
        Ok(())
    }

    /// The key that signs at `now`: the newest one active by then.
    fn current(&self, now: u64) -> Option<Arc<SigningKey>> {
        self.keys
            .load()
            .iter()
            .rev()
            .find(|k| k.stored.active_from_ms <= now)
            .cloned()
    }

    fn live(&self, now: u64) -> Vec<Arc<SigningKey>> {
        let keys = self.keys.load();
        let starts: Vec<u64> = keys.iter().map(|k| k.stored.active_from_ms).collect();
        keys.iter()
            .enumerate()
            .filter(|(i, _)| !aged_out(&starts, *i, now, millis(self.retain)))
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// Reloads the keys (another replica may have rotated), then adds a
    /// key when the newest will have signed for `rotation` by the time a
    /// new one can start, and drops aged-out keys. Returns whether it added
    /// a key.
    pub(crate) async fn rotate_if_due(&self, now: u64) -> Result<bool, KeyError> {
        let (rotation, retain, ahead) = (
            millis(self.rotation),
            millis(self.retain),
            millis(self.propagation()),
        );
        let plan = |keys: &[StoredKey]| {
            let due = keys
                .last()
                .is_none_or(|newest| newest.active_from_ms.saturating_add(rotation) <= now + ahead);
            let starts: Vec<u64> = keys.iter().map(|k| k.active_from_ms).collect();
            let remove = (0..keys.len())
                .filter(|&i| aged_out(&starts, i, now, retain))
                .map(|i| keys[i].kid.clone())
                .collect::<Vec<_>>();
            (due, remove)
        };
        let stored = self.store.signing_keys().await?;
        let (due, remove) = plan(&stored);
        if !due && remove.is_empty() {
            self.install(stored)?;
            return Ok(false);
        }
        // Generated before the lock, so the lock is held only for the writes.
        let fresh = SigningKey::generate(now + ahead)?;
        let mut added = false;
        let keys = self
            .store
            .change_signing_keys(|keys| {
                let (due, remove) = plan(keys);
                added = due;
                KeyPlan {
                    add: due.then_some(fresh),
                    remove,
                }
            })
            .await?;
        self.install(keys)?;
        Ok(added)
    }

    /// Signs `claims` with the current key, naming it in `kid`.
    pub(crate) fn sign(&self, claims: &impl Serialize) -> Result<String, KeyError> {
        let key = self.current(now_ms()).ok_or(KeyError::NoCurrent)?;
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(key.stored.kid.clone());
        header.typ = Some("at+jwt".into());
        Ok(jsonwebtoken::encode(&header, claims, &key.encoding)?)
    }

    /// Whether a token naming `kid` may still verify: the cheap check the
    /// verified-token cache makes on every request.
    pub(crate) fn publishes(&self, kid: &str) -> bool {
        self.live(now_ms()).iter().any(|k| k.stored.kid == kid)
    }

    /// The verification key named `kid`, if it is still published.
    pub(crate) fn decoding_key(&self, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        self.live(now_ms())
            .iter()
            .find(|k| k.stored.kid == kid)
            .map(|k| (k.decoding.clone(), ALGORITHM))
    }

    /// The JWKS document: every key a valid token may name, and the next
    /// key before it signs.
    pub(crate) fn jwks(&self) -> serde_json::Value {
        let live = self.live(now_ms());
        let keys: Vec<&Jwk> = live.iter().map(|k| &k.jwk).collect();
        serde_json::json!({ "keys": keys })
    }

    /// Moves the key file an earlier release wrote into the database, so
    /// tokens it signed stay valid across the upgrade; renames it after.
    async fn import_file(&self, auth_dir: &Path) -> Result<(), KeyError> {
        #[derive(Deserialize)]
        struct File {
            keys: Vec<FileKey>,
        }
        #[derive(Deserialize)]
        struct FileKey {
            kid: String,
            created_ms: u64,
            pkcs8: String,
        }
        let path = auth_dir.join(LEGACY_KEY_FILE);
        let failed = |message: String| KeyError::Import {
            path: path.display().to_string(),
            message,
        };
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(failed(err.to_string())),
        };
        let file: File = serde_json::from_slice(&bytes).map_err(|e| failed(e.to_string()))?;
        let mut imported = Vec::new();
        for key in file.keys {
            let der = STANDARD
                .decode(&key.pkcs8)
                .map_err(|e| failed(e.to_string()))?;
            imported.push(StoredKey {
                public_jwk: public_jwk(&key.kid, &der)?,
                kid: key.kid,
                active_from_ms: key.created_ms,
                pkcs8: key.pkcs8,
            });
        }
        let count = imported.len();
        for key in imported {
            self.store
                .change_signing_keys(|keys| KeyPlan {
                    add: (!keys.iter().any(|k| k.kid == key.kid)).then_some(key),
                    remove: Vec::new(),
                })
                .await?;
        }
        let done = auth_dir.join(format!("{LEGACY_KEY_FILE}.imported"));
        std::fs::rename(&path, &done).map_err(|e| failed(format!("renaming it: {e}")))?;
        tracing::info!(
            keys = count,
            "signing keys imported into the state database"
        );
        Ok(())
    }
}

/// Where releases before the state database kept the keys.
const LEGACY_KEY_FILE: &str = "keys.json";

/// Whether the key at `index` (of keys starting at `starts`, oldest first)
/// was replaced so long ago that no token it signed can still be valid.
fn aged_out(starts: &[u64], index: usize, now: u64, retain: u64) -> bool {
    starts
        .get(index + 1..)
        .unwrap_or_default()
        .iter()
        .copied()
        .filter(|&from| from <= now)
        .min()
        .is_some_and(|replaced| now.saturating_sub(replaced) > retain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::testing::scratch;

    const HOUR: Duration = Duration::from_secs(3600);

    async fn ring(store: &Arc<Durable>, dir: &Path) -> KeyRing {
        KeyRing::open(store.clone(), dir, HOUR, HOUR)
            .await
            .expect("open")
    }

    fn kids(ring: &KeyRing) -> Vec<String> {
        ring.keys
            .load()
            .iter()
            .map(|k| k.stored.kid.clone())
            .collect()
    }

    #[tokio::test]
    async fn keys_persist_and_rotate_with_overlap() {
        let s = scratch().await;
        let store = s.durable.clone();
        let ring = ring(&store, &s.dir).await;
        let now = now_ms();
        let first = ring.current(now).expect("current").stored.kid.clone();
        let reopened = self::ring(&store, &s.dir).await;
        assert_eq!(reopened.current(now).expect("current").stored.kid, first);

        assert!(!ring.rotate_if_due(now).await.expect("not due"));
        // Due: the next key is stored ahead of its first use, published
        // at once, and signs only from its start.
        let later = now + 3_600_000;
        assert!(ring.rotate_if_due(later).await.expect("due"));
        let second = kids(&ring).last().cloned().expect("second");
        assert_ne!(first, second);
        assert_eq!(ring.current(later).expect("current").stored.kid, first);
        assert!(ring.publishes(&second));
        let start = later + millis(ring.propagation());
        assert_eq!(ring.current(start).expect("current").stored.kid, second);
        // The other replica learns of it at its next reload, before it signs.
        assert!(!reopened.publishes(&second));
        assert!(!reopened.rotate_if_due(later).await.expect("reload"));
        assert!(reopened.publishes(&second));
        // Once the first key's tokens can no longer be valid, it is dropped.
        ring.rotate_if_due(start + 3_600_001).await.expect("prune");
        assert!(!kids(&ring).contains(&first), "{:?}", kids(&ring));
    }

    #[tokio::test]
    async fn replicas_rotating_together_add_one_key() {
        let s = scratch().await;
        let store = s.durable.clone();
        let (a, b) = (ring(&store, &s.dir).await, ring(&store, &s.dir).await);
        let later = now_ms() + 3_600_000;
        let (ra, rb) = tokio::join!(a.rotate_if_due(later), b.rotate_if_due(later));
        let added = [ra.expect("a"), rb.expect("b")];
        assert_eq!(added.iter().filter(|a| **a).count(), 1, "{added:?}");
        assert_eq!(kids(&a).len(), 2);
    }

    #[tokio::test]
    async fn signed_tokens_name_the_current_key() {
        let s = scratch().await;
        let store = s.durable.clone();
        let ring = ring(&store, &s.dir).await;
        let token = ring.sign(&serde_json::json!({"sub": "a"})).expect("sign");
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.alg, Algorithm::ES256);
        let kid = header.kid.expect("kid");
        assert!(ring.decoding_key(&kid).is_some());
        let jwks = ring.jwks();
        assert_eq!(jwks["keys"][0]["kid"], kid.as_str());
        assert_eq!(jwks["keys"][0]["kty"], "EC");
        assert!(
            jwks["keys"][0].get("d").is_none(),
            "private part must never be published"
        );
    }

    #[tokio::test]
    async fn a_key_file_from_the_last_release_keeps_its_tokens_valid() {
        // Written by the release before the state database: two keys, the
        // older replaced (retired) by the newer.
        let s = scratch().await;
        let old = SigningKey::generate(1_000).expect("old");
        let new = SigningKey::generate(now_ms() - 60_000).expect("new");
        let file = serde_json::json!({"keys": [
            {"kid": new.kid, "created_ms": new.active_from_ms, "retired_ms": null, "pkcs8": new.pkcs8},
            {"kid": old.kid, "created_ms": old.active_from_ms, "retired_ms": new.active_from_ms, "pkcs8": old.pkcs8},
        ]});
        std::fs::write(s.dir.join("keys.json"), file.to_string()).expect("write");
        let store = s.durable.clone();
        let ring = ring(&store, &s.dir).await;
        assert!(s.dir.join("keys.json.imported").exists());
        assert_eq!(
            ring.current(now_ms()).expect("current").stored.kid,
            new.kid,
            "the key that signed before the upgrade signs after it"
        );
        assert!(
            ring.publishes(&old.kid),
            "replaced a minute ago: still published"
        );
        assert_eq!(kids(&ring).len(), 2);
    }
}
