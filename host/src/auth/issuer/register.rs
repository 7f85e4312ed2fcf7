//! `POST /register`: dynamic client registration (RFC 7591) for the
//! clients MCP users run: public clients (`token_endpoint_auth_method:
//! none`) with loopback, https or app-scheme redirect URIs, and clients
//! that ask for a secret. Nobody registers `client_credentials` this way:
//! that grant acts without a user, so only operators create such clients.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::store::{self, Client, Refusal};
use super::{Issuer, oauth_error};
use crate::audit::Event;
use crate::auth::principal::parse_scopes;
use crate::limits::ClientIp;

/// Bounds on one registration, so anonymous callers cannot make each
/// stored client large. Real clients register one or two short redirect
/// URIs.
const MAX_BODY: usize = 16 * 1024;
const MAX_REDIRECT_URIS: usize = 10;
const MAX_REDIRECT_URI_BYTES: usize = 512;
const MAX_CLIENT_NAME_CHARS: usize = 200;
/// Schemes that run code or read local data in a browser: never a redirect.
const FORBIDDEN_SCHEMES: &[&str] = &[
    "javascript",
    "data",
    "file",
    "vbscript",
    "about",
    "blob",
    "ftp",
    "ws",
    "wss",
];
const LOOPBACK: &[&str] = &["localhost", "127.0.0.1", "[::1]"];

#[derive(Deserialize)]
struct Request {
    #[serde(default)]
    redirect_uris: Vec<String>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    client_name: Option<String>,
    scope: Option<String>,
}

fn invalid_metadata(description: &str) -> Response {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
        description,
    )
}

