//! toolhost: a remote MCP server that hosts tools as sandboxed WebAssembly
//! components.
//!
//! This file is the composition root: [`app`] is the only function that
//! names every layer of the request path.

pub mod audit;
pub mod cli;
pub mod config;
pub mod limits;
pub mod mcp;
pub mod plugins;
mod secret_file;
pub mod server;
pub mod tls;
pub mod watch;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

/// The whole HTTP application. Requests flow
/// TLS (in `server`) → audit → client address and allowlist → Host/Origin
/// guard → MCP dispatch (rate limits) → registry → plugin.
/// The audit layer sits outermost so every refusal is recorded too.
pub fn app(
    mcp: Arc<mcp::McpState>,
    audit: audit::AuditSink,
    allowlist: Arc<limits::Allowlist>,
) -> Router {
    // Layers listed later wrap those listed earlier: read bottom to top.
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(mcp::router(mcp))
        .layer(axum::middleware::from_fn_with_state(
            allowlist,
            limits::client_ip_layer,
        ))
        .layer(axum::middleware::from_fn_with_state(audit, audit::layer))
}
