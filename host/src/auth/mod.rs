//! Who may call. Every `/mcp` request carries a bearer JWT that the
//! resource server ([`verify`]) turns into a [`Principal`]; [`policy`]
//! decides which tools that principal may see and call. Tokens come from
//! the embedded authorization server ([`issuer`], the default) or from an
//! external identity provider whose keys [`jwks`] fetches. With
//! `mode = "certificate"` the verified TLS client certificate is the
//! principal instead (mutual TLS; the handshake already checked it).
//!
//! **Invariants:** a token is only ever read from the `Authorization`
//! header; it never leaves this module (plugins get the [`Principal`], not
//! the token); and no request reaches MCP dispatch without a principal.

mod challenge;
pub mod issuer;
mod jwks;
mod keys;
mod policy;
mod principal;
mod verify;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};

pub use challenge::Challenge;
pub use keys::KeyRing;
pub use policy::{Decision, Policy, ToolRef};
pub use principal::{Principal, SCOPE_READ, SCOPE_WRITE};

use crate::audit::{AuditNote, AuditSink};
use crate::config::{AuthMode, Config};
use crate::limits::ClientIp;
#[cfg(feature = "fuzzing")]
pub(crate) use verify::peek_header;
use verify::{KeySource, Verifier};

/// The scopes this server knows, as advertised in metadata and challenges.
pub const SCOPES: &str = "read write";

/// The assembled auth state, shared by the middleware, MCP dispatch and the
/// authorization server's endpoints.
pub struct Auth {
    mode: AuthMode,
    /// The canonical URL of `/mcp`: the `resource` of RFC 8707 and RFC 9728.
    resource: String,
    /// Where the protected-resource metadata is served.
    metadata_url: String,
    /// The `iss` tokens must carry.
    issuer: String,
    verifier: Option<Verifier>,
    /// Swapped whole when the config file's `[[auth.rules]]` change.
    policy: arc_swap::ArcSwap<Policy>,
    embedded: Option<Arc<issuer::Issuer>>,
    /// Per-address budget of the issuer's endpoints.
    endpoint_budget: Arc<crate::limits::AddressBudget>,
    /// `certificate` mode: the scopes a client certificate carries.
    certificate_scopes: Vec<String>,
}

