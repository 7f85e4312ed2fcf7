//! OAuth 2.1 against the real server: the resource server's token checks
//! (the token-attack table), the embedded authorization server's grants,
//! registration, sign-in page and refresh-token rotation, scopes and
//! access rules, session binding, CORS and key rotation.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::{
    Server, Setup, client_builder, form_value, mint_token, set_cookies, stored_keys, tool_names,
};

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"auth-e2e","version":"1"}}}"#;

/// A client that sends no token and follows no redirects.
fn anonymous(server: &Server) -> anyhow::Result<reqwest::Client> {
    Ok(client_builder(&server.cert_path, None)?
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?)
}

fn base(server: &Server) -> String {
    server.url.trim_end_matches("/mcp").to_string()
}

/// The server's current signing key, read from its state database.
fn signing_key(data_dir: &Path) -> anyhow::Result<(String, EncodingKey)> {
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?;
    let current = stored_keys(data_dir)?
        .into_iter()
        .rfind(|k| k.active_from_ms <= now)
        .context("no current key")?;
    Ok((current.kid, EncodingKey::from_ec_der(&current.der)))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Valid claims for `server`, with `overrides` applied (null removes).
fn claims(server: &Server, overrides: Value) -> Value {
    let mut claims = json!({
        "iss": base(server), "aud": server.url, "sub": "mallory",
        "client_id": "forged", "scope": "read write",
        "iat": now(), "exp": now() + 300,
    });
    if let (Some(map), Value::Object(extra)) = (claims.as_object_mut(), overrides) {
        for (k, v) in extra {
            if v.is_null() {
                map.remove(&k);
            } else {
                map.insert(k, v);
            }
        }
    }
    claims
}

fn sign(data_dir: &Path, claims: &Value) -> anyhow::Result<String> {
    let (kid, key) = signing_key(data_dir)?;
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid);
    Ok(jsonwebtoken::encode(&header, claims, &key)?)
}

/// A token with a hand-made header and the signature of `donor`.
fn reheader(donor: &str, header: Value) -> String {
    let parts: Vec<&str> = donor.split('.').collect();
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        parts[1],
        parts[2]
    )
}

/// What a refused request got back.
struct Refusal {
    status: u16,
    challenge: String,
    body: Value,
}

async fn post_mcp(
    server: &Server,
    http: &reqwest::Client,
    url: &str,
    authorization: Option<&str>,
) -> anyhow::Result<Refusal> {
    let mut req = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INITIALIZE);
    if let Some(value) = authorization {
        req = req.header("authorization", value);
    }
    let res = req.send().await?;
    let status = res.status().as_u16();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = res.json().await.unwrap_or(Value::Null);
    let _ = server;
    Ok(Refusal {
        status,
        challenge,
        body,
    })
}

