//! Signing the developer CLI in: discovery from the server's protected-
//! resource metadata (RFC 9728) and its authorization server's metadata
//! (RFC 8414), then authorization code + PKCE through a loopback redirect
//! (RFC 8252) after dynamic registration, or the client-credentials grant;
//! refresh and revocation.

use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::credentials::Credential;

/// How long the CLI waits for the browser to come back.
const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(300);

/// The endpoints of the server's authorization server.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub issuer: String,
    pub authorization: String,
    pub token: String,
    pub registration: Option<String>,
    pub revocation: Option<String>,
    pub device_authorization: Option<String>,
}

fn with_well_known(url: &reqwest::Url, document: &str) -> String {
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    format!("{origin}/.well-known/{document}{path}")
}

async fn get_json(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    Ok(http
        .get(url)
        .send()
        .await
        .with_context(|| format!("fetching {url}"))?
        .error_for_status()?
        .json()
        .await?)
}

/// Finds the authorization server of the MCP server at `mcp_url`.
pub async fn discover(http: &reqwest::Client, mcp_url: &str) -> anyhow::Result<Endpoints> {
    let url = reqwest::Url::parse(mcp_url).with_context(|| format!("{mcp_url:?} is not a URL"))?;
    let prm_url = with_well_known(&url, "oauth-protected-resource");
    let prm = get_json(http, &prm_url).await?;
    // RFC 9728 §3.3: the metadata must be about this URL, or a server could
    // have the CLI fetch a token for another resource and then receive it.
    let resource = prm["resource"].as_str().unwrap_or_default();
    if resource.trim_end_matches('/') != mcp_url.trim_end_matches('/') {
        bail!("{prm_url} describes {resource:?}, not {mcp_url}; refusing to sign in");
    }
    let issuer = prm["authorization_servers"][0]
        .as_str()
        .with_context(|| format!("{prm_url} names no authorization server"))?
        .to_string();
    let issuer_url = reqwest::Url::parse(&issuer)?;
    let meta_url = with_well_known(&issuer_url, "oauth-authorization-server");
    let meta = get_json(http, &meta_url).await?;
    if meta["issuer"] != issuer.as_str() {
        bail!("{meta_url} names issuer {}, not {issuer}", meta["issuer"]);
    }
    let field = |name: &str| meta[name].as_str().map(str::to_string);
    Ok(Endpoints {
        authorization: field("authorization_endpoint").context("no authorization_endpoint")?,
        token: field("token_endpoint").context("no token_endpoint")?,
        registration: field("registration_endpoint"),
        revocation: field("revocation_endpoint"),
        device_authorization: field("device_authorization_endpoint"),
        issuer,
    })
}

/// A token endpoint's answer, made a stored credential.
fn credential(
    endpoints: &Endpoints,
    client_id: &str,
    client_secret: Option<String>,
    body: &Value,
    previous_refresh: Option<String>,
) -> anyhow::Result<Credential> {
    let access_token = body["access_token"]
        .as_str()
        .with_context(|| format!("no access_token in {body}"))?
        .to_string();
    let expires_in = body["expires_in"].as_u64().unwrap_or(3600);
    Ok(Credential {
        token_endpoint: endpoints.token.clone(),
        revocation_endpoint: endpoints.revocation.clone(),
        client_id: client_id.to_string(),
        client_secret,
        access_token,
        refresh_token: body["refresh_token"]
            .as_str()
            .map(str::to_string)
            .or(previous_refresh),
        expires_at: now() + expires_in,
        scope: body["scope"].as_str().unwrap_or_default().to_string(),
    })
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn token_request(
    http: &reqwest::Client,
    endpoint: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> anyhow::Result<Value> {
    let mut request = http.post(endpoint).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("POST {endpoint}"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "{endpoint} refused: {} ({})",
            body["error"].as_str().unwrap_or("error"),
            body["error_description"]
                .as_str()
                .unwrap_or(status.as_str())
        );
    }
    Ok(body)
}

/// The client-credentials grant, for scripts and services.
pub async fn client_credentials(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    resource: &str,
    client_id: &str,
    client_secret: &str,
    scope: Option<&str>,
) -> anyhow::Result<Credential> {
    let mut form = vec![("grant_type", "client_credentials"), ("resource", resource)];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    let body = token_request(
        http,
        &endpoints.token,
        &form,
        Some((client_id, client_secret)),
    )
    .await?;
    credential(
        endpoints,
        client_id,
        Some(client_secret.to_string()),
        &body,
        None,
    )
}

/// A new access token from the stored sign-in: the refresh token (which
/// rotates: the new one replaces it) or, for a service, its secret again.
pub async fn renew(
    http: &reqwest::Client,
    stored: &Credential,
    resource: &str,
) -> anyhow::Result<Credential> {
    let endpoints = Endpoints {
        issuer: String::new(),
        authorization: String::new(),
        token: stored.token_endpoint.clone(),
        registration: None,
        revocation: stored.revocation_endpoint.clone(),
        device_authorization: None,
    };
    if let Some(secret) = &stored.client_secret {
        let scope = (!stored.scope.is_empty()).then_some(stored.scope.as_str());
        return client_credentials(http, &endpoints, resource, &stored.client_id, secret, scope)
            .await;
    }
    let refresh = stored
        .refresh_token
        .as_deref()
        .context("the sign-in has no refresh token")?;
    let body = token_request(
        http,
        &stored.token_endpoint,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &stored.client_id),
            ("resource", resource),
        ],
        None,
    )
    .await?;
    credential(&endpoints, &stored.client_id, None, &body, None)
}