impl Auth {
    /// Builds the auth state for a server reachable at `base_url`.
    pub async fn new(
        config: &Config,
        base_url: &str,
        audit: AuditSink,
        state: Arc<crate::state::Durable>,
        shared_budgets: Option<crate::limits::RedisBudgets>,
    ) -> anyhow::Result<Arc<Auth>> {
        let auth = &config.auth;
        let resource = format!("{base_url}/mcp");
        let metadata_url = format!("{base_url}/.well-known/oauth-protected-resource/mcp");
        let audience = auth.audience.clone().unwrap_or_else(|| resource.clone());
        let verifier = |issuer: String, keys: KeySource| Verifier {
            issuer,
            audience: audience.clone(),
            leeway: auth.leeway_ms,
            groups_claim: auth.groups_claim.clone(),
            keys,
            verified: verify::VerifiedCache::default(),
        };
        let (issuer, verifier, embedded) = match auth.mode {
            AuthMode::Off | AuthMode::Certificate => (String::new(), None, None),
            AuthMode::External => {
                let issuer = auth.issuer.clone().context("auth.issuer is required")?;
                let keys = jwks::RemoteKeys::new(issuer.clone(), auth.jwks_uri.clone())
                    .context("creating the HTTP client for the identity provider")?;
                let v = verifier(issuer.clone(), KeySource::Remote(Arc::new(keys)));
                (issuer, Some(v), None)
            }
            AuthMode::Embedded => {
                let dir = auth_dir(&config.server.data_dir);
                crate::secret_file::create_dir(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                let ring = Arc::new(
                    KeyRing::open(
                        state.clone(),
                        &dir,
                        auth.key_rotation,
                        auth.access_token_ttl + auth.leeway_ms,
                    )
                    .await?,
                );
                let issuer_url = base_url.to_string();
                let embedded = issuer::Issuer::open(
                    &dir,
                    state,
                    issuer::Settings {
                        issuer: issuer_url.clone(),
                        resource: resource.clone(),
                        access_token_ttl: auth.access_token_ttl,
                        refresh_token_ttl: auth.refresh_token_ttl,
                        client_metadata_documents: auth.client_metadata_documents,
                        client_metadata_private_addresses: auth.client_metadata_private_addresses,
                        client_metadata_ca: auth.client_metadata_ca.clone(),
                        client_lifetimes: issuer::store::Lifetimes {
                            unused: auth.dynamic_client_unused_ttl,
                            idle: auth.dynamic_client_ttl,
                        },
                        max_clients_per_range: auth.max_clients_per_range,
                        password_failures: auth.password_failures,
                        password_backoff: auth.password_backoff,
                        max_password_checks: auth.max_password_checks,
                    },
                    ring.clone(),
                    audit,
                )?;
                let v = verifier(issuer_url.clone(), KeySource::Embedded(ring));
                (issuer_url, Some(v), Some(Arc::new(embedded)))
            }
        };
        Ok(Arc::new(Auth {
            mode: auth.mode,
            resource,
            metadata_url,
            issuer,
            verifier,
            policy: arc_swap::ArcSwap::from_pointee(Policy::new(auth.rules.clone())),
            embedded,
            endpoint_budget: Arc::new(crate::limits::AddressBudget::per_minute(
                config.limits.auth_requests_per_minute,
                config.limits.auth_burst,
                shared_budgets,
            )),
            certificate_scopes: auth.certificate_scopes.clone(),
        }))
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    pub fn policy(&self) -> arc_swap::Guard<Arc<Policy>> {
        self.policy.load()
    }

    /// Access rules from a reloaded config file.
    pub fn replace_rules(&self, rules: Vec<crate::config::AccessRule>) {
        self.policy.store(Arc::new(Policy::new(rules)));
    }

    /// The embedded authorization server, when it is the issuer.
    pub fn embedded(&self) -> Option<&Arc<issuer::Issuer>> {
        self.embedded.as_ref()
    }

    /// The challenge for a request that needs a token (or a better one).
    pub fn challenge(&self) -> Challenge<'_> {
        Challenge::new(&self.metadata_url)
    }

    /// Starts the key-rotation task of the embedded issuer, if any.
    pub fn spawn_rotation(&self) -> Option<tokio::task::JoinHandle<()>> {
        self.embedded.as_ref().map(|issuer| issuer.spawn_rotation())
    }

    /// The unauthenticated documents: protected-resource metadata, and the
    /// embedded issuer's endpoints when it is in use.
    pub fn router(self: &Arc<Self>) -> Router {
        let metadata = {
            let auth = self.clone();
            move || async move { axum::Json(auth.resource_metadata()) }
        };
        let mut router = Router::new()
            .route(
                "/.well-known/oauth-protected-resource/mcp",
                get(metadata.clone()),
            )
            .route("/.well-known/oauth-protected-resource", get(metadata))
            .route("/.well-known/{*rest}", any(not_found));
        if let Some(embedded) = &self.embedded {
            router = router.merge(issuer::router(
                embedded.clone(),
                self.endpoint_budget.clone(),
            ));
        }
        router.layer(axum::middleware::map_response(json_client_errors))
    }

    /// RFC 9728 protected-resource metadata.
    fn resource_metadata(&self) -> serde_json::Value {
        let mut doc = serde_json::json!({
            "resource": self.resource,
            "bearer_methods_supported": ["header"],
            "scopes_supported": ["read", "write"],
            "resource_name": "toolhost",
        });
        if matches!(self.mode, AuthMode::Embedded | AuthMode::External) {
            doc["authorization_servers"] = serde_json::json!([self.issuer]);
        }
        doc
    }
}

/// Where the embedded issuer keeps its state: keys, clients, users.
pub fn auth_dir(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("auth")
}

/// The middleware in front of `/mcp`: a valid bearer token or a 401.
pub async fn require_token(
    State(auth): State<Arc<Auth>>,
    mut request: Request,
    next: Next,
) -> Response {
    let client_ip = request.extensions().get::<ClientIp>().map(|c| c.0);
    if auth.mode == AuthMode::Certificate {
        let identity = request
            .extensions()
            .get::<Arc<crate::tls::ClientIdentity>>()
            .cloned();
        let Some(identity) = identity else {
            // Only reachable if the listener stopped requiring certificates.
            return refuse(auth.challenge(), "no client certificate");
        };
        let principal = Principal::from_certificate(&identity, &auth.certificate_scopes);
        request.extensions_mut().insert(principal.clone());
        let mut response = next.run(request).await;
        response.extensions_mut().insert(principal);
        return response;
    }
    let Some(verifier) = &auth.verifier else {
        let address = client_ip.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
        request
            .extensions_mut()
            .insert(Principal::anonymous(address));
        return next.run(request).await;
    };
    // RFC 6750 allows a query-string token; OAuth 2.1 and the MCP spec do
    // not, because URLs end up in logs and Referer headers.
    let query_token = request.uri().query().is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.split('=').next() == Some("access_token"))
    });
    if query_token {
        return refuse(
            auth.challenge().error(
                "invalid_request",
                "access tokens are only accepted in the Authorization header",
            ),
            "token in query string",
        );
    }
    let token = match request.headers().get(header::AUTHORIZATION) {
        None => return refuse(auth.challenge(), "no token"),
        Some(value) => match value.to_str().ok().and_then(bearer) {
            Some(token) => token.to_string(),
            None => {
                return refuse(
                    auth.challenge().error(
                        "invalid_request",
                        "the Authorization header must be `Bearer <token>`",
                    ),
                    "malformed Authorization header",
                );
            }
        },
    };
    match verifier.verify(&token).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal.clone());
            let mut response = next.run(request).await;
            response.extensions_mut().insert(principal);
            response
        }
        Err(err) => {
            tracing::info!(error = %err, "refused a bearer token");
            let reason = err.to_string();
            refuse(
                auth.challenge().error("invalid_token", &reason),
                &format!("invalid token: {reason}"),
            )
        }
    }
}

