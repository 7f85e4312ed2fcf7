//! The resource server's token check: a bearer JWT becomes a [`Principal`]
//! only if its signature, algorithm, key, issuer, audience and times hold.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::jwks::RemoteKeys;
use super::keys::{KeyRing, now_ms};
use super::principal::{Principal, parse_scopes};

/// Asymmetric algorithms only: a shared-secret (HS*) token could be forged by
/// anyone holding the public key, and `none` is no signature at all.
const ACCEPTED: &[&str] = &[
    "ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA",
];

/// Why a token was refused. The text goes into `error_description`, so it
/// tells the client what to fix without revealing key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum TokenError {
    #[error("the access token is not a well-formed JWT")]
    Malformed,
    #[error("algorithm {0:?} is not accepted; tokens must be signed with an asymmetric key")]
    Algorithm(String),
    #[error("the token header has no kid")]
    NoKid,
    #[error("no current signing key has kid {0:?}")]
    UnknownKey(String),
    #[error("the token's algorithm does not match its signing key")]
    KeyMismatch,
    #[error("the token signature is invalid")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by another issuer")]
    Issuer,
    #[error("the token is not for this server (aud must include {0})")]
    Audience(String),
    #[error("the token has no {0} claim")]
    MissingClaim(String),
    #[error("the identity provider's keys are unavailable: {0}")]
    KeysUnavailable(String),
}

pub(crate) enum KeySource {
    Embedded(Arc<KeyRing>),
    Remote(Arc<RemoteKeys>),
}

pub(crate) struct Verifier {
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) leeway: Duration,
    pub(crate) groups_claim: String,
    pub(crate) keys: KeySource,
    pub(crate) verified: VerifiedCache,
}

/// Tokens already verified, by SHA-256 of the token: a client sends the
/// same token on every request, and a signature check costs far more than
/// the hash. An entry is used only while the token is unexpired and (for
/// embedded keys) its key is still published.
#[derive(Default)]
pub(crate) struct VerifiedCache {
    entries: Mutex<HashMap<[u8; 32], Verified>>,
}

struct Verified {
    principal: Principal,
    /// `exp`, in Unix seconds.
    expires: u64,
    kid: String,
}

/// Bound on cached tokens; beyond it the cache starts over.
const MAX_VERIFIED: usize = 10_000;

impl Verifier {
    pub(crate) async fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = now_ms() / 1000;
        if let Some(principal) = self.cached(&digest, now) {
            return Ok(principal);
        }
        let (principal, expires, kid) = self.verify_uncached(token).await?;
        let mut entries = self
            .verified
            .entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if entries.len() >= MAX_VERIFIED {
            entries.clear();
        }
        entries.insert(
            digest,
            Verified {
                principal: principal.clone(),
                expires,
                kid,
            },
        );
        Ok(principal)
    }

    fn cached(&self, digest: &[u8; 32], now: u64) -> Option<Principal> {
        let mut entries = self
            .verified
            .entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let entry = entries.get(digest)?;
        let key_published = match &self.keys {
            KeySource::Embedded(ring) => ring.publishes(&entry.kid),
            KeySource::Remote(_) => true,
        };
        if now > entry.expires + self.leeway.as_secs() || !key_published {
            entries.remove(digest);
            return None;
        }
        Some(entry.principal.clone())
    }

    async fn verify_uncached(&self, token: &str) -> Result<(Principal, u64, String), TokenError> {
        let (alg_name, kid) = peek_header(token)?;
        if !ACCEPTED.contains(&alg_name.as_str()) {
            return Err(TokenError::Algorithm(alg_name));
        }
        let alg: Algorithm = alg_name
            .parse()
            .map_err(|_| TokenError::Algorithm(alg_name.clone()))?;
        let kid = kid.ok_or(TokenError::NoKid)?;
        let (key, key_alg) = match &self.keys {
            KeySource::Embedded(ring) => ring
                .decoding_key(&kid)
                .map(|(key, alg)| (key, Some(alg)))
                .ok_or_else(|| TokenError::UnknownKey(kid.clone()))?,
            KeySource::Remote(remote) => remote.key(&kid).await?,
        };
        if key.family() != alg.family() || key_alg.is_some_and(|k| k != alg) {
            return Err(TokenError::KeyMismatch);
        }
        let mut validation = Validation::new(alg);
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|err| self.classify(err.into_kind()))?;
        let expires = data
            .claims
            .get("exp")
            .and_then(Value::as_f64)
            .map(|exp| exp as u64)
            .ok_or_else(|| TokenError::MissingClaim("exp".into()))?;
        Ok((self.principal(&data.claims), expires, kid))
    }

    fn classify(&self, kind: ErrorKind) -> TokenError {
        match kind {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::InvalidIssuer => TokenError::Issuer,
            ErrorKind::InvalidAudience => TokenError::Audience(self.audience.clone()),
            ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim),
            ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat => TokenError::KeyMismatch,
            ErrorKind::InvalidSignature => TokenError::Signature,
            _ => TokenError::Malformed,
        }
    }

    fn principal(&self, claims: &Map<String, Value>) -> Principal {
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_string);
        // `scope` (RFC 9068) is a space-separated string; Entra and Okta use
        // `scp`, as a string or an array.
        let scopes = match claims.get("scope").or_else(|| claims.get("scp")) {
            Some(Value::String(s)) => parse_scopes(s),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        let groups = match claims.get(&self.groups_claim) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        Principal {
            subject: text("sub").unwrap_or_default(),
            client_id: text("client_id").or_else(|| text("azp")),
            scopes,
            groups,
        }
    }
}

