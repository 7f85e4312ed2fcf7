//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document,
//! the MCP spec's preferred registration): a client whose `client_id` is an
//! https URL publishes its metadata there, and the issuer fetches it instead
//! of asking the client to register.
//!
//! The fetch is made on behalf of anonymous callers, so it is fenced like a
//! plugin's outbound request: https only, the host resolved once and every
//! address checked (no private, loopback or metadata addresses unless the
//! operator allows private ones), the connection pinned to the checked
//! address and never through an environment proxy (which would connect
//! wherever it likes), no redirects, a short timeout and a small body cap.
//! Documents are cached for five minutes, failures for one, so anonymous
//! requests naming a broken URL cannot make the server fetch it again and
//! again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::register::check_redirect_uri;
use super::store::{self, Client};
use crate::auth::principal::parse_scopes;
use crate::plugins::{AddressClass, classify_address};

const MAX_BYTES: usize = 16 * 1024;
const TIMEOUT: Duration = Duration::from_secs(5);
const CACHE_FOR: Duration = Duration::from_secs(300);
const FAILURE_CACHE_FOR: Duration = Duration::from_secs(60);
const MAX_CACHED: usize = 1000;

#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum CimdError {
    #[error("client metadata documents are not accepted here")]
    Disabled,
    #[error("the client_id URL is not valid: {0}")]
    BadUrl(&'static str),
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("{host} resolves to a {class} address, which this server does not fetch from")]
    Forbidden { host: String, class: AddressClass },
    #[error("fetching the client metadata document failed: {0}")]
    Fetch(String),
    #[error("the client metadata document is invalid: {0}")]
    Invalid(String),
}

#[derive(Deserialize)]
struct Document {
    client_id: String,
    client_name: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    grant_types: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    scope: Option<String>,
}

pub(crate) struct MetadataDocuments {
    enabled: bool,
    allow_private: bool,
    tls: rustls::ClientConfig,
    cache: Mutex<HashMap<String, Cached>>,
}

/// A fetch's outcome and when it was made.
struct Cached {
    outcome: Result<Client, CimdError>,
    at: Instant,
}

impl Cached {
    fn fresh(&self) -> bool {
        let ttl = if self.outcome.is_ok() {
            CACHE_FOR
        } else {
            FAILURE_CACHE_FOR
        };
        self.at.elapsed() < ttl
    }
}

/// Whether `client_id` names a metadata document rather than a registration.
pub(crate) fn is_document_url(client_id: &str) -> bool {
    client_id.starts_with("https://")
}

