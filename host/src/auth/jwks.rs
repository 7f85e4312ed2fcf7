//! Keys of an external identity provider: its metadata discovered from the
//! issuer URL (RFC 8414, then OpenID Connect discovery), its JWKS cached for
//! as long as its `Cache-Control` allows, and fetched again at most once per
//! [`MIN_REFETCH`] when a token names a `kid` the cache lacks (a rotation at
//! the provider). Concurrent misses share one fetch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::verify::{PublishedKey, TokenError};

/// Unknown `kid`s trigger at most one fetch this often, so a flood of tokens
/// with made-up key ids cannot turn toolhost into a JWKS hammer.
const MIN_REFETCH: Duration = Duration::from_secs(10);
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
const MIN_MAX_AGE: Duration = Duration::from_secs(30);

struct Cached {
    keys: HashMap<String, PublishedKey>,
    fresh_until: Instant,
    fetched_at: Option<Instant>,
}

pub(crate) struct RemoteKeys {
    issuer: String,
    configured_jwks_uri: Option<String>,
    client: reqwest::Client,
    cache: ArcSwap<Cached>,
    jwks_uri: tokio::sync::OnceCell<String>,
    /// Held while fetching: the single flight.
    fetching: tokio::sync::Mutex<()>,
}

impl RemoteKeys {
    pub(crate) fn new(issuer: String, jwks_uri: Option<String>) -> anyhow::Result<RemoteKeys> {
        // No environment proxy: the provider is named by configuration, and
        // a proxy variable meant for other software must not reroute (or
        // break) the fetch of the keys every token is checked with.
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(crate::http::web_client_config()?)
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()?;
        Ok(RemoteKeys {
            issuer,
            configured_jwks_uri: jwks_uri,
            client,
            cache: ArcSwap::from_pointee(Cached {
                keys: HashMap::new(),
                fresh_until: Instant::now(),
                fetched_at: None,
            }),
            jwks_uri: tokio::sync::OnceCell::new(),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// The key a token names, fetching the JWKS when the cache is stale or
    /// lacks it.
    pub(crate) async fn key(&self, kid: &str) -> Result<PublishedKey, TokenError> {
        let seen = {
            let cached = self.cache.load();
            if Instant::now() < cached.fresh_until
                && let Some(key) = cached.keys.get(kid)
            {
                return Ok(key.clone());
            }
            cached.fetched_at
        };
        let _flight = self.fetching.lock().await;
        let cached = self.cache.load_full();
        if cached.fetched_at != seen {
            // Another request fetched while this one waited.
            if let Some(key) = cached.keys.get(kid) {
                return Ok(key.clone());
            }
            if Instant::now() < cached.fresh_until {
                return Err(TokenError::UnknownKey(kid.to_string()));
            }
        }
        let stale = Instant::now() >= cached.fresh_until;
        if !stale
            && cached
                .fetched_at
                .is_some_and(|at| at.elapsed() < MIN_REFETCH)
        {
            return Err(TokenError::UnknownKey(kid.to_string()));
        }
        match self.fetch().await {
            Ok(fresh) => {
                let found = fresh.keys.get(kid).cloned();
                self.cache.store(Arc::new(fresh));
                found.ok_or_else(|| TokenError::UnknownKey(kid.to_string()))
            }
            Err(err) => {
                tracing::warn!(issuer = %self.issuer, "fetching the identity provider's keys failed: {err:#}");
                // Keep serving keys already known while the provider is down.
                let keep = Cached {
                    keys: cached.keys.clone(),
                    fresh_until: Instant::now() + MIN_REFETCH,
                    fetched_at: Some(Instant::now()),
                };
                let found = keep.keys.get(kid).cloned();
                self.cache.store(Arc::new(keep));
                found.ok_or_else(|| TokenError::KeysUnavailable(format!("{err:#}")))
            }
        }
    }

    async fn fetch(&self) -> anyhow::Result<Cached> {
        let uri = self
            .jwks_uri
            .get_or_try_init(|| async {
                match &self.configured_jwks_uri {
                    Some(uri) => Ok(uri.clone()),
                    None => self.discover().await,
                }
            })
            .await?;
        let response = self.client.get(uri).send().await?.error_for_status()?;
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age)
            .unwrap_or(DEFAULT_MAX_AGE)
            .clamp(MIN_MAX_AGE, MAX_MAX_AGE);
        let set: JwkSet = response.json().await?;
        Ok(Cached {
            keys: usable_keys(&set),
            fresh_until: Instant::now() + max_age,
            fetched_at: Some(Instant::now()),
        })
    }

    /// RFC 8414 first (the well-known segment goes before the issuer's
    /// path), then OpenID Connect discovery (appended after it). The
    /// document must name the configured issuer exactly.
    async fn discover(&self) -> anyhow::Result<String> {
        let issuer = self.issuer.trim_end_matches('/');
        let url = reqwest::Url::parse(issuer)?;
        let origin = url.origin().ascii_serialization();
        let path = url.path().trim_end_matches('/');
        let candidates = [
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{issuer}/.well-known/openid-configuration"),
        ];
        let mut last_error = None;
        for candidate in candidates {
            let attempt = async {
                let doc: Value = self
                    .client
                    .get(&candidate)
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                if doc.get("issuer").and_then(Value::as_str) != Some(self.issuer.as_str()) {
                    anyhow::bail!(
                        "{candidate} names issuer {}, not {}",
                        doc["issuer"],
                        self.issuer
                    );
                }
                doc.get("jwks_uri")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| anyhow::anyhow!("{candidate} has no jwks_uri"))
            };
            match attempt.await {
                Ok(uri) => return Ok(uri),
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no discovery document")))
    }
}

/// Signature keys with an id, usable by an accepted algorithm.
fn usable_keys(set: &JwkSet) -> HashMap<String, PublishedKey> {
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = &jwk.common.key_id else {
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let alg = match &jwk.common.key_algorithm {
            Some(alg) => match alg.to_string().parse::<Algorithm>() {
                Ok(alg) => Some(alg),
                Err(_) => continue,
            },
            None => None,
        };
        if let Ok(key) = DecodingKey::from_jwk(jwk) {
            keys.insert(kid.clone(), (key, alg));
        }
    }
    keys
}

fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|directive| {
        let value = directive.trim().strip_prefix("max-age=")?;
        value
            .trim_matches('"')
            .parse()
            .ok()
            .map(Duration::from_secs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(max_age("no-store"), None);
    }

    #[test]
    fn encryption_and_anonymous_keys_are_skipped() {
        let set: JwkSet = serde_json::from_value(serde_json::json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": "sig", "use": "sig", "alg": "ES256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "crv": "P-256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
        ]}))
        .expect("jwks");
        let keys = usable_keys(&set);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys["sig"].1, Some(Algorithm::ES256));
    }
}