/// Reads `alg` and `kid` from the header before trusting anything, so an
/// unacceptable algorithm is named rather than reported as garbage.
pub(crate) fn peek_header(token: &str) -> Result<(String, Option<String>), TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed)?;
    let header: Map<String, Value> =
        serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(TokenError::Malformed)?
        .to_string();
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok((alg, kid))
}

/// A key from a JWKS document, with the algorithm it is restricted to.
pub(crate) type PublishedKey = (DecodingKey, Option<Algorithm>);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A key ring in a scratch database; the scratch dir goes when the
    /// returned guard drops.
    async fn ring() -> (Arc<KeyRing>, crate::state::testing::Scratch) {
        let scratch = crate::state::testing::scratch().await;
        let hour = Duration::from_secs(3600);
        let ring = KeyRing::open(scratch.durable.clone(), &scratch.dir, hour, hour)
            .await
            .expect("ring");
        (Arc::new(ring), scratch)
    }

    fn verifier(ring: Arc<KeyRing>) -> Verifier {
        Verifier {
            issuer: "https://issuer.test".into(),
            audience: "https://issuer.test/mcp".into(),
            leeway: Duration::from_secs(5),
            groups_claim: "groups".into(),
            keys: KeySource::Embedded(ring),
            verified: VerifiedCache::default(),
        }
    }

    fn claims(overrides: Value) -> Value {
        let now = now_ms() / 1000;
        let mut claims = json!({
            "iss": "https://issuer.test", "aud": "https://issuer.test/mcp",
            "sub": "alice", "client_id": "cli", "scope": "read write",
            "groups": ["dev"], "iat": now, "exp": now + 60,
        });
        if let (Some(base), Value::Object(extra)) = (claims.as_object_mut(), overrides) {
            for (k, v) in extra {
                if v.is_null() {
                    base.remove(&k);
                } else {
                    base.insert(k, v);
                }
            }
        }
        claims
    }

    #[tokio::test]
    async fn a_good_token_yields_its_principal() {
        let (ring, _scratch) = ring().await;
        let token = ring.sign(&claims(json!({}))).expect("sign");
        let principal = verifier(ring).verify(&token).await.expect("valid");
        assert_eq!(principal.subject, "alice");
        assert_eq!(principal.client_id.as_deref(), Some("cli"));
        assert_eq!(principal.scopes, vec!["read", "write"]);
        assert_eq!(principal.groups, vec!["dev"]);
    }

    #[tokio::test]
    async fn claims_that_do_not_hold_are_refused_with_the_reason() {
        let (ring, _scratch) = ring().await;
        let v = verifier(ring.clone());
        let now = now_ms() / 1000;
        let cases = [
            (json!({"iss": "https://evil.test"}), TokenError::Issuer),
            (
                json!({"aud": "https://other.test/mcp"}),
                TokenError::Audience("https://issuer.test/mcp".into()),
            ),
            (json!({"aud": null}), TokenError::MissingClaim("aud".into())),
            (json!({"exp": now - 60}), TokenError::Expired),
            (json!({"nbf": now + 60}), TokenError::NotYetValid),
            (json!({"sub": null}), TokenError::MissingClaim("sub".into())),
        ];
        for (overrides, expected) in cases {
            let token = ring.sign(&claims(overrides.clone())).expect("sign");
            assert_eq!(v.verify(&token).await, Err(expected), "{overrides}");
        }
    }

    #[tokio::test]
    async fn forged_headers_are_refused() {
        let (ring, _scratch) = ring().await;
        let v = verifier(ring.clone());
        let token = ring.sign(&claims(json!({}))).expect("sign");
        let payload = token.split('.').nth(1).expect("payload");
        let forge = |header: Value, sig: &str| {
            format!(
                "{}.{payload}.{sig}",
                URL_SAFE_NO_PAD.encode(header.to_string())
            )
        };
        assert_eq!(
            v.verify(&forge(json!({"alg": "none"}), "")).await,
            Err(TokenError::Algorithm("none".into()))
        );
        assert_eq!(
            v.verify(&forge(json!({"alg": "HS256", "kid": "x"}), "abc"))
                .await,
            Err(TokenError::Algorithm("HS256".into()))
        );
        let sig = token.split('.').nth(2).expect("sig");
        assert_eq!(
            v.verify(&forge(json!({"alg": "ES256"}), sig)).await,
            Err(TokenError::NoKid)
        );
        assert_eq!(
            v.verify(&forge(json!({"alg": "ES256", "kid": "nope"}), sig))
                .await,
            Err(TokenError::UnknownKey("nope".into()))
        );
        let kid = jsonwebtoken::decode_header(&token)
            .expect("h")
            .kid
            .expect("kid");
        assert_eq!(
            v.verify(&forge(json!({"alg": "RS256", "kid": kid}), sig))
                .await,
            Err(TokenError::KeyMismatch)
        );
        assert_eq!(v.verify("not-a-jwt").await, Err(TokenError::Malformed));
        // A payload changed after signing.
        let tampered = claims(json!({"sub": "mallory"})).to_string();
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(tampered),
            parts[2]
        );
        assert_eq!(v.verify(&forged).await, Err(TokenError::Signature));
    }
}