async fn with_token(server: &Server, token: &str) -> anyhow::Result<Refusal> {
    let http = anonymous(server)?;
    post_mcp(server, &http, &server.url, Some(&format!("Bearer {token}"))).await
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused_with_a_challenge() -> anyhow::Result<()> {
    let server = Setup::new().bundled("devtools").start().await?;
    let http = anonymous(&server)?;
    let metadata = format!("{}/.well-known/oauth-protected-resource/mcp", base(&server));

    // No token at all: a challenge that names the metadata and scopes, no error.
    let none = post_mcp(&server, &http, &server.url, None).await?;
    assert_eq!(none.status, 401);
    assert_eq!(
        none.challenge,
        format!("Bearer resource_metadata=\"{metadata}\", scope=\"read write\"")
    );
    assert_eq!(none.body["error"], "unauthorized");
    // GET (the event stream) is refused the same way.
    let get = http
        .get(&server.url)
        .header("accept", "text/event-stream")
        .send()
        .await?;
    assert_eq!(get.status(), 401);
    assert!(get.headers().contains_key("www-authenticate"));

    let good = server.token.clone().context("token")?;
    let now = now();
    let data = &server.data_dir;
    let (kid, _) = signing_key(data)?;
    // The token-attack table: each forged or broken token, the error and the
    // words the client is told.
    let cases: Vec<(&str, Option<String>, &str, &str)> = vec![
        (
            "scheme other than Bearer",
            Some(format!("Basic {good}")),
            "invalid_request",
            "Bearer",
        ),
        (
            "empty bearer",
            Some("Bearer ".into()),
            "invalid_request",
            "Bearer",
        ),
        (
            "not a JWT",
            Some("Bearer abc.def".into()),
            "invalid_token",
            "well-formed",
        ),
        (
            "alg none, unsigned",
            Some(format!(
                "Bearer {}",
                unsigned(&good, json!({"alg": "none", "kid": kid}))
            )),
            "invalid_token",
            "\"none\"",
        ),
        (
            "alg none with a signature",
            Some(format!(
                "Bearer {}",
                reheader(&good, json!({"alg": "none"}))
            )),
            "invalid_token",
            "\"none\"",
        ),
        (
            "HS256 signed with the public key",
            Some(format!("Bearer {}", hs256_with_public_key(&server).await?)),
            "invalid_token",
            "HS256",
        ),
        (
            "no kid",
            Some(format!(
                "Bearer {}",
                reheader(&good, json!({"alg": "ES256", "typ": "at+jwt"}))
            )),
            "invalid_token",
            "no kid",
        ),
        (
            "unknown kid",
            Some(format!(
                "Bearer {}",
                reheader(&good, json!({"alg": "ES256", "kid": "rotated-away"}))
            )),
            "invalid_token",
            "rotated-away",
        ),
        (
            "RS256 header on an EC key",
            Some(format!(
                "Bearer {}",
                reheader(&good, json!({"alg": "RS256", "kid": kid}))
            )),
            "invalid_token",
            "does not match",
        ),
        (
            "wrong issuer",
            Some(format!(
                "Bearer {}",
                sign(
                    data,
                    &claims(&server, json!({"iss": "https://evil.example"}))
                )?
            )),
            "invalid_token",
            "issuer",
        ),
        (
            "wrong audience",
            Some(format!(
                "Bearer {}",
                sign(
                    data,
                    &claims(&server, json!({"aud": "https://other.example/mcp"}))
                )?
            )),
            "invalid_token",
            "aud must include",
        ),
        (
            "audience of the bare origin",
            Some(format!(
                "Bearer {}",
                sign(data, &claims(&server, json!({"aud": base(&server)})))?
            )),
            "invalid_token",
            "aud must include",
        ),
        (
            "no audience",
            Some(format!(
                "Bearer {}",
                sign(data, &claims(&server, json!({"aud": null})))?
            )),
            "invalid_token",
            "no aud",
        ),
        (
            "no subject",
            Some(format!(
                "Bearer {}",
                sign(data, &claims(&server, json!({"sub": null})))?
            )),
            "invalid_token",
            "no sub",
        ),
        (
            "expired",
            Some(format!(
                "Bearer {}",
                sign(data, &claims(&server, json!({"exp": now - 3600})))?
            )),
            "invalid_token",
            "expired",
        ),
        (
            "not yet valid",
            Some(format!(
                "Bearer {}",
                sign(data, &claims(&server, json!({"nbf": now + 3600})))?
            )),
            "invalid_token",
            "not valid yet",
        ),
        (
            "tampered payload",
            Some(format!("Bearer {}", tamper(&good))),
            "invalid_token",
            "signature",
        ),
        (
            "signature of another token",
            Some(format!(
                "Bearer {}",
                swap_signature(&good, &sign(data, &claims(&server, json!({})))?)
            )),
            "invalid_token",
            "signature",
        ),
        (
            "foreign key with this server's kid",
            Some(format!("Bearer {}", foreign_signed(&server, &kid).await?)),
            "invalid_token",
            "signature",
        ),
    ];
    for (label, authorization, error, words) in &cases {
        let refused = post_mcp(&server, &http, &server.url, authorization.as_deref()).await?;
        assert_eq!(refused.status, 401, "{label}: {}", refused.body);
        assert_eq!(refused.body["error"], *error, "{label}: {}", refused.body);
        let description = refused.body["error_description"]
            .as_str()
            .unwrap_or_default();
        assert!(description.contains(words), "{label}: {description}");
        assert!(
            refused.challenge.contains(&format!("error=\"{error}\""))
                && refused.challenge.contains("resource_metadata="),
            "{label}: {}",
            refused.challenge
        );
    }
    // A valid token in the query string is refused: tokens end up in logs there.
    let in_query = post_mcp(
        &server,
        &http,
        &format!("{}?access_token={good}", server.url),
        None,
    )
    .await?;
    assert_eq!(
        (in_query.status, in_query.body["error"].as_str()),
        (401, Some("invalid_request"))
    );
    // And the real token works.
    assert_eq!(with_token(&server, &good).await?.status, 200);
    assert!(
        cases.len() + 2 >= 20,
        "the attack table keeps at least 20 cases"
    );
    Ok(())
}

/// A token with a hand-made header and no signature at all.
fn unsigned(donor: &str, header: Value) -> String {
    let parts: Vec<&str> = donor.split('.').collect();
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        parts[1]
    )
}

fn tamper(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap_or_default())
            .unwrap_or(Value::Null);
    payload["sub"] = json!("admin");
    format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    )
}

fn swap_signature(token: &str, donor: &str) -> String {
    let (head, _) = token.rsplit_once('.').unwrap_or((token, ""));
    let (_, sig) = donor.rsplit_once('.').unwrap_or(("", donor));
    format!("{head}.{sig}")
}

/// HS256 with the server's public key as the HMAC secret: the classic
/// algorithm-confusion forgery.
async fn hs256_with_public_key(server: &Server) -> anyhow::Result<String> {
    let jwks: Value = anonymous(server)?
        .get(format!("{}/.well-known/jwks.json", base(server)))
        .send()
        .await?
        .json()
        .await?;
    let key = &jwks["keys"][0];
    let secret = serde_json::to_vec(key)?;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = key["kid"].as_str().map(str::to_string);
    Ok(jsonwebtoken::encode(
        &header,
        &claims(server, json!({})),
        &EncodingKey::from_secret(&secret),
    )?)
}

/// Claims signed by a key of another server's data dir, claiming `kid`.
async fn foreign_signed(server: &Server, kid: &str) -> anyhow::Result<String> {
    let other = crate::harness::scratch_dir("foreign-keys");
    mint_token(
        &server.config_path,
        &other,
        "x",
        "read",
        Some(&base(server)),
    )?;
    let (_, key) = signing_key(&other)?;
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_string());
    Ok(jsonwebtoken::encode(
        &header,
        &claims(server, json!({})),
        &key,
    )?)
}

