//! The embedded OAuth 2.1 authorization server, toolhost's default issuer:
//! RFC 8414 metadata, JWKS, the token endpoint (authorization code + PKCE,
//! client credentials, rotating refresh tokens), dynamic client
//! registration (RFC 7591), revocation (RFC 7009) and a server-rendered
//! sign-in and consent page.
//!
//! Durable state (keys, clients, refresh families, consents, users) lives in
//! `<data_dir>/auth`; short-lived state (pending sign-ins, codes, browser
//! sessions) lives in memory and dies with the process, which only makes a
//! user sign in again.

mod authorize;
mod cimd;
mod consent;
mod device;
mod passwords;
mod register;
pub(crate) mod store;
mod throttle;
mod token;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::keys::{KeyRing, now_ms};
use crate::audit::{AuditSink, Event, Record};
use crate::state::Durable;
use store::Client;

pub use consent::{ToolSource, ToolSummary};

/// Why a client could not be looked up.
#[derive(Debug, thiserror::Error)]
enum ClientLookupError {
    /// Its metadata document was refused: the client's fault.
    #[error(transparent)]
    Document(#[from] cimd::CimdError),
    /// The state database failed: the server's.
    #[error("the client registry could not be read: {0}")]
    State(#[from] crate::state::StateError),
}

/// What the issuer needs to know about the deployment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The `iss` of its tokens: the server's public base URL.
    pub issuer: String,
    /// The `aud` of its tokens: the canonical `/mcp` URL.
    pub resource: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Accept Client ID Metadata Documents, and from where.
    pub client_metadata_documents: bool,
    pub client_metadata_private_addresses: bool,
    pub client_metadata_ca: Option<PathBuf>,
    /// How long dynamic clients live: see [`store::Lifetimes`].
    pub client_lifetimes: store::Lifetimes,
    /// Live dynamic registrations per address range; 0: no cap.
    pub max_clients_per_range: u32,
    /// Failed sign-ins per account before it backs off, and the backoff.
    pub password_failures: u32,
    pub password_backoff: Duration,
    /// Argon2 runs at once.
    pub max_password_checks: u32,
}

/// What a token says about its holder.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub(crate) subject: String,
    pub(crate) client_id: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) groups: Vec<String>,
}

#[derive(Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    client_id: &'a str,
    scope: String,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    groups: &'a [String],
    iat: u64,
    exp: u64,
    jti: String,
}

pub struct Issuer {
    settings: Settings,
    ring: Arc<KeyRing>,
    store: Arc<Durable>,
    audit: AuditSink,
    documents: cimd::MetadataDocuments,
    /// Failed sign-ins per account name, for backoff.
    throttle: throttle::Throttle,
    /// Bounds the argon2 runs in flight.
    password_checks: passwords::PasswordChecks,
    /// What the consent page describes the scopes with; set once by the
    /// composition root, which knows the plugins.
    tools: std::sync::OnceLock<ToolSource>,
}

/// The deployment facts `toolhost token` needs to mint tokens offline,
/// written by the server at start.
#[derive(Debug, Serialize, Deserialize)]
struct Published {
    issuer: String,
    audience: String,
}

