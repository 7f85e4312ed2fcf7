//! The embedded issuer's signing keys: ES256 key pairs in
//! `<data_dir>/auth/keys.json`, rotated on a schedule.
//!
//! The newest key signs; a replaced key is kept (and published in the JWKS)
//! until every token it signed has expired, so rotation never breaks a valid
//! token. After that it is dropped, and tokens signed with it fail on `kid`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::{Deserialize, Serialize};

pub(crate) const ALGORITHM: Algorithm = Algorithm::ES256;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid key file: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("generating a signing key: {0}")]
    Generate(String),
    #[error("signing a token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

#[derive(Serialize, Deserialize)]
struct StoredKeys {
    keys: Vec<StoredKey>,
}

#[derive(Serialize, Deserialize, Clone)]
struct StoredKey {
    kid: String,
    /// Milliseconds since the Unix epoch.
    created_ms: u64,
    /// When a newer key replaced it; absent for the current key.
    retired_ms: Option<u64>,
    /// PKCS#8 DER, base64.
    pkcs8: String,
    /// The public half as a JWK, so start-up verifies without parsing the
    /// private key (which costs aws-lc's RNG initialisation on the
    /// critical path). Derived from `pkcs8` when absent.
    #[serde(default)]
    public: Option<Jwk>,
}

struct SigningKey {
    stored: StoredKey,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Jwk,
}

impl SigningKey {
    fn from_stored(mut stored: StoredKey) -> Result<SigningKey, String> {
        let der = STANDARD
            .decode(&stored.pkcs8)
            .map_err(|e| format!("key {}: {e}", stored.kid))?;
        let encoding = EncodingKey::from_ec_der(&der);
        let jwk = match stored.public.clone() {
            Some(jwk) => jwk,
            None => {
                let mut jwk = Jwk::from_encoding_key(&encoding, ALGORITHM)
                    .map_err(|e| format!("key {}: {e}", stored.kid))?;
                jwk.common.key_id = Some(stored.kid.clone());
                jwk.common.public_key_use = Some(PublicKeyUse::Signature);
                jwk.common.key_algorithm = Some(KeyAlgorithm::ES256);
                stored.public = Some(jwk.clone());
                jwk
            }
        };
        let decoding =
            DecodingKey::from_jwk(&jwk).map_err(|e| format!("key {}: {e}", stored.kid))?;
        Ok(SigningKey {
            stored,
            encoding,
            decoding,
            jwk,
        })
    }

    fn generate(now_ms: u64) -> Result<SigningKey, KeyError> {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        let mut id = [0u8; 12];
        getrandom::fill(&mut id).map_err(|e| KeyError::Generate(e.to_string()))?;
        let stored = StoredKey {
            kid: hex::encode(id),
            created_ms: now_ms,
            retired_ms: None,
            pkcs8: STANDARD.encode(pair.serialize_der()),
            public: None,
        };
        SigningKey::from_stored(stored).map_err(KeyError::Generate)
    }
}