pub(super) async fn register(
    State(issuer): State<Arc<Issuer>>,
    client_ip: Option<Extension<ClientIp>>,
    body: Bytes,
) -> Response {
    if body.len() > MAX_BODY {
        return invalid_metadata(&format!(
            "registration request is too large (at most {MAX_BODY} bytes)"
        ));
    }
    let request: Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => return invalid_metadata(&format!("malformed registration request: {err}")),
    };
    let method = request
        .token_endpoint_auth_method
        .as_deref()
        .unwrap_or("client_secret_basic");
    if !matches!(
        method,
        "none" | "client_secret_basic" | "client_secret_post"
    ) {
        return invalid_metadata(&format!(
            "token_endpoint_auth_method {method:?} is not supported"
        ));
    }
    let mut grant_types = request
        .grant_types
        .unwrap_or_else(|| vec!["authorization_code".into()]);
    // Each at most once: repeats would only make the stored client larger.
    let mut seen = std::collections::HashSet::new();
    grant_types.retain(|g| seen.insert(g.clone()));
    if let Some(grant) = grant_types.iter().find(|g| {
        !matches!(g.as_str(), "authorization_code" | "refresh_token")
            && g.as_str() != super::device::GRANT_TYPE
    }) {
        return invalid_metadata(&format!(
            "grant type {grant:?} cannot be registered dynamically; ask an operator for a client"
        ));
    }
    if let Some(types) = &request.response_types
        && types.iter().any(|t| t != "code")
    {
        return invalid_metadata("only the code response type is supported");
    }
    if request.redirect_uris.len() > MAX_REDIRECT_URIS {
        return invalid_metadata(&format!(
            "at most {MAX_REDIRECT_URIS} redirect_uris may be registered"
        ));
    }
    if request
        .redirect_uris
        .iter()
        .any(|uri| uri.len() > MAX_REDIRECT_URI_BYTES)
    {
        return invalid_metadata(&format!(
            "a redirect URI is at most {MAX_REDIRECT_URI_BYTES} bytes"
        ));
    }
    if request
        .client_name
        .as_ref()
        .is_some_and(|name| name.chars().count() > MAX_CLIENT_NAME_CHARS)
    {
        return invalid_metadata(&format!(
            "client_name is at most {MAX_CLIENT_NAME_CHARS} characters"
        ));
    }
    // A device-grant client has nowhere to be redirected to.
    let needs_redirect = grant_types.iter().any(|g| g == "authorization_code");
    if needs_redirect && request.redirect_uris.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            &format!("between 1 and {MAX_REDIRECT_URIS} redirect_uris are required"),
        );
    }
    for uri in &request.redirect_uris {
        if let Err(why) = check_redirect_uri(uri) {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_redirect_uri",
                &format!("{uri:?}: {why}"),
            );
        }
    }
    let scope = match request.scope.as_deref() {
        None => crate::auth::SCOPES.to_string(),
        Some(requested) => {
            let scopes = parse_scopes(requested);
            if let Some(unknown) = scopes
                .iter()
                .find(|s| !matches!(s.as_str(), "read" | "write"))
            {
                return invalid_metadata(&format!(
                    "unknown scope {unknown:?}; this server has read and write"
                ));
            }
            scopes.join(" ")
        }
    };
    let client_name = request.client_name;
    let range = client_ip.map(|Extension(ClientIp(ip))| address_range(ip));
    let secret = (method != "none").then(store::random_secret);
    let client = Client {
        client_id: format!("th-{}", store::random_id()),
        client_name: client_name.clone(),
        secret_sha256: secret.as_deref().map(store::sha256_hex),
        redirect_uris: request.redirect_uris.clone(),
        grant_types: grant_types.clone(),
        scope: scope.clone(),
        token_endpoint_auth_method: method.to_string(),
        created: store::now(),
        dynamic: true,
        registered_from: range.clone(),
        last_used: None,
    };
    let (lifetimes, per_range) = (
        issuer.settings.client_lifetimes,
        u64::from(issuer.settings.max_clients_per_range),
    );
    // Expired registrations make room before anything is counted; the
    // count and the insert are one transaction across every replica.
    let saved = issuer
        .store
        .register_client(&client, &lifetimes, per_range)
        .await;
    match saved {
        Ok(Ok(())) => {}
        Ok(Err(Refusal::Full)) => {
            return oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "too many registered clients",
            );
        }
        Ok(Err(Refusal::RangeFull { next_expiry })) => {
            let range = range.unwrap_or_default();
            tracing::info!(%range, "dynamic registration refused: the range's cap is reached");
            let wait = next_expiry
                .unwrap_or_default()
                .saturating_sub(client.created)
                .max(1);
            let mut response = oauth_error(
                StatusCode::TOO_MANY_REQUESTS,
                "temporarily_unavailable",
                &format!(
                    "{range} has registered at most {per_range} clients that are still live; \
                     a client that never signs in expires {} s after registering",
                    lifetimes.unused.as_secs()
                ),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
            return response;
        }
        Err(err) => {
            tracing::error!("saving a client registration: {err}");
            return oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "could not save the registration",
            );
        }
    }
    issuer.security_event(
        Event::ClientRegistered,
        None,
        Some(&client.client_id),
        format!(
            "dynamic registration of {:?}",
            client_name.as_deref().unwrap_or("")
        ),
    );
    let mut body = json!({
        "client_id": client.client_id,
        "client_id_issued_at": client.created,
        "redirect_uris": client.redirect_uris,
        "grant_types": grant_types,
        "response_types": ["code"],
        "token_endpoint_auth_method": method,
        "scope": scope,
    });
    if let Some(name) = client_name {
        body["client_name"] = json!(name);
    }
    if let Some(secret) = secret {
        body["client_secret"] = json!(secret);
        body["client_secret_expires_at"] = json!(0);
    }
    (
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response()
}

/// The address range registrations are counted by: an IPv4 address on its
/// own (a NAT already puts a whole office behind one), or an IPv6 /64, the
/// smallest block one subscriber is usually handed.
fn address_range(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => match ipnet::Ipv6Net::new(v6, 64) {
                Ok(net) => net.trunc().to_string(),
                Err(_) => v6.to_string(),
            },
        },
    }
}