#[tokio::test]
async fn metadata_documents_describe_the_server() -> anyhow::Result<()> {
    let server = Setup::new().start().await?;
    let http = anonymous(&server)?;
    let root = base(&server);
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let doc: Value = http
            .get(format!("{root}{path}"))
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(
            doc["resource"], server.url,
            "{path}: resource is the exact URL"
        );
        assert_eq!(doc["authorization_servers"], json!([root]), "{path}");
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    }
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let doc: Value = http
            .get(format!("{root}{path}"))
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(doc["issuer"], root);
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(doc["token_endpoint"], format!("{root}/token"));
        assert_eq!(doc["registration_endpoint"], format!("{root}/register"));
        let grants = doc["grant_types_supported"].as_array().context("grants")?;
        assert!(!grants.contains(&json!("password")) && !grants.contains(&json!("implicit")));
    }
    let jwks: Value = http
        .get(format!("{root}/.well-known/jwks.json"))
        .send()
        .await?
        .json()
        .await?;
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["alg"].as_str()),
        (Some("EC"), Some("ES256"))
    );
    assert!(key.get("d").is_none(), "no private key material: {key}");
    // Unknown well-known documents get a JSON 404.
    let missing = http
        .get(format!("{root}/.well-known/oauth-protected-resource/other"))
        .send()
        .await?;
    assert_eq!(missing.status(), 404);
    Ok(())
}

/// The form parameters of a token request.
async fn token_request(
    server: &Server,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> anyhow::Result<(u16, Value)> {
    let mut req = anonymous(server)?
        .post(format!("{}/token", base(server)))
        .form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let res = req.send().await?;
    let status = res.status().as_u16();
    Ok((status, res.json().await.unwrap_or(Value::Null)))
}

/// A stateless request as `token`'s holder: status, body and challenge.
async fn call_tool(
    server: &Server,
    token: &str,
    method: &str,
    params: Value,
) -> anyhow::Result<(u16, Value, String)> {
    let reply = server.stateless_as(token, method, params).await?;
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    Ok((reply.status, reply.json(), challenge))
}

#[tokio::test]
async fn client_credentials_scopes_and_access_rules() -> anyhow::Result<()> {
    let server = Setup::new()
        .bundled("devtools")
        .fixture("hostile")
        .config(
            "[[auth.rules]]\neffect = \"deny\"\nplugin = \"devtools\"\ntools = [\"hash\"]\nsubjects = [\"e2e\"]\n",
        )
        .start()
        .await?;
    let (id, secret) = server.add_client("ci-bot", "read write")?;

    // Wrong secret, unknown client, grants that do not exist here, scopes
    // and resources that are not on offer: each with its status and error.
    let cc = ("grant_type", "client_credentials");
    // (form fields, Basic credentials, status, error)
    type Case<'a> = (Vec<(&'a str, &'a str)>, (&'a str, &'a str), u16, &'a str);
    let refusals: Vec<Case<'_>> = vec![
        (vec![cc], (&id, "wrong"), 401, "invalid_client"),
        (vec![cc], ("th-nobody", "x"), 401, "invalid_client"),
        (
            vec![
                ("grant_type", "password"),
                ("username", "admin"),
                ("password", "x"),
            ],
            (&id, &secret),
            400,
            "unauthorized_client",
        ),
        (
            vec![cc, ("scope", "admin")],
            (&id, &secret),
            400,
            "invalid_scope",
        ),
        (
            vec![cc, ("resource", "https://elsewhere.example/mcp")],
            (&id, &secret),
            400,
            "invalid_target",
        ),
    ];
    for (form, basic, status, error) in refusals {
        let (got, body) = token_request(&server, &form, Some(basic)).await?;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{form:?}: {body}"
        );
    }

    // A read-only token: read-only tools are listed and callable; a tool
    // that writes is hidden and refused with the scope it needs.
    let (status, body) = token_request(
        &server,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "read"),
            ("resource", &server.url),
        ],
        Some((&id, &secret)),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(
        body.get("refresh_token").is_none(),
        "client_credentials gets no refresh token"
    );
    let reader = body["access_token"]
        .as_str()
        .context("access_token")?
        .to_string();
    let (_, full, _) = call_tool(
        &server,
        server.token.as_deref().context("token")?,
        "tools/list",
        json!({}),
    )
    .await?;
    let all = tool_names(&full);
    let (_, list, _) = call_tool(&server, &reader, "tools/list", json!({})).await?;
    let readable = tool_names(&list);
    let writer_tool = full["result"]["tools"]
        .as_array()
        .and_then(|tools| {
            tools
                .iter()
                .find(|t| t["annotations"]["readOnlyHint"] != true)
        })
        .and_then(|t| t["name"].as_str())
        .with_context(|| format!("a tool that is not read-only in {full}"))?
        .to_string();
    assert!(
        readable.contains(&"whoami".to_string()) && !readable.contains(&writer_tool),
        "{readable:?}"
    );
    let (status, body, challenge) = call_tool(
        &server,
        &reader,
        "tools/call",
        json!({"name": writer_tool, "arguments": {}}),
    )
    .await?;
    assert_eq!(status, 403, "{body}");
    assert!(
        challenge.contains("error=\"insufficient_scope\"") && challenge.contains("scope=\"write\""),
        "{challenge}"
    );
    assert_eq!(
        body["id"], 7,
        "the JSON-RPC error answers the request: {body}"
    );

    // The plugin learns who calls, never with what token.
    let (status, body, _) = call_tool(
        &server,
        &reader,
        "tools/call",
        json!({"name": "whoami", "arguments": {}}),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let who = &body["result"]["structuredContent"];
    assert_eq!(who["subject"], id.as_str());
    assert_eq!(who["client_id"], id.as_str());
    assert_eq!(who["scopes"], json!(["read"]));
    assert!(
        !body.to_string().contains(&reader),
        "the token reached the plugin"
    );

    // The deny rule: `e2e` may not see or call devtools' hash; others may.
    let e2e = server.token.as_deref().context("token")?;
    assert!(
        !all.contains(&"hash".to_string()),
        "denied tool listed: {all:?}"
    );
    let (status, body, _) = call_tool(
        &server,
        e2e,
        "tools/call",
        json!({"name": "hash", "arguments": {"input": "abc"}}),
    )
    .await?;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("denied"),
        "{body}"
    );
    let (status, body, _) = call_tool(
        &server,
        &reader,
        "tools/call",
        json!({"name": "hash", "arguments": {"input": "abc"}}),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}

