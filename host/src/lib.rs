//! toolhost: a remote MCP server that hosts tools as sandboxed WebAssembly
//! components.
//!
//! This file is the composition root: [`app`] is the only function that
//! names every layer of the request path.

pub mod audit;
pub mod auth;
pub mod cli;
pub mod client;
pub mod config;
mod cors;
mod fswatch;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod heap;
mod http;
pub mod limits;
pub mod mcp;
pub mod metrics;
pub mod plugins;
pub mod reconfigure;
mod secret_file;
pub mod server;
pub mod state;
pub mod tls;
pub mod watch;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

/// The whole HTTP application. Requests flow
/// TLS (in `server`) → audit → metrics → client address and allowlist →
/// CORS → bearer token (on `/mcp`) → Host/Origin guard → MCP dispatch
/// (access rules, rate limits) → registry → plugin.
/// The audit layer sits outermost so every refusal is recorded too.
pub fn app(
    mcp: Arc<mcp::McpState>,
    auth: Arc<auth::Auth>,
    audit: audit::AuditSink,
    allowlist: Arc<arc_swap::ArcSwap<limits::Allowlist>>,
    metrics: Arc<metrics::Metrics>,
    backends: Backends,
) -> Router {
    let ready = Ready {
        mcp: mcp.clone(),
        backends,
    };
    // Layers listed later wrap those listed earlier: read bottom to top.
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz).with_state(ready))
        .merge(
            mcp::router(mcp.clone()).route_layer(axum::middleware::from_fn_with_state(
                auth.clone(),
                auth::require_token,
            )),
        )
        .merge(auth.router())
        .layer(axum::middleware::from_fn_with_state(mcp, cors::layer))
        .layer(axum::middleware::from_fn_with_state(
            allowlist,
            limits::client_ip_layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics::layer,
        ))
        .layer(axum::middleware::from_fn_with_state(audit, audit::layer))
}

/// The metrics listener's routes: `/metrics`, `/healthz`, `/readyz`.
pub fn metrics_app(
    mcp: Arc<mcp::McpState>,
    audit: audit::AuditSink,
    metrics: Arc<metrics::Metrics>,
    backends: Backends,
) -> Router {
    let ready = Ready {
        mcp: mcp.clone(),
        backends,
    };
    let scrape = {
        let mcp = mcp.clone();
        move || async move {
            let body = metrics.render(&mcp.snapshot(), &audit);
            let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
            ([(axum::http::header::CONTENT_TYPE, content_type)], body)
        }
    };
    Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz).with_state(ready))
}

/// The services a replica depends on, which readiness checks.
#[derive(Clone)]
pub struct Backends {
    pub state: Arc<state::Durable>,
    /// Redis, when the rate budgets are shared.
    pub budgets: Option<Arc<state::budgets::SharedBudgets>>,
}

#[derive(Clone)]
struct Ready {
    mcp: Arc<mcp::McpState>,
    backends: Backends,
}

/// Ready once plugins are loaded and the listener serves (the server only
/// starts listening after both), and while the state database answers: a
/// replica that cannot reach it is taken out of the balancer's rotation
/// (503) and put back by itself when it can. `/healthz` stays a liveness
/// check, so such a replica is not restarted for the database's sake.
async fn readyz(
    axum::extract::State(ready): axum::extract::State<Ready>,
) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    let snapshot = ready.mcp.snapshot();
    let database = bounded(ready.backends.state.ping()).await;
    let redis = match &ready.backends.budgets {
        Some(budgets) => Some(bounded(budgets.ping()).await),
        None => None,
    };
    let failures: Vec<String> = [
        ("state database", Some(&database)),
        ("redis", redis.as_ref()),
    ]
    .into_iter()
    .filter_map(|(name, result)| match result {
        Some(Err(reason)) => Some(format!("{name}: {reason}")),
        _ => None,
    })
    .collect();
    let (status, label) = if failures.is_empty() {
        (axum::http::StatusCode::OK, "ready")
    } else {
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    let word = |r: &Result<(), String>| if r.is_ok() { "ok" } else { "unreachable" };
    let mut body = serde_json::json!({
        "status": label,
        "plugins": snapshot.plugins_loaded,
        "tools": snapshot.tools_served,
        "sessions": snapshot.sessions_open,
        "database": word(&database),
    });
    if let Some(redis) = &redis {
        body["redis"] = serde_json::Value::from(word(redis));
    }
    if !failures.is_empty() {
        tracing::warn!("not ready: {}", failures.join("; "));
        body["reason"] = serde_json::Value::from(failures.join("; "));
    }
    (status, axum::Json(body))
}

/// A readiness check that answers in time, or the reason it did not.
async fn bounded(
    check: impl std::future::Future<Output = Result<(), state::StateError>>,
) -> Result<(), String> {
    match tokio::time::timeout(READY_PING, check).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!("no answer within {READY_PING:?}")),
    }
}

/// How long `/readyz` waits for the database; probes time out at 1 s by
/// default in Kubernetes.
const READY_PING: std::time::Duration = std::time::Duration::from_millis(800);