/// Redirect URIs a client may register: https anywhere, http only to this
/// machine (native apps, RFC 8252 §7.3), or an app's own scheme (§7.1);
/// never a fragment or a scheme that runs in the browser.
pub(crate) fn check_redirect_uri(uri: &str) -> Result<(), &'static str> {
    let url = reqwest::Url::parse(uri).map_err(|_| "not an absolute URL")?;
    if url.fragment().is_some() {
        return Err("must not have a fragment");
    }
    let scheme = url.scheme();
    if FORBIDDEN_SCHEMES.contains(&scheme) {
        return Err("this scheme is never allowed as a redirect");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials");
    }
    match scheme {
        "https" => url.host_str().map(|_| ()).ok_or("https needs a host"),
        "http" if url.host_str().is_some_and(|h| LOOPBACK.contains(&h)) => Ok(()),
        "http" => Err("plain http is only allowed to localhost, 127.0.0.1 or [::1]"),
        _ => Ok(()),
    }
}

/// Exact match, except that a loopback redirect may use any port and any of
/// the loopback names (native apps bind whatever port is free, RFC 8252 §7.3).
pub(crate) fn redirect_matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let (Ok(a), Ok(b)) = (
        reqwest::Url::parse(registered),
        reqwest::Url::parse(presented),
    ) else {
        return false;
    };
    let loopback = |u: &reqwest::Url| {
        u.scheme() == "http" && u.host_str().is_some_and(|h| LOOPBACK.contains(&h))
    };
    loopback(&a)
        && loopback(&b)
        && a.path() == b.path()
        && a.query() == b.query()
        && b.fragment().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The redirect URIs real MCP clients register.
    #[test]
    fn real_clients_redirects_are_accepted() {
        for uri in [
            "https://claude.ai/api/mcp/auth_callback", // Claude web and desktop
            "https://claude.com/api/mcp/auth_callback",
            "http://localhost:54321/callback", // Claude Code
            "http://127.0.0.1:33418/",         // VS Code (loopback)
            "https://vscode.dev/redirect",     // VS Code (web)
            "vscode://vscode.github-authentication/did-authenticate",
            "cursor://anysphere.cursor-retrieval/oauth/user-1/callback", // Cursor
            "http://localhost:3334/oauth/callback",                      // mcp-remote
            "http://localhost:6274/oauth/callback",                      // MCP Inspector
            "http://[::1]:8080/cb",
        ] {
            assert_eq!(check_redirect_uri(uri), Ok(()), "{uri}");
        }
    }

    #[test]
    fn dangerous_redirects_are_refused() {
        for uri in [
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "http://evil.example/cb",
            "https://app.test/cb#frag",
            "https://user:pw@app.test/cb",
            "/relative",
        ] {
            assert!(check_redirect_uri(uri).is_err(), "{uri}");
        }
    }

    #[test]
    fn registrations_are_counted_per_ipv4_address_and_ipv6_64() {
        let range = |ip: &str| address_range(ip.parse().expect("ip"));
        assert_eq!(range("203.0.113.7"), "203.0.113.7");
        assert_ne!(range("203.0.113.7"), range("203.0.113.8"));
        assert_eq!(range("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(range("2001:db8:1:2:ffff::9"), range("2001:db8:1:2::1"));
        assert_ne!(range("2001:db8:1:3::1"), range("2001:db8:1:2::1"));
        assert_eq!(range("::ffff:203.0.113.7"), "203.0.113.7");
    }

    #[test]
    fn loopback_redirects_match_any_port_and_name() {
        assert!(redirect_matches(
            "http://localhost:3334/cb",
            "http://127.0.0.1:4000/cb"
        ));
        assert!(redirect_matches(
            "http://127.0.0.1/cb",
            "http://localhost:1234/cb"
        ));
        assert!(!redirect_matches(
            "http://localhost:3334/cb",
            "http://localhost:3334/other"
        ));
        assert!(!redirect_matches(
            "https://app.test/cb",
            "https://app.test:444/cb"
        ));
        assert!(!redirect_matches(
            "https://app.test/cb",
            "https://app.test/cb?x=1"
        ));
    }
}