#[tokio::test]
async fn sessions_belong_to_the_principal_that_opened_them() -> anyhow::Result<()> {
    let server = Setup::new().bundled("devtools").start().await?;
    let session = server.session("2025-11-25").await?;
    let other = mint_token(
        &server.config_path,
        &server.data_dir,
        "someone-else",
        "read write",
        None,
    )?;
    let res = anonymous(&server)?
        .post(&server.url)
        .bearer_auth(&other)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session.id)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .send()
        .await?;
    assert_eq!(
        res.status(),
        404,
        "another principal must not use the session"
    );
    // Its owner still can.
    let reply = session
        .post(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}))
        .await?;
    assert_eq!(reply.status, 200);
    Ok(())
}

struct Pkce {
    verifier: String,
    challenge: String,
}

fn pkce(seed: &str) -> Pkce {
    let verifier = format!("{seed}-{}", "v".repeat(50));
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

async fn register(server: &Server, body: Value) -> anyhow::Result<(u16, Value)> {
    let res = anonymous(server)?
        .post(format!("{}/register", base(server)))
        .json(&body)
        .send()
        .await?;
    let status = res.status().as_u16();
    Ok((status, res.json().await.unwrap_or(Value::Null)))
}

fn query_of(location: &str) -> HashMap<String, String> {
    let query = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn authorization_code_with_pkce_and_rotating_refresh_tokens() -> anyhow::Result<()> {
    let server = Setup::new().bundled("devtools").start().await?;
    let http = anonymous(&server)?;
    let root = base(&server);
    let password = server.admin_password()?;

    // Registration refuses redirects that run in the browser or leave the
    // machine over plain http, and grants that act without a user.
    let refusals = [
        (
            json!({"redirect_uris": ["javascript:alert(1)"], "token_endpoint_auth_method": "none"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["http://evil.example/cb"], "token_endpoint_auth_method": "none"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["http://localhost:1/cb"], "grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
        ),
    ];
    for (request, error) in refusals {
        let (status, body) = register(&server, request.clone()).await?;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(error)),
            "{request}: {body}"
        );
    }
    let (status, client) = register(
        &server,
        json!({
            "client_name": "e2e <script>", "redirect_uris": ["http://localhost:33418/callback"],
            "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none",
        }),
    )
    .await?;
    assert_eq!(status, 201, "{client}");
    let client_id = client["client_id"]
        .as_str()
        .context("client_id")?
        .to_string();
    assert!(
        client.get("client_secret").is_none(),
        "public clients get no secret"
    );

    let pkce_one = pkce("one");
    let authorize_url = |redirect: &str, pkce: &Pkce, state: &str| {
        format!(
            "{root}/authorize?response_type=code&client_id={client_id}&redirect_uri={}&code_challenge={}&code_challenge_method=S256&state={state}&scope=read+write&resource={}",
            redirect.replace(':', "%3A").replace('/', "%2F"),
            pkce.challenge,
            server.url.replace(':', "%3A").replace('/', "%2F"),
        )
    };
    // An unregistered redirect is an error page, never a redirect.
    let res = http
        .get(authorize_url(
            "http://localhost:1/elsewhere",
            &pkce_one,
            "s0",
        ))
        .send()
        .await?;
    assert_eq!(res.status(), 400);
    // No PKCE: back to the client with invalid_request.
    let res = http
        .get(format!("{root}/authorize?response_type=code&client_id={client_id}&redirect_uri=http%3A%2F%2Flocalhost%3A33418%2Fcallback&state=s1"))
        .send()
        .await?;
    assert_eq!(res.status(), 302);
    let location = res.headers()["location"].to_str()?.to_string();
    assert_eq!(
        query_of(&location)["error"],
        "invalid_request",
        "{location}"
    );
    assert_eq!(query_of(&location)["state"], "s1");
    // The implicit grant does not exist.
    let res = http
        .get(format!("{root}/authorize?response_type=token&client_id={client_id}&redirect_uri=http%3A%2F%2Flocalhost%3A33418%2Fcallback&code_challenge={}&code_challenge_method=S256", pkce_one.challenge))
        .send()
        .await?;
    assert_eq!(
        query_of(res.headers()["location"].to_str()?)["error"],
        "unsupported_response_type"
    );

    // The sign-in page, on a loopback redirect with another port.
    let redirect = "http://127.0.0.1:50123/callback";
    let page = http
        .get(authorize_url(redirect, &pkce_one, "s2"))
        .send()
        .await?;
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let cookies = set_cookies(&page);
    let flow_cookie = cookies
        .iter()
        .find(|c| c.starts_with("__Host-toolhost-flow="))
        .context("flow cookie")?
        .clone();
    let html = page.text().await?;
    assert!(
        html.contains("e2e &lt;script&gt;"),
        "the client name is escaped"
    );
    let flow = form_value(&html, "flow").context("flow")?;
    let csrf = form_value(&html, "csrf").context("csrf")?;
    let submit = |cookie: Option<&str>, fields: Vec<(&str, String)>| {
        let mut req = http.post(format!("{root}/authorize")).form(&fields);
        if let Some(cookie) = cookie {
            req = req.header("cookie", cookie.to_string());
        }
        req.send()
    };
    // Without the flow cookie (a cross-site POST), or with a wrong CSRF token: refused.
    let res = submit(
        None,
        vec![
            ("flow", flow.clone()),
            ("csrf", csrf.clone()),
            ("action", "allow".into()),
            ("username", "admin".into()),
            ("password", password.clone()),
        ],
    )
    .await?;
    assert_eq!(res.status(), 403);
    let res = submit(
        Some(&flow_cookie),
        vec![
            ("flow", flow.clone()),
            ("csrf", "0".repeat(64)),
            ("action", "allow".into()),
            ("username", "admin".into()),
            ("password", password.clone()),
        ],
    )
    .await?;
    assert_eq!(res.status(), 403);
    // A wrong password shows the form again.
    let res = submit(
        Some(&flow_cookie),
        vec![
            ("flow", flow.clone()),
            ("csrf", csrf.clone()),
            ("action", "allow".into()),
            ("username", "admin".into()),
            ("password", "wrong-password".into()),
        ],
    )
    .await?;
    assert_eq!(res.status(), 401);
    assert!(res.text().await?.contains("Wrong user name or password"));
    // The right one sends the browser back with a code and the state.
    let res = submit(
        Some(&flow_cookie),
        vec![
            ("flow", flow.clone()),
            ("csrf", csrf.clone()),
            ("action", "allow".into()),
            ("username", "admin".into()),
            ("password", password.clone()),
        ],
    )
    .await?;
    assert_eq!(res.status(), 302);
    let session_cookie = set_cookies(&res)
        .into_iter()
        .find(|c| c.starts_with("__Host-toolhost-session="))
        .context("session cookie")?;
    let back = query_of(res.headers()["location"].to_str()?);
    assert!(res.headers()["location"].to_str()?.starts_with(redirect));
    assert_eq!(back["state"], "s2");
    assert_eq!(back["iss"], root);
    let code = back["code"].clone();
    // The flow was single-use.
    let res = submit(
        Some(&flow_cookie),
        vec![
            ("flow", flow.clone()),
            ("csrf", csrf.clone()),
            ("action", "allow".into()),
            ("username", "admin".into()),
            ("password", password.clone()),
        ],
    )
    .await?;
    assert_eq!(res.status(), 400);

    // Token exchange: wrong verifier and wrong redirect fail; the code is then spent.
    let exchange = |code: String, verifier: String, redirect: String| {
        let client_id = client_id.clone();
        let server = &server;
        async move {
            token_request(
                server,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", &redirect),
                    ("code_verifier", &verifier),
                    ("client_id", &client_id),
                ],
                None,
            )
            .await
        }
    };
    let (status, body) = exchange(code.clone(), pkce("other").verifier, redirect.into()).await?;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("PKCE"),
        "{body}"
    );

    // A fresh sign-in (consent is remembered: no page this time).
    let res = http
        .get(authorize_url(redirect, &pkce_one, "s3"))
        .header("cookie", session_cookie.clone())
        .send()
        .await?;
    assert_eq!(res.status(), 302, "consent was remembered");
    let code = query_of(res.headers()["location"].to_str()?)["code"].clone();
    let (status, body) = exchange(
        code.clone(),
        pkce_one.verifier.clone(),
        "http://127.0.0.1:50123/other".into(),
    )
    .await?;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "redirect mismatch: {body}"
    );

    let res = http
        .get(authorize_url(redirect, &pkce_one, "s4"))
        .header("cookie", session_cookie.clone())
        .send()
        .await?;
    let code = query_of(res.headers()["location"].to_str()?)["code"].clone();
    let (status, tokens) =
        exchange(code.clone(), pkce_one.verifier.clone(), redirect.into()).await?;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"]
        .as_str()
        .context("access")?
        .to_string();
    let refresh1 = tokens["refresh_token"]
        .as_str()
        .context("refresh")?
        .to_string();
    let (status, body, _) = call_tool(
        &server,
        &access,
        "tools/call",
        json!({"name": "whoami", "arguments": {}}),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["structuredContent"]["subject"], "admin");
    assert_eq!(
        body["result"]["structuredContent"]["client_id"],
        client_id.as_str()
    );
    // Replaying the code fails and revokes what it produced.
    let (status, body) = exchange(code, pkce_one.verifier.clone(), redirect.into()).await?;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let refresh = |token: String| {
        let client_id = client_id.clone();
        let server = &server;
        async move {
            token_request(
                server,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                    ("client_id", &client_id),
                ],
                None,
            )
            .await
        }
    };
    let (status, body) = refresh(refresh1.clone()).await?;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "code replay revoked the family: {body}"
    );

    // Rotation and reuse detection on a new sign-in.
    let res = http
        .get(authorize_url(redirect, &pkce_one, "s5"))
        .header("cookie", session_cookie.clone())
        .send()
        .await?;
    let code = query_of(res.headers()["location"].to_str()?)["code"].clone();
    let (_, tokens) = exchange(code, pkce_one.verifier.clone(), redirect.into()).await?;
    let first = tokens["refresh_token"]
        .as_str()
        .context("refresh")?
        .to_string();
    let (status, rotated) = refresh(first.clone()).await?;
    assert_eq!(status, 200, "{rotated}");
    let second = rotated["refresh_token"]
        .as_str()
        .context("rotated")?
        .to_string();
    assert_ne!(first, second, "refresh tokens rotate on every use");
    let (status, body) = refresh(first).await?;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "reuse: {body}"
    );
    let (status, body) = refresh(second).await?;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "reuse revokes the family: {body}"
    );

    // Revocation of a live refresh token.
    let res = http
        .get(authorize_url(redirect, &pkce_one, "s6"))
        .header("cookie", session_cookie)
        .send()
        .await?;
    let code = query_of(res.headers()["location"].to_str()?)["code"].clone();
    let (_, tokens) = exchange(code, pkce_one.verifier.clone(), redirect.into()).await?;
    let live = tokens["refresh_token"]
        .as_str()
        .context("refresh")?
        .to_string();
    let res = http
        .post(format!("{root}/revoke"))
        .form(&[("token", live.as_str()), ("client_id", client_id.as_str())])
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let (status, _) = refresh(live).await?;
    assert_eq!(status, 400, "revoked");
    // An unknown client is told to register again.
    let (status, body) = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "a.b"),
            ("client_id", "th-gone"),
        ],
        None,
    )
    .await?;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
    Ok(())
}