/// The key set, shared by the token endpoint, the JWKS document, the
/// verifier and the rotation task.
pub struct KeyRing {
    path: PathBuf,
    rotation: Duration,
    /// How long a replaced key stays valid: the longest token lifetime plus leeway.
    retain: Duration,
    keys: ArcSwap<Vec<Arc<SigningKey>>>,
    /// Serialises rotations (and their file writes).
    rotating: Mutex<()>,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl KeyRing {
    /// Opens the key file in `auth_dir`, creating a first key if there is
    /// none. Does not rotate: only the server does that.
    pub fn open(
        auth_dir: &Path,
        rotation: Duration,
        retain: Duration,
    ) -> Result<KeyRing, KeyError> {
        let path = auth_dir.join("keys.json");
        let mut upgrade = false;
        let keys = match std::fs::read(&path) {
            Ok(bytes) => {
                let stored: StoredKeys =
                    serde_json::from_slice(&bytes).map_err(|e| KeyError::Parse {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                upgrade = stored.keys.iter().any(|k| k.public.is_none());
                stored
                    .keys
                    .into_iter()
                    .map(|k| SigningKey::from_stored(k).map(Arc::new))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|message| KeyError::Parse {
                        path: path.clone(),
                        message,
                    })?
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(KeyError::Read { path, source }),
        };
        let ring = KeyRing {
            path,
            rotation,
            retain,
            keys: ArcSwap::from_pointee(keys),
            rotating: Mutex::new(()),
        };
        if ring.current().is_none() {
            ring.rotate(now_ms())?;
        } else if upgrade {
            // Written once with the public halves, so later starts skip
            // deriving them.
            ring.rotate_inner(now_ms(), false)?;
        }
        Ok(ring)
    }

    fn current(&self) -> Option<Arc<SigningKey>> {
        self.keys
            .load()
            .iter()
            .find(|k| k.stored.retired_ms.is_none())
            .cloned()
    }

    /// Replaces the current key if it is older than the rotation period, and
    /// drops replaced keys no token can still need. Returns whether it rotated.
    pub(crate) fn rotate_if_due(&self, now_ms: u64) -> Result<bool, KeyError> {
        let due = self.current().is_none_or(|k| {
            now_ms.saturating_sub(k.stored.created_ms) >= self.rotation.as_millis() as u64
        });
        let expired = self.keys.load().iter().any(|k| self.aged_out(k, now_ms));
        if due || expired {
            self.rotate_inner(now_ms, due)?;
        }
        Ok(due)
    }

    /// Starts a new current key now.
    pub(crate) fn rotate(&self, now_ms: u64) -> Result<(), KeyError> {
        self.rotate_inner(now_ms, true)
    }

    fn aged_out(&self, key: &SigningKey, now_ms: u64) -> bool {
        key.stored
            .retired_ms
            .is_some_and(|r| now_ms.saturating_sub(r) > self.retain.as_millis() as u64)
    }

    fn rotate_inner(&self, now_ms: u64, new_key: bool) -> Result<(), KeyError> {
        let _guard = self
            .rotating
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let mut next: Vec<Arc<SigningKey>> = Vec::new();
        if new_key {
            next.push(Arc::new(SigningKey::generate(now_ms)?));
        }
        for key in self.keys.load().iter() {
            if self.aged_out(key, now_ms) {
                continue;
            }
            if new_key && key.stored.retired_ms.is_none() {
                let mut stored = key.stored.clone();
                stored.retired_ms = Some(now_ms);
                let retired = SigningKey::from_stored(stored).map_err(KeyError::Generate)?;
                next.push(Arc::new(retired));
            } else {
                next.push(key.clone());
            }
        }
        let stored = StoredKeys {
            keys: next.iter().map(|k| k.stored.clone()).collect(),
        };
        let bytes =
            serde_json::to_vec_pretty(&stored).map_err(|e| KeyError::Generate(e.to_string()))?;
        if let Some(dir) = self.path.parent() {
            crate::secret_file::create_dir(dir).map_err(|source| KeyError::Write {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        crate::secret_file::write(&self.path, &bytes).map_err(|source| KeyError::Write {
            path: self.path.clone(),
            source,
        })?;
        self.keys.store(Arc::new(next));
        Ok(())
    }

    /// Signs `claims` with the current key, naming it in `kid`.
    pub(crate) fn sign(&self, claims: &impl Serialize) -> Result<String, KeyError> {
        let key = match self.current() {
            Some(key) => key,
            None => {
                self.rotate(now_ms())?;
                self.current()
                    .ok_or_else(|| KeyError::Generate("no current key".into()))?
            }
        };
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(key.stored.kid.clone());
        header.typ = Some("at+jwt".into());
        Ok(jsonwebtoken::encode(&header, claims, &key.encoding)?)
    }

    /// Whether a token naming `kid` may still verify: the cheap check the
    /// verified-token cache makes on every request.
    pub(crate) fn publishes(&self, kid: &str) -> bool {
        let now = now_ms();
        self.keys
            .load()
            .iter()
            .any(|k| k.stored.kid == kid && !self.aged_out(k, now))
    }

    /// The verification key named `kid`, if it is still published.
    pub(crate) fn decoding_key(&self, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        self.keys
            .load()
            .iter()
            .find(|k| k.stored.kid == kid && !self.aged_out(k, now_ms()))
            .map(|k| (k.decoding.clone(), ALGORITHM))
    }

    /// The JWKS document: every key a valid token may name.
    pub(crate) fn jwks(&self) -> serde_json::Value {
        let now = now_ms();
        let loaded = self.keys.load();
        let keys: Vec<&Jwk> = loaded
            .iter()
            .filter(|k| !self.aged_out(k, now))
            .map(|k| &k.jwk)
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// How often the rotation task should look: often enough for short test
    /// periods, rarely enough to cost nothing.
    pub(crate) fn check_interval(&self) -> Duration {
        (self.rotation.min(self.retain) / 4)
            .clamp(Duration::from_millis(100), Duration::from_secs(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("toolhost-keys-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn keys_persist_and_rotate_with_overlap() {
        let dir = temp_dir();
        let hour = Duration::from_secs(3600);
        let ring = KeyRing::open(&dir, hour, hour).expect("open");
        let first = ring.current().expect("current").stored.kid.clone();
        let reopened = KeyRing::open(&dir, hour, hour).expect("reopen");
        assert_eq!(reopened.current().expect("current").stored.kid, first);

        let now = now_ms();
        assert!(!ring.rotate_if_due(now).expect("not due"));
        assert!(ring.rotate_if_due(now + 3_600_000).expect("due"));
        let second = ring.current().expect("current").stored.kid.clone();
        assert_ne!(first, second);
        // The replaced key is still published and still verifies.
        assert!(ring.decoding_key(&first).is_some());
        assert_eq!(ring.jwks()["keys"].as_array().map(Vec::len), Some(2));
        // Once its tokens can no longer be valid, it is dropped.
        ring.rotate_if_due(now + 3_600_000 + 3_600_001)
            .expect("prune");
        let kids: Vec<String> = ring
            .keys
            .load()
            .iter()
            .map(|k| k.stored.kid.clone())
            .collect();
        assert!(!kids.contains(&first), "{kids:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn signed_tokens_name_the_current_key() {
        let dir = temp_dir();
        let ring =
            KeyRing::open(&dir, Duration::from_secs(60), Duration::from_secs(60)).expect("open");
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
        let _ = std::fs::remove_dir_all(&dir);
    }
}