impl Issuer {
    pub(crate) fn open(
        auth_dir: &Path,
        store: Arc<Durable>,
        settings: Settings,
        ring: Arc<KeyRing>,
        audit: AuditSink,
    ) -> anyhow::Result<Issuer> {
        let published = Published {
            issuer: settings.issuer.clone(),
            audience: settings.resource.clone(),
        };
        let path = auth_dir.join("issuer.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&published)?)
            .with_context(|| format!("writing {}", path.display()))?;
        let documents = cimd::MetadataDocuments::new(
            settings.client_metadata_documents,
            settings.client_metadata_private_addresses,
            settings.client_metadata_ca.as_deref(),
        )
        .context("setting up client metadata document fetches")?;
        Ok(Issuer {
            documents,
            throttle: throttle::Throttle::new(
                store.clone(),
                settings.password_failures,
                settings.password_backoff,
            ),
            password_checks: passwords::PasswordChecks::new(settings.max_password_checks),
            settings,
            ring,
            store,
            audit,
            tools: std::sync::OnceLock::new(),
        })
    }

    /// Creates the first user, `admin`, with a random password, unless users
    /// exist (on any replica). Returns the password to show once.
    pub async fn ensure_first_user(&self) -> anyhow::Result<Option<String>> {
        if self.store.has_users().await? {
            return Ok(None);
        }
        let password = store::random_secret()[..20].to_string();
        let created = users::add_first(&self.store, "admin", &password).await?;
        Ok(created.then_some(password))
    }

    /// Where the consent page learns which tools a scope reaches. Set once;
    /// until then the page describes no tools.
    pub fn set_tool_source(&self, source: ToolSource) {
        if self.tools.set(source).is_err() {
            tracing::warn!("the consent page's tool source was already set");
        }
    }

    fn tool_summary(&self) -> ToolSummary {
        self.tools.get().map(|source| source()).unwrap_or_default()
    }

    pub(crate) fn spawn_rotation(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let issuer = self.clone();
        tokio::spawn(async move {
            let interval = issuer.ring.check_interval();
            loop {
                tokio::time::sleep(interval).await;
                match issuer.ring.rotate_if_due(now_ms()).await {
                    Ok(true) => {
                        tracing::info!("rotated the token signing key");
                        issuer
                            .audit
                            .event(Event::KeyRotated, "new token signing key");
                    }
                    Ok(false) => {}
                    Err(err) => tracing::error!("rotating the token signing key failed: {err}"),
                }
                issuer.sweep_clients().await;
            }
        })
    }

    /// Removes expired dynamic clients from the state database.
    async fn sweep_clients(&self) {
        let (lifetimes, now) = (self.settings.client_lifetimes, store::now());
        match self.store.sweep_clients(&lifetimes, now).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "expired dynamic clients removed"),
            Err(err) => tracing::error!("removing expired clients: {err}"),
        }
    }

    /// Signs an access token for `grant`.
    pub(crate) fn access_token(&self, grant: &Grant, ttl: Duration) -> anyhow::Result<String> {
        let now = store::now();
        let claims = AccessClaims {
            iss: &self.settings.issuer,
            sub: &grant.subject,
            aud: &self.settings.resource,
            client_id: &grant.client_id,
            scope: grant.scopes.join(" "),
            groups: &grant.groups,
            iat: now,
            exp: now + ttl.as_secs(),
            jti: store::random_id(),
        };
        Ok(self.ring.sign(&claims)?)
    }

    fn security_event(
        &self,
        event: Event,
        subject: Option<&str>,
        client_id: Option<&str>,
        detail: String,
    ) {
        self.audit.record(Record {
            subject: subject.map(str::to_string),
            client_id: client_id.map(str::to_string),
            ..Record::event(event, detail)
        });
    }

    /// The client named `client_id`: registered, or described by the
    /// metadata document at that URL.
    async fn client(&self, client_id: &str) -> Result<Option<Client>, ClientLookupError> {
        if cimd::is_document_url(client_id) && self.documents.enabled() {
            return Ok(Some(self.documents.client(client_id).await?));
        }
        let (lifetimes, now) = (self.settings.client_lifetimes, store::now());
        Ok(self.store.client(client_id, &lifetimes, now).await?)
    }

    fn metadata(&self) -> Value {
        let base = &self.settings.issuer;
        json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "registration_endpoint": format!("{base}/register"),
            "device_authorization_endpoint": format!("{base}/device_authorization"),
            "revocation_endpoint": format!("{base}/revoke"),
            "jwks_uri": format!("{base}/.well-known/jwks.json"),
            "scopes_supported": ["read", "write"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", device::GRANT_TYPE],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "authorization_response_iss_parameter_supported": true,
            "client_id_metadata_document_supported": self.documents.enabled(),
            // OpenID discovery requires these; toolhost issues no ID tokens.
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        })
    }
}

/// `toolhost client add`: registers a confidential client for
/// `client_credentials`. Returns its id and secret; only the secret's
/// digest is kept. A running server sees it at once (same database).
pub async fn add_client(
    store: &Durable,
    name: &str,
    scope: &str,
) -> anyhow::Result<(String, String)> {
    let client_id = format!("th-{}", store::random_id());
    let secret = store::random_secret();
    let client = Client {
        client_id: client_id.clone(),
        client_name: Some(name.to_string()),
        secret_sha256: Some(store::sha256_hex(&secret)),
        redirect_uris: Vec::new(),
        grant_types: vec!["client_credentials".into()],
        scope: super::principal::parse_scopes(scope).join(" "),
        token_endpoint_auth_method: "client_secret_basic".into(),
        created: store::now(),
        dynamic: false,
        registered_from: None,
        last_used: None,
    };
    store.insert_client(&client).await?;
    Ok((client_id, secret))
}