#[tokio::test]
async fn cors_preflights_are_answered_for_allowed_origins() -> anyhow::Result<()> {
    let server = Setup::new()
        .config("[mcp]\nallowed_origins = [\"https://inspector.example\"]")
        .start()
        .await?;
    let http = anonymous(&server)?;
    for path in [
        "/mcp",
        "/token",
        "/register",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let res = http
            .request(reqwest::Method::OPTIONS, format!("{}{path}", base(&server)))
            .header("origin", "https://inspector.example")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, mcp-protocol-version",
            )
            .send()
            .await?;
        assert_eq!(res.status(), 204, "{path}");
        let headers = res.headers();
        assert_eq!(
            headers["access-control-allow-origin"],
            "https://inspector.example"
        );
        let allowed = headers["access-control-allow-headers"].to_str()?;
        assert!(
            allowed.contains("authorization") && allowed.contains("mcp-protocol-version"),
            "{allowed}"
        );
    }
    // Responses (even a 401) are readable, with the MCP headers exposed.
    let res = http
        .post(&server.url)
        .header("origin", "https://inspector.example")
        .header("content-type", "application/json")
        .body(INITIALIZE)
        .send()
        .await?;
    assert_eq!(res.status(), 401);
    let exposed = res.headers()["access-control-expose-headers"].to_str()?;
    assert!(
        exposed.contains("www-authenticate") && exposed.contains("mcp-session-id"),
        "{exposed}"
    );
    // Another origin gets no CORS headers.
    let res = http
        .request(reqwest::Method::OPTIONS, &server.url)
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await?;
    assert!(res.headers().get("access-control-allow-origin").is_none());
    Ok(())
}

