//! `tools/call`: from a JSON-RPC request to a plugin call and back, with
//! progress, logs and input requests streamed over SSE when the client wants
//! them, cancellation, and stateless-era input rounds.
//!
//! While a call reports nothing, its answer is one JSON body written in one
//! go; the first notification or question switches it to an event stream.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};

use super::McpState;
use super::jsonrpc::{self, Request, RpcError, code};
use super::methods::{LOG_LEVELS, Reply, RequestCtx, finish};
use super::protocol::Era;
use super::session::Session;
use super::stateless;
use super::tools;
use super::transport::{self, json_response, sse_event, sse_response};
use crate::audit::Outcome;
use crate::auth::Decision;
use crate::plugins::{
    self, CallContext, CallError, CallOutcome, ClientSupport, EVENT_QUEUE, InputAsk, InputError,
    InputKind, InputMode, InputRequest, LogLevel, PluginEvent,
};

/// JSON-RPC error code for a call the caller may not make (HTTP 403).
const FORBIDDEN: i64 = -32003;

/// JSON-RPC error code for a request the client cancelled (as in LSP).
const REQUEST_CANCELLED: i64 = -32800;

/// How long a session-era call waits for the client to answer a question:
/// a person may be filling in a form.
const INPUT_TIMEOUT: Duration = Duration::from_secs(600);

/// What a call produced, before it is framed with the request id.
enum Answer {
    Result(Value),
    Error(StatusCode, RpcError),
}

