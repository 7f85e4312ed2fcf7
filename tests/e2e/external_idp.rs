//! `auth.mode = "external"`: tokens from an identity provider, found by
//! discovery. The provider here is a stand-in speaking what Keycloak serves
//! for a realm: OpenID discovery under the realm path (and no RFC 8414
//! document, so the fallback is exercised) and a JWKS with `Cache-Control`.
//! It counts requests, so the tests can assert caching, refetch on an
//! unknown `kid`, single flight and the refetch rate limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::harness::{Server, Setup, mint_token, read_request_head, scratch_dir, stored_keys};

/// One of the provider's signing keys.
struct Key {
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
}

/// A fresh P-256 key: `toolhost token` creates a key file in an empty data
/// dir, which serves as a key generator here.
fn new_key(kid: &str, config: &std::path::Path) -> anyhow::Result<Key> {
    let dir = scratch_dir("idp-key");
    mint_token(config, &dir, "x", "read", Some("https://keygen.invalid"))?;
    let key = stored_keys(&dir)?.pop().context("no key")?;
    let encoding = EncodingKey::from_ec_der(&key.der);
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256)?;
    jwk.common.key_id = Some(kid.to_string());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(KeyAlgorithm::ES256);
    Ok(Key {
        kid: kid.to_string(),
        encoding,
        jwk,
    })
}

struct Idp {
    issuer: String,
    jwks: Arc<Mutex<Vec<Jwk>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Idp {
    async fn start(keys: Vec<Jwk>) -> anyhow::Result<Idp> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let origin = format!("http://{}", listener.local_addr()?);
        let issuer = format!("{origin}/realms/team");
        let jwks = Arc::new(Mutex::new(keys));
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let (served_jwks, served_hits, served_issuer) =
            (jwks.clone(), hits.clone(), issuer.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (jwks, hits, issuer) = (
                    served_jwks.clone(),
                    served_hits.clone(),
                    served_issuer.clone(),
                );
                tokio::spawn(async move {
                    let Ok((path, _)) = read_request_head(&mut stream).await else {
                        return;
                    };
                    if let Ok(mut hits) = hits.lock() {
                        *hits.entry(path.clone()).or_insert(0) += 1;
                    }
                    let (status, body) = match path.as_str() {
                        "/realms/team/.well-known/openid-configuration" => (
                            "200 OK",
                            json!({
                                "issuer": issuer,
                                "authorization_endpoint": format!("{issuer}/protocol/openid-connect/auth"),
                                "token_endpoint": format!("{issuer}/protocol/openid-connect/token"),
                                "jwks_uri": format!("{issuer}/protocol/openid-connect/certs"),
                                "response_types_supported": ["code"],
                                "subject_types_supported": ["public"],
                                "id_token_signing_alg_values_supported": ["ES256"],
                                "code_challenge_methods_supported": ["S256"],
                            }),
                        ),
                        "/realms/team/protocol/openid-connect/certs" => {
                            let keys = jwks.lock().map(|k| k.clone()).unwrap_or_default();
                            ("200 OK", json!({ "keys": keys }))
                        }
                        _ => ("404 Not Found", json!({"error": "not found"})),
                    };
                    let body = body.to_string();
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncache-control: max-age=300\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        Ok(Idp {
            issuer,
            jwks,
            hits,
            task,
        })
    }

    fn jwks_fetches(&self) -> usize {
        self.hits
            .lock()
            .ok()
            .and_then(|h| h.get("/realms/team/protocol/openid-connect/certs").copied())
            .unwrap_or(0)
    }

    fn token(&self, server: &Server, key: &Key, overrides: Value) -> anyhow::Result<String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        let mut claims = json!({
            "iss": self.issuer, "aud": server.url, "sub": "kc-user", "azp": "vscode",
            "scope": "openid read write", "groups": ["developers"],
            "iat": now, "exp": now + 300,
        });
        if let (Some(map), Value::Object(extra)) = (claims.as_object_mut(), overrides) {
            map.extend(extra);
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(key.kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &key.encoding)?)
    }
}

async fn whoami(server: &Server, token: &str) -> anyhow::Result<(u16, Value)> {
    let reply = server
        .stateless_as(
            token,
            "tools/call",
            json!({"name": "whoami", "arguments": {}}),
        )
        .await?;
    Ok((reply.status, reply.json()))
}

#[tokio::test]
async fn tokens_from_an_external_provider_are_verified_with_its_keys() -> anyhow::Result<()> {
    // Any embedded-auth server's config will do for the key generator.
    let keygen = Setup::new().start().await?;
    let k1 = new_key("k1", &keygen.config_path)?;
    let k2 = new_key("k2", &keygen.config_path)?;
    let k3 = new_key("k3", &keygen.config_path)?;
    drop(keygen);
    let idp = Idp::start(vec![k1.jwk.clone()]).await?;
    let server = Setup::new()
        .bundled("devtools")
        .config(&format!(
            "[auth]\nmode = \"external\"\nissuer = \"{}\"\n\n[[auth.rules]]\neffect = \"allow\"\nplugin = \"devtools\"\ngroups = [\"developers\"]",
            idp.issuer
        ))
        .start()
        .await?;

    // Clients are pointed at the provider.
    let prm: Value = server
        .client
        .get(format!(
            "{}/.well-known/oauth-protected-resource/mcp",
            server.url.trim_end_matches("/mcp")
        ))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(prm["authorization_servers"], json!([idp.issuer]));
    // The embedded issuer is not running.
    let metadata = server
        .client
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            server.url.trim_end_matches("/mcp")
        ))
        .send()
        .await?;
    assert_eq!(metadata.status(), 404);