#[tokio::test]
async fn rotated_keys_keep_tokens_valid_until_they_age_out() -> anyhow::Result<()> {
    let server = Setup::new()
        .bundled("devtools")
        .config("[auth]\nkey_rotation = \"3s\"\naccess_token_ttl = \"4s\"\nrefresh_token_ttl = \"1h\"\nleeway_ms = 0")
        .start()
        .await?;
    // Minted for an hour: longer than its key is kept after rotation.
    let token = server.token.clone().context("token")?;
    let token_kid = jsonwebtoken::decode_header(&token)?.kid.context("kid")?;
    let kids = |jwks: &Value| -> Vec<String> {
        jwks["keys"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| k["kid"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let http = anonymous(&server)?;
    let jwks_url = format!("{}/.well-known/jwks.json", base(&server));
    // After a rotation the token's key is published beside the new one and
    // the token still works.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let now: Value = http.get(&jwks_url).send().await?.json().await?;
        let published = kids(&now);
        anyhow::ensure!(
            published.contains(&token_kid),
            "the token's key was dropped early: {published:?}"
        );
        if published.len() >= 2 {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "no rotation within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        with_token(&server, &token).await?.status,
        200,
        "valid across the rotation"
    );
    // Once no token of the old key can be valid any more, it is dropped.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let refused = with_token(&server, &token).await?;
        if refused.status == 401 {
            let description = refused.body["error_description"]
                .as_str()
                .unwrap_or_default();
            assert!(description.contains(&token_kid), "{description}");
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the old key never aged out"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(())
}

#[tokio::test]
async fn issuer_state_survives_a_restart() -> anyhow::Result<()> {
    let mut server = Setup::new().bundled("devtools").start().await?;
    let (id, secret) = server.add_client("ci-bot", "read")?;
    let kid = jsonwebtoken::decode_header(server.token.as_deref().context("token")?)?.kid;
    let data_dir = server.data_dir.clone();
    server.kill();
    let again = Setup::new()
        .bundled("devtools")
        .data_dir(data_dir)
        .start()
        .await?;
    // The same signing key, the same clients, no second first-run user.
    let again_kid = jsonwebtoken::decode_header(again.token.as_deref().context("token")?)?.kid;
    assert_eq!(kid, again_kid, "the signing key was kept");
    let (status, body) = token_request(
        &again,
        &[("grant_type", "client_credentials")],
        Some((&id, &secret)),
    )
    .await?;
    assert_eq!(status, 200, "the client survived: {body}");
    let token = body["access_token"].as_str().context("access_token")?;
    assert_eq!(with_token(&again, token).await?.status, 200);
    assert!(
        again.stdout_line("first run:").is_none(),
        "no new first user on restart"
    );
    Ok(())
}

#[tokio::test]
async fn auth_off_is_refused_off_loopback() -> anyhow::Result<()> {
    let out = std::process::Command::new(crate::harness::toolhost_bin())
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env("TOOLHOST_AUTH__MODE", "off")
        .arg("--data-dir")
        .arg(crate::harness::scratch_dir("auth-off"))
        .output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
    Ok(())
}

#[tokio::test]
async fn users_added_on_the_command_line_can_sign_in() -> anyhow::Result<()> {
    let server = Setup::new().bundled("devtools").start().await?;
    let mut add = std::process::Command::new(crate::harness::toolhost_bin())
        .args(["user", "add", "alice", "--groups", "dev,ops"])
        .arg("--config")
        .arg(&server.config_path)
        .arg("--data-dir")
        .arg(&server.data_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    {
        use std::io::Write;
        let mut stdin = add.stdin.take().context("stdin")?;
        stdin.write_all(b"correct horse battery\n")?;
    }
    let out = add.wait_with_output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = crate::harness::stored_rows(
        &server.data_dir,
        "SELECT name, password, groups FROM users WHERE name = 'alice'",
    )?;
    assert!(
        stored.len() == 1
            && stored[0][1].starts_with("$argon2id$")
            && !stored[0][1].contains("correct horse"),
        "{stored:?}"
    );

    // A short password is refused.
    let mut short = std::process::Command::new(crate::harness::toolhost_bin())
        .args(["user", "add", "bob"])
        .arg("--data-dir")
        .arg(&server.data_dir)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()?;
    {
        use std::io::Write;
        short.stdin.take().context("stdin")?.write_all(b"short\n")?;
    }
    let refused = short.wait_with_output()?;
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("passwords need at least 8 characters"),
        "refused for its length: {said}"
    );
    let listed = server.admin(&["user", "list"]).output()?;
    let listed = String::from_utf8(listed.stdout)?;
    assert!(listed.contains("alice\tdev,ops"), "{listed}");
    assert!(!listed.contains("bob"), "nothing saved: {listed}");

    // Alice signs in (no restart needed) and her groups ride in the token.
    let (status, client) = register(
        &server,
        json!({"redirect_uris": ["http://localhost:9/cb"], "token_endpoint_auth_method": "none"}),
    )
    .await?;
    assert_eq!(status, 201);
    let client_id = client["client_id"].as_str().context("client_id")?;
    let pkce = pkce("alice");
    let url = format!(
        "{}/authorize?response_type=code&client_id={client_id}&redirect_uri=http%3A%2F%2Flocalhost%3A9%2Fcb&code_challenge={}&code_challenge_method=S256&state=x",
        base(&server),
        pkce.challenge
    );
    let location = server
        .sign_in(&url, "alice", "correct horse battery")
        .await?;
    let code = query_of(&location)["code"].clone();
    let (status, tokens) = token_request(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://localhost:9/cb"),
            ("code_verifier", &pkce.verifier),
            ("client_id", client_id),
        ],
        None,
    )
    .await?;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().context("access_token")?;
    let payload = access.split('.').nth(1).context("payload")?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload)?)?;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["groups"], json!(["dev", "ops"]));
    assert_eq!(claims["aud"], server.url);
    Ok(())
}

