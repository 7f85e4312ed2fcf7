//! What each MCP method does: `initialize`, `ping`, `tools/list`,
//! `tools/call`, `logging/setLevel`, and the client notifications.
//!
//! Methods receive a parsed request and a [`RequestCtx`]; they never look at
//! HTTP headers except through the ctx the transport built.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::jsonrpc::{self, Request, RpcError, code};
use super::protocol::{self, Era};
use super::session::{Session, TooManySessions};
use super::stateless;
use super::tools;
use super::transport::{self, Accepts, SESSION_HEADER, json_response};
use super::{McpState, call};
use crate::audit::AuditNote;
use crate::auth::{Decision, Principal};
use crate::limits::RateState;
use crate::plugins::ClientSupport;

/// MCP log levels in rising severity (RFC 5424 names).
pub(crate) const LOG_LEVELS: &[&str] = &[
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// Per-request facts the transport established.
pub(crate) struct RequestCtx {
    pub(crate) era: Era,
    pub(crate) session: Option<Arc<Session>>,
    pub(crate) accepts: Accepts,
    pub(crate) request_id: Arc<str>,
    /// What the audit log should know about this request; handlers fill it in.
    pub(crate) note: std::sync::Mutex<AuditNote>,
    /// The verified caller: whose budgets this request spends and which
    /// tools it may see and call.
    pub(crate) principal: Principal,
    /// The budget a permitted tool call was charged to, for `RateLimit`.
    pub(crate) rate: std::sync::Mutex<Option<RateState>>,
}

impl RequestCtx {
    pub(crate) fn new(
        era: Era,
        session: Option<Arc<Session>>,
        accepts: Accepts,
        request_id: Arc<str>,
        principal: Principal,
    ) -> RequestCtx {
        let note = AuditNote {
            request_id: Some(request_id.to_string()),
            ..AuditNote::default()
        };
        RequestCtx {
            era,
            session,
            accepts,
            request_id,
            note: std::sync::Mutex::new(note),
            principal,
            rate: std::sync::Mutex::new(None),
        }
    }

    /// Updates the audit note.
    pub(crate) fn note(&self, update: impl FnOnce(&mut AuditNote)) {
        update(
            &mut self
                .note
                .lock()
                .unwrap_or_else(|poison| poison.into_inner()),
        );
    }

    pub(crate) fn take_rate(&self) -> Option<RateState> {
        self.rate
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take()
    }

    pub(crate) fn take_note(&self) -> AuditNote {
        std::mem::take(
            &mut *self
                .note
                .lock()
                .unwrap_or_else(|poison| poison.into_inner()),
        )
    }
}

/// A method's answer: a JSON-RPC response object, or a full HTTP response
/// (an event stream) when the method streams.
pub(crate) enum Reply {
    Json(Value),
    Http(Response),
}

/// Handles `initialize`, the only method that creates a session.
pub(crate) fn initialize(state: &McpState, request: Request, principal: &str) -> Response {
    let requested = request
        .params
        .get("protocolVersion")
        .and_then(Value::as_str);
    let version = protocol::negotiate_session(requested);
    let capabilities = request.params.get("capabilities");
    let declared = |name: &str| {
        capabilities
            .and_then(|c| c.get(name))
            .is_some_and(Value::is_object)
    };
    let supports = ClientSupport {
        elicitation: declared("elicitation"),
        sampling: declared("sampling"),
        roots: declared("roots"),
    };
    let session = match state.sessions.create(version, supports, principal) {
        Ok(session) => session,
        Err(refusal) => {
            let (status, message) = match refusal {
                TooManySessions::Server => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the server holds as many sessions as it may; try again later",
                ),
                TooManySessions::Principal => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "this client holds as many sessions as it may; end one (DELETE /mcp) first",
                ),
            };
            let error = RpcError::new(code::INTERNAL_ERROR, message);
            return json_response(status, &jsonrpc::error(&request.id, &error));
        }
    };
    let client = request
        .params
        .pointer("/clientInfo/name")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    tracing::info!(session = &*session.id, version, client, "session opened");
    let result = json!({
        "protocolVersion": version,
        "capabilities": server_capabilities(),
        "serverInfo": server_info(),
        "instructions": INSTRUCTIONS,
    });
    let mut response = json_response(StatusCode::OK, &jsonrpc::result(&request.id, result));
    if let Ok(value) = HeaderValue::from_str(&session.id) {
        response.headers_mut().insert(SESSION_HEADER, value);
    }
    response
}

const INSTRUCTIONS: &str = "toolhost serves tools from sandboxed WebAssembly plugins. \
Each tool's description says what it does; read-only tools never change anything.";

fn server_capabilities() -> Value {
    json!({ "tools": { "listChanged": true }, "logging": {} })
}

fn server_info() -> Value {
    json!({ "name": "toolhost", "title": "toolhost", "version": env!("CARGO_PKG_VERSION") })
}