/// Revokes the sign-in's refresh token, if the server offers revocation.
pub async fn revoke(http: &reqwest::Client, stored: &Credential) -> anyhow::Result<()> {
    let (Some(endpoint), Some(token)) = (&stored.revocation_endpoint, &stored.refresh_token) else {
        return Ok(());
    };
    let mut form = vec![
        ("token", token.as_str()),
        ("token_type_hint", "refresh_token"),
    ];
    let basic = stored
        .client_secret
        .as_deref()
        .map(|s| (stored.client_id.as_str(), s));
    if basic.is_none() {
        form.push(("client_id", &stored.client_id));
    }
    token_request(http, endpoint, &form, basic).await.map(drop)
}

/// Authorization code + PKCE: registers as a public client with a loopback
/// redirect, hands `show` the URL to open, and waits for the browser.
pub async fn code_flow(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    resource: &str,
    scope: &str,
    show: impl FnOnce(&str),
) -> anyhow::Result<Credential> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("opening the loopback redirect listener")?;
    let redirect_uri = format!(
        "http://127.0.0.1:{}/callback",
        listener.local_addr()?.port()
    );
    let registration = endpoints
        .registration
        .as_deref()
        .context("the authorization server offers no registration; use --client-credentials")?;
    let registered: Value = http
        .post(registration)
        .json(&serde_json::json!({
            "client_name": "toolhost CLI",
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await?
        .error_for_status()
        .context("registering the CLI")?
        .json()
        .await?;
    let client_id = registered["client_id"]
        .as_str()
        .context("registration returned no client_id")?
        .to_string();
    let verifier = URL_SAFE_NO_PAD.encode(random_bytes());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let state = URL_SAFE_NO_PAD.encode(random_bytes());
    let mut url = reqwest::Url::parse(&endpoints.authorization)?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", &state)
        .append_pair("scope", scope)
        .append_pair("resource", resource);
    show(url.as_str());
    let query = tokio::time::timeout(SIGN_IN_TIMEOUT, wait_for_redirect(&listener))
        .await
        .context("no answer from the browser within 5 minutes")??;
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if let Some(error) = param("error") {
        bail!(
            "sign-in failed: {error} {}",
            param("error_description").unwrap_or_default()
        );
    }
    if param("state") != Some(state.as_str()) {
        bail!("the redirect carried the wrong state; not signing in");
    }
    if let Some(iss) = param("iss")
        && iss != endpoints.issuer
    {
        bail!(
            "the redirect came from issuer {iss}, not {}",
            endpoints.issuer
        );
    }
    let code = param("code").context("the redirect carried no code")?;
    let body = token_request(
        http,
        &endpoints.token,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", &verifier),
            ("client_id", &client_id),
            ("resource", resource),
        ],
        None,
    )
    .await?;
    credential(endpoints, &client_id, None, &body, None)
}

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The device authorization grant (RFC 8628), for machines without a
/// browser: `show` gets the URL to open elsewhere and the code to enter;
/// then the CLI polls until the user has answered.
pub async fn device_flow(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    resource: &str,
    scope: &str,
    show: impl FnOnce(&str, &str),
) -> anyhow::Result<Credential> {
    let device_endpoint = endpoints
        .device_authorization
        .as_deref()
        .context("the authorization server offers no device sign-in")?;
    let client_id = register(
        http,
        endpoints,
        serde_json::json!({
            "client_name": "toolhost CLI (device)",
            "grant_types": [DEVICE_GRANT, "refresh_token"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await?;
    let started = token_request(
        http,
        device_endpoint,
        &[
            ("client_id", &client_id),
            ("scope", scope),
            ("resource", resource),
        ],
        None,
    )
    .await?;
    let device_code = started["device_code"].as_str().context("no device_code")?;
    let user_code = started["user_code"].as_str().context("no user_code")?;
    let link = started["verification_uri_complete"]
        .as_str()
        .or_else(|| started["verification_uri"].as_str())
        .context("no verification_uri")?;
    show(link, user_code);
    let deadline = std::time::Instant::now()
        + Duration::from_secs(started["expires_in"].as_u64().unwrap_or(600));
    let mut interval = Duration::from_secs(started["interval"].as_u64().unwrap_or(5));
    loop {
        tokio::time::sleep(interval).await;
        if std::time::Instant::now() > deadline {
            bail!(
                "the code expired before anyone approved it; run `toolhost login --device` again"
            );
        }
        let response = http
            .post(&endpoints.token)
            .form(&[
                ("grant_type", DEVICE_GRANT),
                ("device_code", device_code),
                ("client_id", &client_id),
            ])
            .send()
            .await?;
        let ok = response.status().is_success();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if ok {
            return credential(endpoints, &client_id, None, &body, None);
        }
        match body["error"].as_str() {
            Some("authorization_pending") => {}
            Some("slow_down") => interval += Duration::from_secs(5),
            Some("access_denied") => bail!("the sign-in was refused"),
            Some("expired_token") => bail!("the code expired; run `toolhost login --device` again"),
            _ => bail!("device sign-in failed: {body}"),
        }
    }
}

/// Dynamic registration of the CLI as a public client; returns its id.
async fn register(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    metadata: Value,
) -> anyhow::Result<String> {
    let registration = endpoints
        .registration
        .as_deref()
        .context("the authorization server offers no registration; use --client-credentials")?;
    let registered: Value = http
        .post(registration)
        .json(&metadata)
        .send()
        .await?
        .error_for_status()
        .context("registering the CLI")?
        .json()
        .await?;
    Ok(registered["client_id"]
        .as_str()
        .context("registration returned no client_id")?
        .to_string())
}

/// Serves the one redirect the browser makes; returns its query.
async fn wait_for_redirect(
    listener: &tokio::net::TcpListener,
) -> anyhow::Result<Vec<(String, String)>> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        let mut buf = vec![0u8; 8192];
        let n = stream.read(&mut buf).await?;
        let head = String::from_utf8_lossy(&buf[..n]).into_owned();
        let target = head
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let Some(query) = target.strip_prefix("/callback?") else {
            // A favicon or a probe: not the redirect.
            let _ = stream
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
            continue;
        };
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
        let page =
            "<!doctype html><title>toolhost</title><p>Signed in. You can close this tab.</p>";
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
            page.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        return Ok(pairs);
    }
}

fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    let _ = getrandom::fill(&mut bytes);
    bytes
}

/// The claims of a JWT, unverified: for showing who is signed in.
pub fn peek_claims(token: &str) -> Value {
    token
        .split('.')
        .nth(1)
        .and_then(|payload| URL_SAFE_NO_PAD.decode(payload).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_paths_insert_before_the_path() {
        let url = reqwest::Url::parse("https://h.example:8443/mcp").expect("url");
        assert_eq!(
            with_well_known(&url, "oauth-protected-resource"),
            "https://h.example:8443/.well-known/oauth-protected-resource/mcp"
        );
        let issuer = reqwest::Url::parse("https://sso.example/realms/x").expect("url");
        assert_eq!(
            with_well_known(&issuer, "oauth-authorization-server"),
            "https://sso.example/.well-known/oauth-authorization-server/realms/x"
        );
    }
}