pub(crate) async fn call_tool(state: &Arc<McpState>, ctx: &RequestCtx, request: Request) -> Reply {
    let Request { id, params, .. } = request;
    let name = match params.get("name") {
        Some(Value::String(name)) => name.clone(),
        _ => {
            return error_reply(
                &id,
                RpcError::invalid_params("tools/call needs a string \"name\""),
            );
        }
    };
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => json!({}),
        Some(args @ Value::Object(_)) => args.clone(),
        Some(_) => {
            return error_reply(
                &id,
                RpcError::invalid_params("tools/call \"arguments\" must be an object"),
            );
        }
    };
    let set = state.registry.current();
    let Some((plugin, tool)) = set.find(&name) else {
        return error_reply(
            &id,
            RpcError::invalid_params(format!("unknown tool: {name}")),
        );
    };
    // Noted before any refusal, so refused calls are audited with what
    // they tried to call.
    let plugin_name = plugin.name().to_string();
    let arguments_hmac = state.audit.digest_arguments(&arguments);
    ctx.note(|note| {
        note.tool = Some(name.clone());
        note.plugin = Some(plugin_name.clone());
        note.plugin_sha256 = Some(plugin.sha256().to_string());
        note.arguments_hmac = Some(arguments_hmac);
    });
    // Access before budget: a refused call costs the caller nothing.
    match state.decide(&ctx.principal, plugin, tool) {
        Decision::Allowed => {}
        Decision::MissingScope(scope) => {
            ctx.note(|note| {
                note.outcome = Some(Outcome::Denied);
                note.detail = Some(format!("{name} needs scope {scope}"));
            });
            let error = RpcError::new(
                FORBIDDEN,
                format!("tool {name} needs the {scope:?} scope, which this token lacks"),
            );
            return Reply::Http(
                state
                    .auth
                    .challenge()
                    .scope(scope)
                    .insufficient_scope(&jsonrpc::error(&id, &error)),
            );
        }
        Decision::Denied => {
            ctx.note(|note| {
                note.outcome = Some(Outcome::Denied);
                note.detail = Some(format!("{name} denied by policy"));
            });
            let error = RpcError::new(
                FORBIDDEN,
                format!("access to tool {name} is denied by this server's policy"),
            );
            return Reply::Http(json_response(
                StatusCode::FORBIDDEN,
                &jsonrpc::error(&id, &error),
            ));
        }
    }
    let rates = state.rates.load_full();
    match rates.check(&ctx.principal.subject, &name).await {
        Ok(rate) => *ctx.rate.lock().unwrap_or_else(|poison| poison.into_inner()) = rate,
        Err(limited) => {
            tracing::info!(principal = %ctx.principal.subject, tool = %name, limit = %limited.policy, "rate limited");
            ctx.note(|note| note.outcome = Some(Outcome::Limited));
            return Reply::Http(transport::limited_response(&id, &limited));
        }
    }
    let meta = params.get("_meta");
    let filter = EventFilter {
        progress_token: meta
            .and_then(|m| m.get("progressToken"))
            .filter(|t| t.is_string() || t.is_number())
            .cloned(),
        min_log_rank: match ctx.era {
            Era::Session(_) => ctx.session.as_ref().and_then(|s| s.log_level()),
            Era::Stateless(_) => meta
                .and_then(|m| m.get(stateless::META_LOG_LEVEL))
                .and_then(Value::as_str)
                .and_then(|l| LOG_LEVELS.iter().position(|x| *x == l))
                .map(|rank| rank as u8),
        },
    };
    let live_input = !ctx.era.is_stateless() && ctx.accepts.sse && ctx.session.is_some();
    let streaming = ctx.accepts.sse && (filter.wants_any() || live_input);
    let (events_tx, events_rx) = if streaming {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let (client_supports, input) = match ctx.era {
        Era::Session(_) => {
            let supports = ctx.session.as_ref().map_or(NO_SUPPORT, |s| s.supports);
            match (&events_tx, live_input) {
                (Some(tx), true) => (supports, InputMode::Live(tx.clone())),
                _ => (supports, InputMode::Unavailable),
            }
        }
        Era::Stateless(_) => {
            let supports = stateless_supports(&params);
            match replay_answers(state, &name, &arguments, &params, &ctx.principal.subject) {
                Ok(answers) => (supports, InputMode::Replay(answers)),
                Err(err) => return error_reply(&id, err),
            }
        }
    };
    let call_ctx = CallContext {
        subject: Some(ctx.principal.subject.clone()),
        client_id: ctx.principal.client_id.clone(),
        scopes: ctx.principal.scopes.clone(),
        request_id: ctx.request_id.clone(),
        client_supports,
        events: events_tx,
        input,
    };
    let era = ctx.era;
    let owned_state = state.clone();
    let caller = ctx.principal.subject.clone();
    let call = async move {
        let res = match set.find(&name) {
            Some((plugin, tool)) => {
                plugins::call_tool(&owned_state.runtime, plugin, tool, &arguments, call_ctx).await
            }
            None => Err(CallError::Trap("the tool was unloaded".into())),
        };
        outcome_answer(&owned_state, era, &name, &arguments, &caller, res)
    };
    let cancel = ctx
        .session
        .as_ref()
        .map(|session| InFlight::new(session.clone(), &id));
    let reply = match events_rx {
        None => run_plain(era, id, call, cancel).await,
        Some(rx) => {
            let outbound = Outbound {
                filter,
                plugin: plugin_name,
                session: ctx.session.clone(),
            };
            run_streaming(era, id, call, rx, outbound, cancel).await
        }
    };
    // A streamed answer's outcome is not known when its headers go out; it
    // is audited as started.
    if let Reply::Json(body) = &reply
        && (body["result"]["isError"] == true || body.get("error").is_some())
    {
        ctx.note(|note| note.outcome = Some(Outcome::ToolError));
    }
    reply
}

const NO_SUPPORT: ClientSupport = ClientSupport {
    elicitation: false,
    sampling: false,
    roots: false,
};

fn error_reply(id: &Value, error: RpcError) -> Reply {
    Reply::Json(jsonrpc::error(id, &error))
}

/// The input kinds a stateless request's `_meta` declares.
fn stateless_supports(params: &Value) -> ClientSupport {
    let caps = stateless::client_capabilities(params);
    ClientSupport {
        elicitation: caps.get("elicitation").is_some(),
        sampling: caps.get("sampling").is_some(),
        roots: caps.get("roots").is_some(),
    }
}