/// Routes one request to its method.
pub(crate) async fn dispatch(state: &Arc<McpState>, ctx: &RequestCtx, request: Request) -> Reply {
    let stateless = ctx.era.is_stateless();
    let operation = request.method.clone();
    ctx.note(|note| note.operation = Some(operation));
    let res = match request.method.as_str() {
        "ping" if !stateless => Ok(json!({})),
        "logging/setLevel" if !stateless => set_level(state, ctx, &request.params).await,
        "tools/list" => list_tools(state, ctx, &request.params),
        "tools/call" => return call::call_tool(state, ctx, request).await,
        "server/discover" if stateless => Ok(discover()),
        "subscriptions/listen" if stateless => {
            return Reply::Http(listen(state, &request, &ctx.principal.subject));
        }
        other => {
            let error = RpcError::new(code::METHOD_NOT_FOUND, format!("method not found: {other}"));
            let body = jsonrpc::error(&request.id, &error);
            // The stateless era tells unknown methods apart at the HTTP level.
            if stateless {
                return Reply::Http(json_response(StatusCode::NOT_FOUND, &body));
            }
            return Reply::Json(body);
        }
    };
    Reply::Json(finish(ctx.era, &request.id, res))
}

/// Frames a method's outcome; stateless-era results carry `resultType`.
pub(crate) fn finish(era: Era, id: &Value, res: Result<Value, RpcError>) -> Value {
    match res {
        Ok(mut result) => {
            if era.is_stateless()
                && let Value::Object(object) = &mut result
            {
                object
                    .entry("resultType")
                    .or_insert_with(|| Value::String("complete".into()));
            }
            jsonrpc::result(id, result)
        }
        Err(error) => jsonrpc::error(id, &error),
    }
}

/// Handles a client notification; unknown ones are ignored, as JSON-RPC asks.
/// A cancellation of a call this replica does not run goes to the others.
pub(crate) async fn notification(
    state: &McpState,
    session: Option<&Session>,
    method: &str,
    params: &Value,
) {
    if method == "notifications/cancelled"
        && let Some(session) = session
        && let Some(request_id) = params.get("requestId")
    {
        let request = request_id.to_string();
        let cancelled = session.cancel(&request);
        tracing::debug!(session = &*session.id, %request_id, cancelled, "cancellation received");
        if !cancelled {
            state.pass_on_cancel(session, request).await;
        }
    }
}

/// The protocol version a stateless-era request names in its `_meta`.
pub(crate) fn meta_protocol_version(params: &Value) -> Option<&str> {
    params.get("_meta")?.get(stateless::META_VERSION)?.as_str()
}

/// `server/discover`: what `initialize` told session-era clients, plus
/// caching hints. Nothing in it depends on the caller.
fn discover() -> Value {
    json!({
        "supportedVersions": protocol::all_versions(),
        "capabilities": server_capabilities(),
        "instructions": INSTRUCTIONS,
        "ttlMs": 0,
        "cacheScope": "public",
        "_meta": { stateless::META_SERVER_INFO: server_info() },
    })
}

/// `subscriptions/listen`: an event stream acknowledging the filter, then
/// one `notifications/tools/list_changed` per reload if the filter asks for
/// tool changes. Every notification carries the subscription id.
fn listen(state: &McpState, request: &Request, client: &str) -> Response {
    let filter = request
        .params
        .get("notifications")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if !filter.is_object() {
        let error = RpcError::invalid_params("params.notifications must be an object");
        return json_response(
            StatusCode::BAD_REQUEST,
            &jsonrpc::error(&request.id, &error),
        );
    }
    let meta = json!({ stateless::META_SUBSCRIPTION: request.id });
    let ack = jsonrpc::notification(
        "notifications/subscriptions/acknowledged",
        json!({ "notifications": filter, "_meta": meta }),
    );
    let wants_tools = filter.get("toolsListChanged").and_then(Value::as_bool) == Some(true);
    let on_change = if wants_tools {
        jsonrpc::notification("notifications/tools/list_changed", json!({ "_meta": meta }))
    } else {
        // Nothing this server changes was asked for: only keep-alives follow.
        Value::Null
    };
    transport::change_stream(state, client, &request.id, vec![ack], on_change)
}

async fn set_level(state: &McpState, ctx: &RequestCtx, params: &Value) -> Result<Value, RpcError> {
    let level = params
        .get("level")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(rank) = LOG_LEVELS.iter().position(|l| *l == level) else {
        return Err(RpcError::invalid_params(format!(
            "unknown log level {level:?}; expected one of {}",
            LOG_LEVELS.join(", ")
        )));
    };
    if let Some(session) = &ctx.session {
        state.set_log_level(session, rank as u8).await;
    }
    Ok(json!({}))
}

fn list_tools(state: &McpState, ctx: &RequestCtx, params: &Value) -> Result<Value, RpcError> {
    let set = state.registry.current();
    let offset = match params.get("cursor") {
        None | Some(Value::Null) => 0,
        Some(Value::String(cursor)) => cursor
            .strip_prefix("o")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| RpcError::invalid_params(format!("invalid cursor {cursor:?}")))?,
        Some(_) => return Err(RpcError::invalid_params("cursor must be a string")),
    };
    let page_size = state.settings.page_size;
    // Callers see only what they may call; cursors index this filtered list.
    let visible = || {
        set.tools().filter(|(plugin, tool)| {
            state.decide(&ctx.principal, plugin, tool) == Decision::Allowed
        })
    };
    let n_tools = visible().count();
    let page: Vec<Value> = visible()
        .skip(offset)
        .take(page_size)
        .map(|(_, tool)| tools::tool_json(tool))
        .collect();
    let mut result = json!({ "tools": page });
    if offset + page_size < n_tools {
        result["nextCursor"] = Value::String(format!("o{}", offset + page_size));
    }
    if ctx.era.is_stateless() {
        // Hot reload can change the list at any moment, so nothing is cached;
        // "private" because the list will depend on the caller's grants.
        result["ttlMs"] = json!(0);
        result["cacheScope"] = json!("private");
    }
    Ok(result)
}
