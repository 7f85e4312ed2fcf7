//! Streamable HTTP: `POST /mcp` carries JSON-RPC, `GET /mcp` opens the
//! server-to-client event stream, `DELETE /mcp` ends a session.
//!
//! This file owns HTTP-level checks (Origin, Host, content types, body size,
//! session and version headers) and framing (JSON or SSE). What a method does
//! lives in `methods`.

use std::sync::Arc;
use std::time::Duration;

pub(crate) use crate::http::json_response;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

use super::McpState;
use super::guard;
use super::jsonrpc::{self, Message, RpcError, code};
use super::methods::{self, Reply};
use super::protocol::{self, Era};
use super::session::Session;
use super::stateless;
use crate::audit::{AuditBatch, AuditNote, Outcome};
use crate::auth::Principal;
use crate::limits::{Limited, RateState};

pub(crate) const SESSION_HEADER: &str = "mcp-session-id";
pub(crate) const VERSION_HEADER: &str = "mcp-protocol-version";

/// How often an idle event stream sends a comment, so proxies keep it open.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// A transport-level refusal: an HTTP status with a JSON-RPC error body.
pub(crate) struct HttpError {
    status: StatusCode,
    error: RpcError,
}

impl HttpError {
    pub(crate) fn new(status: StatusCode, code: i64, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            error: RpcError::new(code, message),
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = jsonrpc::error(&Value::Null, &self.error);
        json_response(self.status, &body)
    }
}

/// What the client said it accepts.
#[derive(Clone, Copy)]
pub(crate) struct Accepts {
    pub(crate) sse: bool,
}

pub(crate) async fn post(
    State(state): State<Arc<McpState>>,
    principal: Option<Extension<Principal>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(Extension(principal)) = principal else {
        // The auth layer always sets one; without it nothing may run.
        return StatusCode::UNAUTHORIZED.into_response();
    };
    match handle_post(&state, &method, &uri, &headers, body, principal).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn handle_post(
    state: &Arc<McpState>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    principal: Principal,
) -> Result<Response, HttpError> {
    guard::check(&state.settings, method, uri, headers)?;
    if !is_json_content_type(headers) {
        return Err(HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::INVALID_REQUEST,
            "Content-Type must be application/json",
        ));
    }
    let accepts = check_accept_for_post(headers)?;
    let bytes = read_body(body, state.settings.max_body_bytes).await?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        HttpError::new(
            StatusCode::BAD_REQUEST,
            code::PARSE_ERROR,
            format!("parse error: {e}"),
        )
    })?;
    match value {
        Value::Array(items) => handle_batch(state, headers, items, principal).await,
        single => handle_single(state, headers, single, accepts, principal).await,
    }
}