/// Answers for a replayed stateless call: those sealed in `requestState`
/// plus this round's `inputResponses`.
fn replay_answers(
    state: &McpState,
    tool: &str,
    arguments: &Value,
    params: &Value,
    caller: &str,
) -> Result<BTreeMap<String, String>, RpcError> {
    let mut answers = match params.get("requestState") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::String(token)) => state
            .state_key
            .open(token, tool, arguments, caller)
            .map_err(|e| RpcError::invalid_params(e.0))?,
        Some(_) => return Err(RpcError::invalid_params("requestState must be a string")),
    };
    match params.get("inputResponses") {
        None | Some(Value::Null) => {}
        Some(Value::Object(responses)) => {
            for (key, value) in responses {
                answers.insert(key.clone(), value.to_string());
            }
        }
        Some(_) => return Err(RpcError::invalid_params("inputResponses must be an object")),
    }
    Ok(answers)
}

/// Turns the plugin runtime's outcome into what the client receives.
fn outcome_answer(
    state: &McpState,
    era: Era,
    tool: &str,
    arguments: &Value,
    caller: &str,
    res: Result<CallOutcome, CallError>,
) -> Answer {
    match res {
        Ok(CallOutcome::Complete(output)) => Answer::Result(tools::output_json(output)),
        Ok(CallOutcome::InputRequired { requests, answered }) => {
            let mut input_requests = Map::new();
            for request in &requests {
                match input_request_json(request) {
                    Ok((method, params)) => {
                        input_requests.insert(
                            request.key.clone(),
                            json!({ "method": method, "params": params }),
                        );
                    }
                    Err(message) => {
                        return Answer::Error(
                            StatusCode::OK,
                            RpcError::new(
                                code::INTERNAL_ERROR,
                                format!("the tool asked an invalid question: {message}"),
                            ),
                        );
                    }
                }
            }
            Answer::Result(json!({
                "resultType": "input_required",
                "inputRequests": input_requests,
                "requestState": state.state_key.seal(tool, arguments, caller, &answered),
            }))
        }
        Err(CallError::MissingCapability(names)) if era.is_stateless() => {
            let required: Map<String, Value> =
                names.iter().map(|n| (n.to_string(), json!({}))).collect();
            let refusal = stateless::missing_capability(Value::Object(required));
            Answer::Error(refusal.status, refusal.error)
        }
        Err(CallError::InvalidAnswer(message)) => Answer::Error(
            StatusCode::OK,
            RpcError::invalid_params(format!("invalid inputResponses: {message}")),
        ),
        Err(err) => {
            // The error may carry the plugin's own text (a tool error, a panic).
            let shown = crate::plugins::escape_guest_text(&err.to_string()).into_owned();
            tracing::info!(tool, "tool call failed: {shown}");
            Answer::Result(tools::error_json(&err))
        }
    }
}

/// The MCP method and params that ask a client one question.
fn input_request_json(request: &InputRequest) -> Result<(&'static str, Value), String> {
    match &request.kind {
        InputKind::Elicitation(form) => {
            let schema: Value = serde_json::from_str(&form.requested_schema)
                .map_err(|e| format!("requested schema of {:?} is not JSON: {e}", request.key))?;
            Ok((
                "elicitation/create",
                json!({ "message": form.message, "requestedSchema": schema }),
            ))
        }
        InputKind::Sampling(params) => {
            let params: Value = serde_json::from_str(params)
                .map_err(|e| format!("sampling params of {:?} are not JSON: {e}", request.key))?;
            if !params.is_object() {
                return Err(format!(
                    "sampling params of {:?} must be an object",
                    request.key
                ));
            }
            Ok(("sampling/createMessage", params))
        }
        InputKind::ListRoots => Ok(("roots/list", json!({}))),
    }
}

/// Frames an answer: status and JSON-RPC message.
fn frame(era: Era, id: &Value, answer: Answer) -> (StatusCode, Value) {
    match answer {
        Answer::Result(result) => (StatusCode::OK, finish(era, id, Ok(result))),
        Answer::Error(status, error) => (status, jsonrpc::error(id, &error)),
    }
}