async fn not_found() -> Response {
    (
        axum::http::StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({
            "error": "not_found",
            "error_description": "no such document on this server",
        })),
    )
        .into_response()
}

/// OAuth clients parse error bodies as JSON; axum's own 4xx (wrong method,
/// unreadable body) have none, so they get one here.
async fn json_client_errors(response: Response) -> Response {
    let status = response.status();
    if !status.is_client_error() || response.headers().contains_key(header::CONTENT_TYPE) {
        return response;
    }
    let error = match status {
        axum::http::StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        axum::http::StatusCode::NOT_FOUND => "not_found",
        _ => "invalid_request",
    };
    let description = status.canonical_reason().unwrap_or("client error");
    let mut json = (
        status,
        axum::Json(serde_json::json!({ "error": error, "error_description": description })),
    )
        .into_response();
    if let Some(allow) = response.headers().get(header::ALLOW) {
        json.headers_mut().insert(header::ALLOW, allow.clone());
    }
    json
}

fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn refuse(challenge: Challenge<'_>, why: &str) -> Response {
    let mut response = challenge.unauthorized().into_response();
    response.extensions_mut().insert(AuditNote {
        operation: Some("auth".into()),
        detail: Some(why.to_string()),
        ..AuditNote::default()
    });
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn bearer_scheme_is_case_insensitive_and_needs_a_token() {
        assert_eq!(super::bearer("Bearer abc"), Some("abc"));
        assert_eq!(super::bearer("bearer  abc "), Some("abc"));
        assert_eq!(super::bearer("Basic abc"), None);
        assert_eq!(super::bearer("Bearer "), None);
    }
}