/// Serves `document` at `/client.json` over TLS on loopback, with a
/// certificate for `localhost` whose PEM is written to `ca_path`.
async fn serve_client_document(
    ca_path: &Path,
    document: impl Fn(&str) -> Value + Send + Sync + 'static,
) -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    use tokio::io::AsyncWriteExt;
    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])?.self_signed(&key)?;
    std::fs::write(ca_path, cert.pem())?;
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )?;
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!(
        "https://localhost:{}/client.json",
        listener.local_addr()?.port()
    );
    let document = std::sync::Arc::new(document);
    let served_url = url.clone();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, document, url) =
                (acceptor.clone(), document.clone(), served_url.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut tls, &mut buf).await;
                let body = document(&url).to_string();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    Ok((url, task))
}

#[tokio::test]
async fn clients_may_identify_with_a_metadata_document() -> anyhow::Result<()> {
    let ca = crate::harness::scratch_dir("cimd").join("ca.pem");
    let (client_id, document_server) = serve_client_document(&ca, |url| {
        json!({
            "client_id": url,
            "client_name": "Document Client",
            "redirect_uris": ["http://127.0.0.1:3000/callback"],
            "token_endpoint_auth_method": "none",
        })
    })
    .await?;
    let server = Setup::new()
        .bundled("devtools")
        .config(&format!(
            "[auth]\nclient_metadata_private_addresses = true\nclient_metadata_ca = \"{}\"",
            ca.display()
        ))
        .start()
        .await?;
    let root = base(&server);
    let metadata: Value = anonymous(&server)?
        .get(format!("{root}/.well-known/oauth-authorization-server"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(metadata["client_id_metadata_document_supported"], true);

    let pkce = pkce("cimd");
    let encode = |text: &str| text.replace(':', "%3A").replace('/', "%2F");
    let url = format!(
        "{root}/authorize?response_type=code&client_id={}&redirect_uri={}&code_challenge={}&code_challenge_method=S256&state=c",
        encode(&client_id),
        encode("http://127.0.0.1:3000/callback"),
        pkce.challenge
    );
    let location = server
        .sign_in(&url, "admin", &server.admin_password()?)
        .await?;
    let code = query_of(&location)["code"].clone();
    let (status, tokens) = token_request(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:3000/callback"),
            ("code_verifier", &pkce.verifier),
            ("client_id", &client_id),
        ],
        None,
    )
    .await?;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().context("access_token")?;
    let (status, body, _) = call_tool(
        &server,
        access,
        "tools/call",
        json!({"name": "whoami", "arguments": {}}),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["result"]["structuredContent"]["client_id"],
        client_id.as_str()
    );

    // A redirect the document does not list is refused on the page.
    let res = anonymous(&server)?
        .get(url.replace("127.0.0.1%3A3000", "127.0.0.1%3A3000%2Fother"))
        .send()
        .await?;
    assert_eq!(res.status(), 400);
    document_server.abort();
    Ok(())
}

#[tokio::test]
async fn device_codes_are_polled_politely_and_can_be_refused() -> anyhow::Result<()> {
    let server = Setup::new().start().await?;
    let root = base(&server);
    let (status, client) = register(
        &server,
        json!({"grant_types": ["urn:ietf:params:oauth:grant-type:device_code"], "token_endpoint_auth_method": "none"}),
    )
    .await?;
    assert_eq!(status, 201, "{client}");
    let client_id = client["client_id"].as_str().context("client_id")?;
    let http = anonymous(&server)?;
    let started: Value = http
        .post(format!("{root}/device_authorization"))
        .form(&[("client_id", client_id), ("scope", "read")])
        .send()
        .await?
        .json()
        .await?;
    let device_code = started["device_code"].as_str().context("device_code")?;
    let user_code = started["user_code"].as_str().context("user_code")?;
    assert_eq!(started["interval"], 5);
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", device_code),
        ("client_id", client_id),
    ];
    // Each poll must be refused with exactly this error.
    let poll = |expected: &'static str| {
        let form = &form;
        let server = &server;
        async move {
            let (status, body) = token_request(server, form, None).await?;
            anyhow::ensure!(
                (status, body["error"].as_str()) == (400, Some(expected)),
                "expected {expected}, got {status} {body}"
            );
            anyhow::Ok(())
        }
    };
    poll("authorization_pending").await?;
    poll("slow_down").await?; // polled again at once

    // The approval page wants its own cookie: a forged POST is refused.
    let page = http
        .get(format!(
            "{root}/device?user_code={}",
            user_code.to_lowercase()
        ))
        .send()
        .await?;
    let cookies = set_cookies(&page).join("; ");
    let html = page.text().await?;
    let csrf = form_value(&html, "csrf").context("csrf")?;
    let forged = http
        .post(format!("{root}/device"))
        .form(&[
            ("user_code", user_code),
            ("csrf", csrf.as_str()),
            ("action", "allow"),
        ])
        .send()
        .await?;
    assert_eq!(forged.status(), 403);
    let refused = http
        .post(format!("{root}/device"))
        .header("cookie", cookies)
        .form(&[
            ("user_code", user_code),
            ("csrf", csrf.as_str()),
            ("action", "deny"),
        ])
        .send()
        .await?;
    assert_eq!(refused.status(), 200);
    poll("access_denied").await?;
    poll("expired_token").await?; // a code answers once
    // An unknown code is an error on the page, not a crash.
    let unknown = http
        .get(format!("{root}/device?user_code=BBBB-BBBB"))
        .send()
        .await?;
    assert_eq!(unknown.status(), 404);
    Ok(())
}