/// Which plugin events reach this call's client, and how.
struct EventFilter {
    progress_token: Option<Value>,
    min_log_rank: Option<u8>,
}

impl EventFilter {
    fn wants_any(&self) -> bool {
        self.progress_token.is_some() || self.min_log_rank.is_some()
    }
}

/// Turns plugin events into messages for the client.
struct Outbound {
    filter: EventFilter,
    plugin: String,
    session: Option<Arc<Session>>,
}

impl Outbound {
    fn messages(&self, event: PluginEvent) -> Vec<Value> {
        match event {
            PluginEvent::Progress {
                progress,
                total,
                message,
            } => {
                let Some(token) = &self.filter.progress_token else {
                    return Vec::new();
                };
                let mut params = json!({ "progressToken": token, "progress": progress });
                if let Some(total) = total {
                    params["total"] = json!(total);
                }
                if let Some(message) = message {
                    params["message"] = Value::String(message);
                }
                vec![jsonrpc::notification("notifications/progress", params)]
            }
            PluginEvent::Log { level, message } => {
                let rank = match level {
                    LogLevel::Debug => 0,
                    LogLevel::Info => 1,
                    LogLevel::Warning => 3,
                    LogLevel::Error => 4,
                };
                match self.filter.min_log_rank {
                    Some(min) if rank >= min => {
                        let params = json!({
                            "level": LOG_LEVELS[rank as usize],
                            "logger": self.plugin,
                            "data": message,
                        });
                        vec![jsonrpc::notification("notifications/message", params)]
                    }
                    _ => Vec::new(),
                }
            }
            PluginEvent::Input(ask) => self.ask(ask),
        }
    }

    /// Sends each question as a server-to-client request on this call's
    /// stream; a waiter task collects the answers from the session and hands
    /// them to the waiting plugin.
    fn ask(&self, ask: InputAsk) -> Vec<Value> {
        let Some(session) = &self.session else {
            let _ = ask.reply.send(Err(InputError::Unsupported(
                "no session to ask through".into(),
            )));
            return Vec::new();
        };
        let mut messages = Vec::with_capacity(ask.requests.len());
        let mut waits = Vec::with_capacity(ask.requests.len());
        for request in &ask.requests {
            match input_request_json(request) {
                Ok((method, params)) => {
                    let (request_id, rx) = session.expect_response();
                    messages.push(json!({ "jsonrpc": "2.0", "id": request_id, "method": method, "params": params }));
                    waits.push((request_id, rx));
                }
                Err(message) => {
                    for (request_id, _) in &waits {
                        session.forget_response(request_id);
                    }
                    let _ = ask.reply.send(Err(InputError::Failed(message)));
                    return Vec::new();
                }
            }
        }
        let session = session.clone();
        let mut reply = ask.reply;
        // Owned by the question: it ends when all answers are in, the timeout
        // passes, or the plugin stops waiting (the call ended).
        tokio::spawn(async move {
            let ids: Vec<String> = waits.iter().map(|(id, _)| id.clone()).collect();
            let collect = async {
                let mut answers = Vec::with_capacity(waits.len());
                for (_, rx) in waits {
                    match rx.await {
                        Ok(Ok(result)) => answers.push(result.to_string()),
                        Ok(Err(error)) => {
                            let message = error["message"]
                                .as_str()
                                .unwrap_or("the client refused")
                                .to_string();
                            return Err(InputError::Failed(message));
                        }
                        Err(_) => return Err(InputError::Failed("the session ended".into())),
                    }
                }
                Ok(answers)
            };
            tokio::select! {
                res = tokio::time::timeout(INPUT_TIMEOUT, collect) => {
                    let res = res.unwrap_or_else(|_| Err(InputError::Failed("the client did not answer in time".into())));
                    let _ = reply.send(res);
                }
                () = reply.closed() => {}
            }
            for id in &ids {
                session.forget_response(id);
            }
        });
        messages
    }
}