impl MetadataDocuments {
    pub(crate) fn new(
        enabled: bool,
        allow_private: bool,
        extra_ca: Option<&Path>,
    ) -> anyhow::Result<MetadataDocuments> {
        let mut tls = crate::http::web_client_config()?;
        if let Some(path) = extra_ca {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
            let mut roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                roots.add(cert?)?;
            }
            let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            tls = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
        }
        Ok(MetadataDocuments {
            enabled,
            allow_private,
            tls,
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// The client the document at `url` describes.
    pub(crate) async fn client(&self, url: &str) -> Result<Client, CimdError> {
        if !self.enabled {
            return Err(CimdError::Disabled);
        }
        if let Some(cached) = self.lock().get(url)
            && cached.fresh()
        {
            return cached.outcome.clone();
        }
        let outcome = self.fetch(url).await;
        let mut cache = self.lock();
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, cached| cached.fresh());
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(
            url.to_string(),
            Cached {
                outcome: outcome.clone(),
                at: Instant::now(),
            },
        );
        outcome
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn fetch(&self, url: &str) -> Result<Client, CimdError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| CimdError::BadUrl("not a URL"))?;
        if parsed.scheme() != "https" {
            return Err(CimdError::BadUrl("it must be https"));
        }
        if parsed.path() == "/" || parsed.fragment().is_some() || !parsed.username().is_empty() {
            return Err(CimdError::BadUrl(
                "it needs a path, and no fragment or credentials",
            ));
        }
        let host = parsed
            .host_str()
            .ok_or(CimdError::BadUrl("no host"))?
            .to_string();
        let port = parsed.port_or_known_default().unwrap_or(443);
        // `[::1]` in a URL is `::1` to the resolver.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|_| CimdError::Resolve(host.clone()))?
            .collect();
        let first = *addresses
            .first()
            .ok_or_else(|| CimdError::Resolve(host.clone()))?;
        for address in &addresses {
            let class = classify_address(address.ip());
            let allowed = class == AddressClass::Public
                || (self.allow_private
                    && matches!(class, AddressClass::Private | AddressClass::Loopback));
            if !allowed {
                return Err(CimdError::Forbidden { host, class });
            }
        }
        // Pinned to the address just checked, so a second DNS answer cannot
        // point the request elsewhere; and direct, since a proxy from the
        // environment would make its own connection to anywhere.
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(self.tls.clone())
            .no_proxy()
            .resolve(&host, first)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| CimdError::Fetch(e.to_string()))?;
        let mut response = http
            .get(parsed.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| CimdError::Fetch(e.to_string()))?;
        if !response.status().is_success() {
            return Err(CimdError::Fetch(format!("HTTP {}", response.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| CimdError::Fetch(e.to_string()))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BYTES {
                return Err(CimdError::Invalid(format!("larger than {MAX_BYTES} bytes")));
            }
        }
        let doc: Document =
            serde_json::from_slice(&body).map_err(|e| CimdError::Invalid(e.to_string()))?;
        client_from(url, doc)
    }
}

/// Checks a document against the URL it came from and makes it a client.
fn client_from(url: &str, doc: Document) -> Result<Client, CimdError> {
    if doc.client_id != url {
        return Err(CimdError::Invalid(format!(
            "client_id {:?} is not the document's URL",
            doc.client_id
        )));
    }
    match doc.token_endpoint_auth_method.as_deref() {
        None | Some("none") => {}
        Some(other) => {
            return Err(CimdError::Invalid(format!(
                "token_endpoint_auth_method {other:?} is not supported; use none"
            )));
        }
    }
    if doc.redirect_uris.is_empty() {
        return Err(CimdError::Invalid("redirect_uris is required".into()));
    }
    for uri in &doc.redirect_uris {
        check_redirect_uri(uri).map_err(|why| CimdError::Invalid(format!("{uri:?}: {why}")))?;
    }
    let grant_types = doc
        .grant_types
        .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
    if let Some(grant) = grant_types
        .iter()
        .find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token"))
    {
        return Err(CimdError::Invalid(format!(
            "grant type {grant:?} is not available to metadata-document clients"
        )));
    }
    let scope = match doc.scope.as_deref() {
        None => crate::auth::SCOPES.to_string(),
        Some(requested) => parse_scopes(requested)
            .into_iter()
            .filter(|s| matches!(s.as_str(), "read" | "write"))
            .collect::<Vec<_>>()
            .join(" "),
    };
    Ok(Client {
        client_id: url.to_string(),
        client_name: doc.client_name.map(|n| n.chars().take(200).collect()),
        secret_sha256: None,
        redirect_uris: doc.redirect_uris,
        grant_types,
        scope,
        token_endpoint_auth_method: "none".into(),
        created: store::now(),
        dynamic: false,
        registered_from: None,
        last_used: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(value: serde_json::Value) -> Document {
        serde_json::from_value(value).expect("document")
    }

    #[test]
    fn documents_must_describe_themselves() {
        let url = "https://app.example/oauth/client.json";
        let ok = client_from(
            url,
            doc(serde_json::json!({
                "client_id": url, "client_name": "App",
                "redirect_uris": ["http://127.0.0.1:3000/callback"],
            })),
        )
        .expect("valid");
        assert_eq!(ok.grant_types, vec!["authorization_code", "refresh_token"]);
        assert!(ok.secret_sha256.is_none());
        for bad in [
            serde_json::json!({"client_id": "https://other.example/c.json", "redirect_uris": ["https://a/cb"]}),
            serde_json::json!({"client_id": url, "redirect_uris": []}),
            serde_json::json!({"client_id": url, "redirect_uris": ["javascript:alert(1)"]}),
            serde_json::json!({"client_id": url, "redirect_uris": ["https://a/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
            serde_json::json!({"client_id": url, "redirect_uris": ["https://a/cb"], "grant_types": ["client_credentials"]}),
        ] {
            assert!(client_from(url, doc(bad.clone())).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn private_addresses_and_plain_http_are_not_fetched() {
        let docs = MetadataDocuments::new(true, false, None).expect("docs");
        assert!(matches!(
            docs.client("https://127.0.0.1/c.json").await,
            Err(CimdError::Forbidden { .. })
        ));
        assert!(matches!(
            docs.client("https://localhost/c.json").await,
            Err(CimdError::Forbidden { .. })
        ));
        assert!(matches!(
            docs.client("https://[::1]:8443/c.json").await,
            Err(CimdError::Forbidden { .. })
        ));
        assert!(matches!(
            docs.client("https://app.example/").await,
            Err(CimdError::BadUrl(_))
        ));
        let off = MetadataDocuments::new(false, false, None).expect("docs");
        assert!(matches!(
            off.client("https://app.example/c.json").await,
            Err(CimdError::Disabled)
        ));
    }
}
