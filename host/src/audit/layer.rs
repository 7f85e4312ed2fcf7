//! The audit middleware: one record per HTTP request to the API, with what
//! the MCP layer learned about it (method, tool, outcome) attached to the
//! response as an [`AuditNote`]. Sits outside everything that can refuse a
//! request, so refusals are audited too.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use axum::body::HttpBody as _;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use super::AuditSink;
use super::record::{Outcome, Record};
use crate::limits::ClientIp;

/// What the MCP layer tells the audit layer about a request, through the
/// response's extensions.
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    pub request_id: Option<String>,
    pub operation: Option<String>,
    pub tool: Option<String>,
    pub plugin: Option<String>,
    pub plugin_sha256: Option<String>,
    pub arguments_hmac: Option<String>,
    /// Overrides the outcome the status code implies (e.g. a tool error
    /// answered with 200).
    pub outcome: Option<Outcome>,
    /// Why a request was refused, in words.
    pub detail: Option<String>,
}

/// The notes of a JSON-RPC batch, one per message in the batch's order:
/// each becomes a record of its own, with the batch's request id, its
/// index, and the facts of the HTTP request that carried it.
#[derive(Debug, Clone, Default)]
pub struct AuditBatch(pub Vec<AuditNote>);

/// Paths that are not API calls and would only flood the log.
const UNAUDITED: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// The middleware function; install with `axum::middleware::from_fn_with_state`.
pub async fn layer(State(sink): State<AuditSink>, request: Request, next: Next) -> Response {
    if UNAUDITED.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let started = Instant::now();
    let time = SystemTime::now();
    let http_method = request.method().to_string();
    let path = request.uri().path().to_string();
    let remote_ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let bytes_in = request.body().size_hint().exact();
    let mut response = next.run(request).await;
    // The inner layer resolved the real client behind trusted proxies.
    let remote_ip = response
        .extensions()
        .get::<ClientIp>()
        .map(|client| client.0)
        .or(remote_ip);
    let batch = response.extensions_mut().remove::<AuditBatch>();
    let note = response
        .extensions_mut()
        .remove::<AuditNote>()
        .unwrap_or_default();
    let principal = response.extensions_mut().remove::<crate::auth::Principal>();
    let status = response.status();
    let implied = match status {
        s if s.is_success() => Outcome::Ok,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Outcome::Denied,
        StatusCode::TOO_MANY_REQUESTS => Outcome::Limited,
        _ => Outcome::Failed,
    };
    let http = Record {
        time: Some(time),
        remote_ip,
        subject: principal.as_ref().map(|p| p.subject.clone()),
        client_id: principal.and_then(|p| p.client_id),
        http_method: Some(http_method),
        path: Some(path),
        status: Some(status.as_u16()),
        latency_us: Some(started.elapsed().as_micros() as u64),
        bytes_in,
        bytes_out: response.body().size_hint().exact(),
        ..Record::default()
    };
    let with_note = |note: AuditNote, batch_index: Option<usize>| Record {
        request_id: note.request_id,
        operation: note.operation,
        tool: note.tool,
        plugin: note.plugin,
        plugin_sha256: note.plugin_sha256,
        outcome: Some(note.outcome.unwrap_or(implied)),
        arguments_hmac: note.arguments_hmac,
        detail: note.detail,
        batch_index,
        ..http.clone()
    };
    match batch {
        Some(AuditBatch(notes)) if !notes.is_empty() => {
            for (index, note) in notes.into_iter().enumerate() {
                sink.record(with_note(note, Some(index)));
            }
        }
        _ => sink.record(with_note(note, None)),
    }
    response
}