/// Registration of a call with its session so it can be cancelled; removed
/// when dropped, whichever way the call ends.
struct InFlight {
    session: Arc<Session>,
    key: String,
    cancelled: Option<oneshot::Receiver<()>>,
}

impl InFlight {
    fn new(session: Arc<Session>, id: &Value) -> InFlight {
        let key = id.to_string();
        let cancelled = Some(session.track(key.clone()));
        InFlight {
            session,
            key,
            cancelled,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.session.untrack(&self.key);
    }
}

async fn wait_cancelled(in_flight: &mut Option<InFlight>) {
    match in_flight.as_mut().and_then(|f| f.cancelled.as_mut()) {
        Some(rx) => {
            if rx.await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

fn cancelled_response(id: &Value) -> Value {
    jsonrpc::error(
        id,
        &RpcError::new(REQUEST_CANCELLED, "request cancelled by the client"),
    )
}

async fn run_plain(
    era: Era,
    id: Value,
    call: impl Future<Output = Answer>,
    mut cancel: Option<InFlight>,
) -> Reply {
    tokio::select! {
        answer = call => {
            let (status, body) = frame(era, &id, answer);
            if status == StatusCode::OK {
                Reply::Json(body)
            } else {
                Reply::Http(json_response(status, &body))
            }
        }
        () = wait_cancelled(&mut cancel) => Reply::Json(cancelled_response(&id)),
    }
}

/// Runs a call whose client may receive notifications or questions. While
/// nothing is sent the answer stays a single JSON body; the first message
/// switches the response to an event stream that ends with the result.
async fn run_streaming(
    era: Era,
    id: Value,
    call: impl Future<Output = Answer> + Send + 'static,
    mut rx: mpsc::Receiver<PluginEvent>,
    outbound: Outbound,
    mut cancel: Option<InFlight>,
) -> Reply {
    let mut call = Box::pin(call);
    let mut pending = Vec::new();
    loop {
        tokio::select! {
            biased;
            Some(event) = rx.recv() => {
                pending.extend(outbound.messages(event));
                if !pending.is_empty() {
                    break;
                }
            }
            answer = &mut call => {
                while let Ok(event) = rx.try_recv() {
                    pending.extend(outbound.messages(event));
                }
                let (status, response) = frame(era, &id, answer);
                if pending.is_empty() {
                    return if status == StatusCode::OK {
                        Reply::Json(response)
                    } else {
                        Reply::Http(json_response(status, &response))
                    };
                }
                let (tx, body_rx) = mpsc::channel(pending.len() + 1);
                for message in &pending {
                    let _ = tx.try_send(sse_event(message));
                }
                let _ = tx.try_send(sse_event(&response));
                return Reply::Http(sse_response(body_rx));
            }
            () = wait_cancelled(&mut cancel) => return Reply::Json(cancelled_response(&id)),
        }
    }
    let (tx, body_rx) = mpsc::channel(EVENT_QUEUE);
    // The task is owned by the response body: when the client goes away,
    // `tx.closed()` fires and dropping `call` stops the plugin.
    tokio::spawn(async move {
        for message in pending.drain(..) {
            if tx.send(sse_event(&message)).await.is_err() {
                return;
            }
        }
        loop {
            tokio::select! {
                biased;
                Some(event) = rx.recv() => {
                    for message in outbound.messages(event) {
                        if tx.send(sse_event(&message)).await.is_err() {
                            return;
                        }
                    }
                }
                answer = &mut call => {
                    while let Ok(event) = rx.try_recv() {
                        for message in outbound.messages(event) {
                            let _ = tx.send(sse_event(&message)).await;
                        }
                    }
                    let (_, response) = frame(era, &id, answer);
                    let _ = tx.send(sse_event(&response)).await;
                    return;
                }
                () = wait_cancelled(&mut cancel) => {
                    let _ = tx.send(sse_event(&cancelled_response(&id))).await;
                    return;
                }
                () = tx.closed() => return,
            }
        }
    });
    Reply::Http(sse_response(body_rx))
}