async fn handle_single(
    state: &Arc<McpState>,
    headers: &HeaderMap,
    value: Value,
    accepts: Accepts,
    principal: Principal,
) -> Result<Response, HttpError> {
    let message = match jsonrpc::parse_message(value) {
        Ok(message) => message,
        Err((id, error)) => {
            return Ok(json_response(
                StatusCode::BAD_REQUEST,
                &jsonrpc::error(&id, &error),
            ));
        }
    };
    let (era, session) = match resolve_era(state, headers, &message, &principal) {
        Ok(resolved) => resolved,
        Err(EraError::Http(err)) => return Err(err),
        Err(EraError::Stateless(id, refusal)) => {
            return Ok(json_response(
                refusal.status,
                &jsonrpc::error(&id, &refusal.error),
            ));
        }
    };
    if let Some(session) = &session {
        state.settle(session).await;
    }
    match message {
        Message::Request(request) if request.method == "initialize" && !era.is_stateless() => {
            if session.is_some() {
                return Err(HttpError::new(
                    StatusCode::BAD_REQUEST,
                    code::INVALID_REQUEST,
                    "initialize must not carry an Mcp-Session-Id",
                ));
            }
            Ok(methods::initialize(state, request, &principal.subject))
        }
        Message::Request(request) => {
            let ctx =
                methods::RequestCtx::new(era, session, accepts, state.next_request_id(), principal);
            let mut response = match methods::dispatch(state, &ctx, request).await {
                Reply::Json(body) => json_response(StatusCode::OK, &body),
                Reply::Http(response) => response,
            };
            if let Some(rate) = ctx.take_rate() {
                add_rate_headers(response.headers_mut(), &rate);
            }
            response.extensions_mut().insert(ctx.take_note());
            Ok(response)
        }
        Message::Notification { method, params } => {
            methods::notification(state, session.as_deref(), &method, &params).await;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        Message::Response { id, outcome } => {
            deliver_response(state, session.as_deref(), &id, outcome).await;
            Ok(StatusCode::ACCEPTED.into_response())
        }
    }
}

/// Hands a client's response to the tool call that asked: here, or on the
/// replica that asked.
async fn deliver_response(
    state: &McpState,
    session: Option<&Session>,
    id: &Value,
    outcome: Result<Value, Value>,
) {
    let (Some(session), Some(request_id)) = (session, id.as_str()) else {
        tracing::debug!(%id, "response to no server request dropped");
        return;
    };
    if session.asked_elsewhere(request_id) {
        state
            .pass_on_answer(session, request_id.to_string(), outcome)
            .await;
    } else if !session.resolve(request_id, outcome) {
        tracing::debug!(%id, "response to no pending request dropped");
    }
}

/// Why a message could not be placed in an era.
enum EraError {
    /// A session-era transport error, framed without an id.
    Http(HttpError),
    /// A stateless-era refusal, which must echo the request id.
    Stateless(Value, stateless::Refusal),
}

/// Places a message in an era. A session id means the session era, and so
/// does an `initialize` that does not name a stateless revision; anything
/// else must satisfy the stateless rules.
fn resolve_era(
    state: &McpState,
    headers: &HeaderMap,
    message: &Message,
    principal: &Principal,
) -> Result<(Era, Option<Arc<Session>>), EraError> {
    if headers.contains_key(SESSION_HEADER) {
        let session = session_from_headers(state, headers, principal).map_err(EraError::Http)?;
        return Ok((Era::Session(session.version), Some(session)));
    }
    let header_version = header_str(headers, VERSION_HEADER).map(str::trim);
    let header_era = header_version.and_then(protocol::known);
    let (id, method, params) = match message {
        Message::Request(request) => (&request.id, request.method.as_str(), &request.params),
        Message::Notification { method, params } => (&Value::Null, method.as_str(), params),
        Message::Response { .. } => return Err(EraError::Http(session_required())),
    };
    let meta_version = methods::meta_protocol_version(params);
    if method == "initialize" && !header_era.is_some_and(Era::is_stateless) {
        return Ok((Era::Session(protocol::LATEST_SESSION), None));
    }
    if matches!(header_era, Some(Era::Session(_)))
        || (header_version.is_none() && meta_version.is_none())
    {
        return Err(EraError::Http(session_required()));
    }
    stateless::validate(headers, method, params)
        .map(|era| (era, None))
        .map_err(|refusal| EraError::Stateless(id.clone(), refusal))
}

fn session_required() -> HttpError {
    HttpError::new(
        StatusCode::BAD_REQUEST,
        code::INVALID_REQUEST,
        "Mcp-Session-Id header is required: call initialize first \
         (or send MCP-Protocol-Version and _meta for the stateless protocol)",
    )
}

/// JSON-RPC batches: only the 2025-03-26 revision allowed them.
async fn handle_batch(
    state: &Arc<McpState>,
    headers: &HeaderMap,
    items: Vec<Value>,
    principal: Principal,
) -> Result<Response, HttpError> {
    if items.is_empty() {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            code::INVALID_REQUEST,
            "an empty batch is not a valid JSON-RPC request",
        ));
    }
    let session = session_from_headers(state, headers, &principal)?;
    state.settle(&session).await;
    let era = Era::Session(session.version);
    if !era.allows_batches() {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            code::INVALID_REQUEST,
            format!(
                "JSON-RPC batches are not part of protocol version {}",
                session.version
            ),
        ));
    }
    // One request id for the batch; each message's audit record adds its index.
    let batch_id = state.next_request_id();
    let mut responses = Vec::new();
    let mut notes = Vec::with_capacity(items.len());
    for item in items {
        let mut note = AuditNote {
            request_id: Some(batch_id.to_string()),
            ..AuditNote::default()
        };
        match jsonrpc::parse_message(item) {
            Ok(Message::Request(request)) if request.method == "initialize" => {
                note.operation = Some(request.method);
                note.outcome = Some(Outcome::Failed);
                note.detail = Some("initialize cannot be batched".into());
                responses.push(jsonrpc::error(
                    &request.id,
                    &RpcError::new(code::INVALID_REQUEST, "initialize cannot be batched"),
                ));
            }
            Ok(Message::Request(request)) => {
                // Batched calls answer in one JSON array, so no streaming.
                let accepts = Accepts { sse: false };
                let ctx = methods::RequestCtx::new(
                    era,
                    Some(session.clone()),
                    accepts,
                    batch_id.clone(),
                    principal.clone(),
                );
                let id = request.id.clone();
                let (body, implied) = match methods::dispatch(state, &ctx, request).await {
                    Reply::Json(body) => {
                        let implied = if body.get("error").is_some() {
                            Outcome::Failed
                        } else {
                            Outcome::Ok
                        };
                        (body, implied)
                    }
                    Reply::Http(response) => batch_entry(&id, response).await,
                };
                note = ctx.take_note();
                note.outcome = note.outcome.or(Some(implied));
                responses.push(body);
            }
            Ok(Message::Notification { method, params }) => {
                methods::notification(state, Some(&session), &method, &params).await;
                note.operation = Some(method);
            }
            Ok(Message::Response { id, outcome }) => {
                deliver_response(state, Some(&session), &id, outcome).await;
                note.detail = Some("a response to a server request".into());
            }
            Err((id, error)) => {
                note.outcome = Some(Outcome::Failed);
                note.detail = Some(error.message.clone());
                responses.push(jsonrpc::error(&id, &error));
            }
        }
        notes.push(note);
    }
    let mut response = if responses.is_empty() {
        StatusCode::ACCEPTED.into_response()
    } else {
        json_response(StatusCode::OK, &Value::Array(responses))
    };
    response.extensions_mut().insert(AuditBatch(notes));
    Ok(response)
}