/// `toolhost token`: mints an access token from the local signing keys, for
/// scripts and tests. The server must have run once with this data dir (it
/// publishes its issuer URL there), unless `issuer` is given.
pub async fn mint_offline(
    store: Arc<Durable>,
    auth_dir: &Path,
    issuer: Option<&str>,
    subject: &str,
    scope: &str,
    ttl: Duration,
    key_rotation: Duration,
) -> anyhow::Result<String> {
    let path = auth_dir.join("issuer.json");
    let published: Published = match issuer {
        Some(base) => {
            let base = base.trim_end_matches('/').trim_end_matches("/mcp");
            Published {
                issuer: base.to_string(),
                audience: format!("{base}/mcp"),
            }
        }
        None => serde_json::from_slice(&std::fs::read(&path).with_context(|| {
            format!(
                "reading {} (start the server once, or pass --url)",
                path.display()
            )
        })?)
        .with_context(|| format!("parsing {}", path.display()))?,
    };
    let ring = KeyRing::open(store, auth_dir, key_rotation, ttl).await?;
    let now = store::now();
    let claims = AccessClaims {
        iss: &published.issuer,
        sub: subject,
        aud: &published.audience,
        client_id: "toolhost-cli",
        scope: super::principal::parse_scopes(scope).join(" "),
        groups: &[],
        iat: now,
        exp: now + ttl.as_secs(),
        jti: store::random_id(),
    };
    Ok(ring.sign(&claims)?)
}

/// The issuer's routes. The endpoints that act (as opposed to the
/// well-known documents) are charged to the client address in `budget`.
pub(crate) fn router(issuer: Arc<Issuer>, budget: Arc<crate::limits::AddressBudget>) -> Router {
    let metadata = {
        let issuer = issuer.clone();
        move || async move { axum::Json(issuer.metadata()) }
    };
    let jwks = {
        let issuer = issuer.clone();
        move || async move {
            (
                [(axum::http::header::CACHE_CONTROL, "public, max-age=300")],
                axum::Json(issuer.ring.jwks()),
            )
        }
    };
    let endpoints = Router::new()
        .route("/token", post(token::token))
        .route("/revoke", post(token::revoke))
        .route("/register", post(register::register))
        .route("/authorize", get(authorize::show).post(authorize::submit))
        .route("/device_authorization", post(device::start))
        .route("/device", get(device::show).post(device::submit))
        .route_layer(axum::middleware::from_fn_with_state(
            budget,
            crate::limits::address_budget_layer,
        ));
    Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata.clone()),
        )
        .route("/.well-known/openid-configuration", get(metadata))
        .route("/.well-known/jwks.json", get(jwks))
        .merge(endpoints)
        .with_state(issuer)
}

/// An OAuth error response (RFC 6749 §5.2): JSON, never cached.
pub(crate) struct OAuthError {
    status: axum::http::StatusCode,
    error: &'static str,
    description: String,
    /// Client authentication by Basic header failed: challenge for it.
    basic_challenge: bool,
}

impl OAuthError {
    pub(crate) fn new(
        status: axum::http::StatusCode,
        error: &'static str,
        description: &str,
    ) -> OAuthError {
        OAuthError {
            status,
            error,
            description: description.to_string(),
            basic_challenge: false,
        }
    }

    pub(crate) fn with_basic_challenge(mut self) -> OAuthError {
        self.basic_challenge = true;
        self
    }
}

impl axum::response::IntoResponse for OAuthError {
    fn into_response(self) -> axum::response::Response {
        let mut response = (
            self.status,
            [(axum::http::header::CACHE_CONTROL, "no-store")],
            axum::Json(json!({ "error": self.error, "error_description": self.description })),
        )
            .into_response();
        if self.basic_challenge {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"toolhost\""),
            );
        }
        response
    }
}

pub(crate) fn oauth_error(
    status: axum::http::StatusCode,
    error: &'static str,
    description: &str,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    OAuthError::new(status, error, description).into_response()
}