    let (status, body) = whoami(&server, &idp.token(&server, &k1, json!({}))?).await?;
    assert_eq!(status, 200, "{body}");
    let who = &body["result"]["structuredContent"];
    assert_eq!(who["subject"], "kc-user");
    assert_eq!(who["client_id"], "vscode", "azp names the client");
    assert_eq!(idp.jwks_fetches(), 1);
    // Cached: more calls fetch nothing.
    for _ in 0..3 {
        assert_eq!(
            whoami(&server, &idp.token(&server, &k1, json!({}))?)
                .await?
                .0,
            200
        );
    }
    assert_eq!(
        idp.jwks_fetches(),
        1,
        "the JWKS is cached per its Cache-Control"
    );
    // A user outside the allowed group sees and may call nothing of devtools.
    let outsider = idp.token(
        &server,
        &k1,
        json!({"sub": "guest", "groups": ["contractors"]}),
    )?;
    assert_eq!(whoami(&server, &outsider).await?.0, 403);
    // Tokens for another audience or from another issuer are refused.
    let wrong_aud = idp.token(&server, &k1, json!({"aud": "account"}))?;
    assert_eq!(whoami(&server, &wrong_aud).await?.0, 401);
    let wrong_iss = idp.token(
        &server,
        &k1,
        json!({"iss": "http://127.0.0.1:1/realms/other"}),
    )?;
    assert_eq!(whoami(&server, &wrong_iss).await?.0, 401);

    // The provider rotates to k2. Unknown-kid refetches are rate limited, so
    // wait that out; then concurrent requests with the new key share one fetch.
    idp.jwks
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .push(k2.jwk.clone());
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    let new_token = idp.token(&server, &k2, json!({}))?;
    let calls = (0..5).map(|_| whoami(&server, &new_token));
    for result in futures::future::join_all(calls).await {
        let (status, body) = result?;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(idp.jwks_fetches(), 2, "one shared refetch for the new kid");
    // Right after, a kid the provider does not publish gets no new fetch.
    let (status, body) = whoami(&server, &idp.token(&server, &k3, json!({}))?).await?;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        idp.jwks_fetches(),
        2,
        "unknown kids cannot hammer the provider"
    );
    Ok(())
}

#[tokio::test]
async fn provider_keys_are_fetched_without_the_environment_proxy() -> anyhow::Result<()> {
    let keygen = Setup::new().start().await?;
    let k1 = new_key("k1", &keygen.config_path)?;
    drop(keygen);
    let idp = Idp::start(vec![k1.jwk.clone()]).await?;
    let proxy = TcpListener::bind("127.0.0.1:0").await?;
    let proxy_url = format!("http://{}", proxy.local_addr()?);
    let proxied = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = proxied.clone();
    let proxy_task = tokio::spawn(async move {
        while let Ok((stream, _)) = proxy.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(stream);
        }
    });
    let setup = Setup::new().bundled("devtools").config(&format!(
        "[auth]\nmode = \"external\"\nissuer = \"{}\"",
        idp.issuer
    ));
    let server = crate::auth_races::behind_proxy(setup, &proxy_url)
        .start()
        .await?;
    let (status, body) = whoami(&server, &idp.token(&server, &k1, json!({}))?).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(idp.jwks_fetches(), 1);
    assert_eq!(
        proxied.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "discovery and JWKS went through the proxy"
    );
    proxy_task.abort();
    Ok(())
}
