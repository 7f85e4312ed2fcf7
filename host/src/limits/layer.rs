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

use super::client_ip::{ClientIp, ClientRange, ForwardedHeader, resolve};
use super::rate::AddressBudget;
use crate::config::LimitsConfig;

/// The allowlist, the proxies whose forwarding header is believed, and how
/// addresses are grouped into the ranges budgets are charged to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowlist {
    /// Empty means every address may connect.
    pub allow: Vec<IpNet>,
    pub trusted_proxies: Vec<IpNet>,
    pub forwarded_header: ForwardedHeader,
    pub ipv6_prefix: u8,
}

impl Default for Allowlist {
    fn default() -> Allowlist {
        Allowlist::from_config(&LimitsConfig::default())
    }
}

impl Allowlist {
    pub fn from_config(limits: &LimitsConfig) -> Allowlist {
        Allowlist {
            allow: limits.allow_ips.clone(),
            trusted_proxies: limits.trusted_proxies.clone(),
            forwarded_header: limits.forwarded_header,
            ipv6_prefix: limits.ipv6_prefix,
        }
    }
}

/// Puts the resolved [`ClientIp`] and its [`ClientRange`] in the request,
/// or refuses it with 403.
/// Resolution and the check happen together, before anything reads the body;
/// the audit layer outside sees the refusal.
pub async fn client_ip_layer(
    State(list): State<Arc<arc_swap::ArcSwap<Allowlist>>>,
    mut request: Request,
    next: Next,
) -> Response {
    let list = list.load();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let Some(peer) = peer else {
        return next.run(request).await;
    };
    let values: Vec<&[u8]> = request
        .headers()
        .get_all(list.forwarded_header.name())
        .iter()
        .map(|value| value.as_bytes())
        .collect();
    let ip = resolve(peer, &values, &list.trusted_proxies, list.forwarded_header);
    request.extensions_mut().insert(ClientIp(ip));
    request
        .extensions_mut()
        .insert(ClientRange::of(ip, list.ipv6_prefix));
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

/// Charges each request to its client's [`ClientRange`]; 429 with
/// `Retry-After` and an OAuth-style JSON error when the range has spent its
/// budget. For the unauthenticated endpoints, where there is no principal
/// to charge.
pub async fn address_budget_layer(
    State(budget): State<Arc<AddressBudget>>,
    request: Request,
    next: Next,
) -> Response {
    let address = request
        .extensions()
        .get::<ClientRange>()
        .map_or_else(|| "unknown".to_string(), ToString::to_string);
    match budget.check(&address).await {
        Ok(()) => next.run(request).await,
        Err(limited) => {
            let wait = limited.retry_after.as_secs().max(1);
            tracing::info!(%address, wait, "auth endpoint rate limited");
            let body = serde_json::json!({
                "error": "too_many_requests",
                "error_description": format!(
                    "too many requests from {address}: at most {} a minute; retry in {wait} s",
                    limited.quota
                ),
            });
            let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
            if let Ok(value) = axum::http::HeaderValue::from_str(&wait.to_string()) {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, value);
            }
            response
        }
    }
}