/// A method's full HTTP answer (a refusal: 403, 429) as one entry of a
/// batch's JSON array, with the outcome its status implies. Anything but a
/// JSON body (an event stream) cannot be part of a batch.
async fn batch_entry(id: &Value, response: Response) -> (Value, Outcome) {
    let outcome = match response.status() {
        StatusCode::TOO_MANY_REQUESTS => Outcome::Limited,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Outcome::Denied,
        status if status.is_success() => Outcome::Ok,
        _ => Outcome::Failed,
    };
    if is_json_content_type(response.headers())
        && let Ok(bytes) = axum::body::to_bytes(response.into_body(), BATCH_ENTRY_LIMIT).await
        && let Ok(body) = serde_json::from_slice::<Value>(&bytes)
    {
        return (body, outcome);
    }
    let error = RpcError::new(code::INTERNAL_ERROR, "this method cannot be batched");
    (jsonrpc::error(id, &error), Outcome::Failed)
}

/// Refusals are small; this only bounds a surprise.
const BATCH_ENTRY_LIMIT: usize = 1024 * 1024;

/// Looks up the session named by `Mcp-Session-Id` and checks the version
/// header against it: 400 when absent or mismatched, 404 when unknown or
/// opened by another principal (a session id is not a credential).
fn session_from_headers(
    state: &McpState,
    headers: &HeaderMap,
    principal: &Principal,
) -> Result<Arc<Session>, HttpError> {
    let Some(id) = header_str(headers, SESSION_HEADER) else {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            code::INVALID_REQUEST,
            "Mcp-Session-Id header is required: call initialize first",
        ));
    };
    let owned = state
        .sessions
        .find_or_adopt(id, &principal.subject)
        .filter(|session| session.owner() == principal.subject);
    let Some(session) = owned else {
        return Err(HttpError::new(
            StatusCode::NOT_FOUND,
            code::INVALID_REQUEST,
            "session not found: it expired or was deleted; initialize a new one",
        ));
    };
    if let Some(version) = header_str(headers, VERSION_HEADER)
        && version != session.version
    {
        if protocol::known(version).is_none() {
            return Err(unsupported_version(version));
        }
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            code::INVALID_REQUEST,
            format!(
                "MCP-Protocol-Version {version} does not match the session's negotiated version {}",
                session.version
            ),
        ));
    }
    Ok(session)
}

