//! Axum adapters: resolve the client address first thing, and refuse
//! addresses outside the allowlist (inside the audit layer, so refusals are
//! recorded).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

use super::client_ip::{ClientIp, resolve};

/// The allowlist and the proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    /// Empty means every address may connect.
    pub allow: Vec<IpNet>,
    pub trusted_proxies: Vec<IpNet>,
}

/// Puts the resolved [`ClientIp`] in the request, or refuses it with 403.
/// Resolution and the check happen together, before anything reads the body;
/// the audit layer outside sees the refusal.
pub async fn client_ip_layer(
    State(list): State<Arc<Allowlist>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let Some(peer) = peer else {
        return next.run(request).await;
    };
    let ip = resolve(peer, request.headers(), &list.trusted_proxies);
    request.extensions_mut().insert(ClientIp(ip));
    if !list.allow.is_empty() && !list.allow.iter().any(|net| net.contains(&ip)) {
        tracing::warn!(%ip, "address not in the allowlist; refused");
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": { "code": -32600, "message": format!("address {ip} is not allowed to use this server") },
        });
        let mut response = (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
        response.extensions_mut().insert(ClientIp(ip));
        return response;
    }
    let mut response = next.run(request).await;
    // Outer layers (audit) only see the response, so the address rides back on it.
    response.extensions_mut().insert(ClientIp(ip));
    response
}
