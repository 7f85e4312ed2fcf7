//! Sealed `requestState` for stateless-era input rounds: the answers a call
//! has used so far, bound to the tool and its arguments, signed so a client
//! cannot forge or alter them, and dated so an old one cannot be replayed
//! forever.
//!
//! The key lives in the data directory, so state survives a restart and is
//! shared by replicas that share the directory.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// How long a sealed state stays valid: long enough for a person to answer
/// a form, short enough that a leaked token soon stops working.
const STATE_LIFETIME: Duration = Duration::from_secs(3600);

/// Longest `requestState` accepted; a sealed state is far smaller unless a
/// client stuffs it.
const MAX_STATE_BYTES: usize = 256 * 1024;

pub(crate) struct StateKey([u8; 32]);

/// Why a `requestState` was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct InvalidState(pub(crate) &'static str);

impl StateKey {
    pub(crate) fn new(key: [u8; 32]) -> StateKey {
        StateKey(key)
    }

    /// Seals the answers a call used, for `caller`'s next round of `tool`.
    pub(crate) fn seal(
        &self,
        tool: &str,
        arguments: &Value,
        caller: &str,
        answered: &BTreeMap<String, String>,
    ) -> String {
        let mut nonce = [0u8; 12];
        let _ = getrandom::fill(&mut nonce);
        let payload = json!({
            "tool": tool,
            "args": digest(arguments),
            "sub": caller,
            "answers": answered,
            "iat": now_secs(),
            "nonce": hex::encode(nonce),
        });
        let payload = B64.encode(payload.to_string());
        let tag = B64.encode(self.tag(payload.as_bytes()));
        format!("{payload}.{tag}")
    }

    /// Opens a state sealed for `caller`'s call of `tool` with these `arguments`.
    pub(crate) fn open(
        &self,
        token: &str,
        tool: &str,
        arguments: &Value,
        caller: &str,
    ) -> Result<BTreeMap<String, String>, InvalidState> {
        if token.len() > MAX_STATE_BYTES {
            return Err(InvalidState("requestState is too large"));
        }
        let (payload, tag) = token
            .split_once('.')
            .ok_or(InvalidState("requestState is malformed"))?;
        let tag = B64
            .decode(tag)
            .map_err(|_| InvalidState("requestState is malformed"))?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&tag).map_err(|_| {
            InvalidState("requestState was altered or was not issued by this server")
        })?;
        let payload: Value = B64
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(InvalidState("requestState is malformed"))?;
        if payload["tool"] != tool || payload["args"] != digest(arguments) {
            return Err(InvalidState("requestState belongs to a different call"));
        }
        // Answers one user gave must not be replayed by another.
        if payload["sub"] != caller {
            return Err(InvalidState("requestState belongs to a different caller"));
        }
        let issued = payload["iat"].as_u64().unwrap_or(0);
        if now_secs().saturating_sub(issued) > STATE_LIFETIME.as_secs() {
            return Err(InvalidState(
                "requestState has expired; start the call again",
            ));
        }
        let answers = payload["answers"]
            .as_object()
            .map(|map| {
                map.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(answers)
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length, so this cannot fail for 32 bytes.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .expect("invariant: HMAC takes any key length")
    }

    fn tag(&self, data: &[u8]) -> Vec<u8> {
        let mut mac = self.mac();
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }
}

/// serde_json orders object keys, so equal arguments give equal digests.
fn digest(arguments: &Value) -> String {
    hex::encode(Sha256::digest(arguments.to_string().as_bytes()))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        let key = StateKey([7u8; 32]);
        let args = json!({"b": 1, "a": [true]});
        let answers = BTreeMap::from([("k".to_string(), "{\"action\":\"accept\"}".to_string())]);
        let token = key.seal("tool", &args, "alice", &answers);
        assert_eq!(
            key.open(&token, "tool", &args, "alice"),
            Ok(answers.clone())
        );
        assert_ne!(
            token,
            key.seal("tool", &args, "alice", &answers),
            "a nonce makes every state unique"
        );
        let err = key
            .open(&token, "tool", &args, "mallory")
            .expect_err("another caller");
        assert!(err.0.contains("different caller"), "{err:?}");

        let check = |token: &str, tool: &str, args: &Value, expect: &str| {
            let err = key
                .open(token, tool, args, "alice")
                .expect_err("must be refused");
            assert!(err.0.contains(expect), "{err:?}");
        };
        check(&format!("{token}-TAMPERED"), "tool", &args, "altered");
        check(&token, "other", &args, "different call");
        check(&token, "tool", &json!({"b": 2}), "different call");
        check("no-dot", "tool", &args, "malformed");
        check(
            &StateKey([8u8; 32]).seal("tool", &args, "alice", &answers),
            "tool",
            &args,
            "altered",
        );
    }
}