fn unsupported_version(version: &str) -> HttpError {
    let mut err = HttpError::new(
        StatusCode::BAD_REQUEST,
        code::INVALID_REQUEST,
        format!("unsupported protocol version {version:?}"),
    );
    err.error = err.error.with_data(serde_json::json!({
        "supported": protocol::all_versions(),
        "requested": version,
    }));
    err
}

pub(crate) async fn get(
    State(state): State<Arc<McpState>>,
    principal: Option<Extension<Principal>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(err) = guard::check(&state.settings, &method, &uri, &headers) {
        return err.into_response();
    }
    let Some(Extension(principal)) = principal else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let wants_sse = header_str(&headers, "accept").is_some_and(|a| a.contains("text/event-stream"));
    if !wants_sse {
        return HttpError::new(
            StatusCode::NOT_ACCEPTABLE,
            code::INVALID_REQUEST,
            "GET /mcp opens an event stream: Accept must include text/event-stream",
        )
        .into_response();
    }
    let session = match session_from_headers(&state, &headers, &principal) {
        Ok(session) => session,
        Err(_) if !headers.contains_key(SESSION_HEADER) => {
            // Stateless-era clients listen with `subscriptions/listen` instead.
            return method_not_allowed();
        }
        Err(err) => return err.into_response(),
    };
    let list_changed =
        jsonrpc::notification("notifications/tools/list_changed", serde_json::json!({}));
    tracing::debug!(session = &*session.id, "event stream opened");
    change_stream(
        &state,
        &principal.subject,
        &Value::Null,
        Vec::new(),
        list_changed,
    )
}

/// An event stream that sends `prelude`, then `on_change` (unless null)
/// every time the served plugin set changes, with keep-alive comments in
/// between.
/// The feeding task ends when the client stops reading.
pub(crate) fn change_stream(
    state: &McpState,
    client: &str,
    id: &Value,
    prelude: Vec<Value>,
    on_change: Value,
) -> Response {
    let Some(slot) = state.streams.acquire(client) else {
        let error = RpcError::new(
            code::INTERNAL_ERROR,
            format!(
                "this client holds {} open event streams, the most it may; close one first",
                state.streams.max_per_client()
            ),
        );
        return json_response(StatusCode::TOO_MANY_REQUESTS, &jsonrpc::error(id, &error));
    };
    let mut changes = state.registry.subscribe();
    changes.mark_unchanged();
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    for message in &prelude {
        let _ = tx.try_send(sse_event(message));
    }
    let change_event = (!on_change.is_null()).then(|| sse_event(&on_change));
    tokio::spawn(async move {
        // Held for as long as the client reads the stream.
        let _slot = slot;
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        keepalive.tick().await;
        loop {
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    if let Some(event) = &change_event
                        && tx.send(event.clone()).await.is_err()
                    {
                        break;
                    }
                }
                _ = keepalive.tick() => {
                    if tx.send(Bytes::from_static(b": keepalive\n\n")).await.is_err() {
                        break;
                    }
                }
                () = tx.closed() => break,
            }
        }
    });
    sse_response(rx)
}

pub(crate) async fn delete(
    State(state): State<Arc<McpState>>,
    principal: Option<Extension<Principal>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(err) = guard::check(&state.settings, &method, &uri, &headers) {
        return err.into_response();
    }
    let Some(Extension(principal)) = principal else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let session = match session_from_headers(&state, &headers, &principal) {
        Ok(session) => session,
        Err(_) if !headers.contains_key(SESSION_HEADER) => return method_not_allowed(),
        Err(err) => return err.into_response(),
    };
    state.end_session(&session.id).await;
    StatusCode::NO_CONTENT.into_response()
}

fn method_not_allowed() -> Response {
    let mut response = HttpError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        code::INVALID_REQUEST,
        "no session: this method needs an Mcp-Session-Id",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

/// One Server-Sent Event carrying a JSON-RPC message.
pub(crate) fn sse_event(message: &Value) -> Bytes {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"event: message\ndata: ");
    // serde_json never writes a raw newline, so one `data:` line suffices.
    let _ = serde_json::to_writer(&mut out, message);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// A streaming `text/event-stream` response fed by `rx`.
pub(crate) fn sse_response(rx: mpsc::Receiver<Bytes>) -> Response {
    let stream = tokio_stream_from(rx).map(Ok::<_, std::convert::Infallible>);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn tokio_stream_from(mut rx: mpsc::Receiver<Bytes>) -> impl futures::Stream<Item = Bytes> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

fn is_json_content_type(headers: &HeaderMap) -> bool {
    header_str(headers, "content-type").is_some_and(|value| {
        value
            .split(';')
            .next()
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
    })
}

/// POST must accept JSON; it may also accept SSE, which lets a call stream
/// progress. A missing Accept is read as `*/*`.
fn check_accept_for_post(headers: &HeaderMap) -> Result<Accepts, HttpError> {
    let Some(accept) = header_str(headers, "accept") else {
        return Ok(Accepts { sse: true });
    };
    let accept = accept.to_ascii_lowercase();
    let any = accept.contains("*/*");
    let json = any || accept.contains("application/json") || accept.contains("application/*");
    let sse = any || accept.contains("text/event-stream") || accept.contains("text/*");
    if !json {
        return Err(HttpError::new(
            StatusCode::NOT_ACCEPTABLE,
            code::INVALID_REQUEST,
            "Accept must include application/json (and text/event-stream for streamed results)",
        ));
    }
    Ok(Accepts { sse })
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, HttpError> {
    let too_large = || {
        HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::INVALID_REQUEST,
            format!("request body exceeds the limit of {limit} bytes"),
        )
    };
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        let is_limit = std::error::Error::source(&err)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if is_limit {
            too_large()
        } else if let Some(timeout) = find_source::<crate::server::BodyTimeout>(&err) {
            HttpError::new(
                StatusCode::REQUEST_TIMEOUT,
                code::INVALID_REQUEST,
                timeout.to_string(),
            )
        } else {
            HttpError::new(
                StatusCode::BAD_REQUEST,
                code::PARSE_ERROR,
                format!("cannot read request body: {err}"),
            )
        }
    })
}

/// The first error of type `T` in `err`'s chain of sources.
fn find_source<'a, T: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut next = Some(err);
    while let Some(current) = next {
        if let Some(found) = current.downcast_ref::<T>() {
            return Some(found);
        }
        next = current.source();
    }
    None
}

/// The IETF RateLimit fields for a permitted call.
fn add_rate_headers(headers: &mut HeaderMap, rate: &RateState) {
    let policy = format!(
        "\"{}\";q={};w={}",
        rate.policy, rate.quota, rate.window_secs
    );
    let state = format!(
        "\"{}\";r={};t={}",
        rate.policy, rate.remaining, rate.reset_secs
    );
    if let (Ok(policy), Ok(state)) = (
        HeaderValue::from_str(&policy),
        HeaderValue::from_str(&state),
    ) {
        headers.insert("ratelimit-policy", policy);
        headers.insert("ratelimit", state);
    }
}

/// 429 for a spent budget: `Retry-After`, the RateLimit fields, and a
/// JSON-RPC error naming the limit.
pub(crate) fn limited_response(id: &Value, limited: &Limited) -> Response {
    let retry_secs = limited.retry_after.as_secs_f64().ceil().max(1.0) as u64;
    let error = RpcError::new(
        RATE_LIMITED,
        format!(
            "rate limit {:?} exceeded ({} calls per {} s); retry in {retry_secs} s",
            limited.policy, limited.quota, limited.window_secs
        ),
    )
    .with_data(serde_json::json!({ "limit": limited.policy, "retryAfterSeconds": retry_secs }));
    let mut response = json_response(StatusCode::TOO_MANY_REQUESTS, &jsonrpc::error(id, &error));
    let headers = response.headers_mut();
    let policy = format!(
        "\"{}\";q={};w={}",
        limited.policy, limited.quota, limited.window_secs
    );
    let state = format!("\"{}\";r=0;t={retry_secs}", limited.policy);
    for (name, value) in [
        ("retry-after", retry_secs.to_string()),
        ("ratelimit-policy", policy),
        ("ratelimit", state),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

/// JSON-RPC code for a refused-by-rate-limit request (server-defined range).
const RATE_LIMITED: i64 = -32029;

pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}
