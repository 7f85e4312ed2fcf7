//! `host.request-input`: a tool asking the client for input mid-call.
//!
//! Two ways to answer, one per protocol era, behind one import:
//! - **Live** (session era): the question goes to the transport as a
//!   [`PluginEvent::Input`]; the transport asks the client over the call's
//!   event stream and sends the answers back while the guest waits.
//! - **Replay** (stateless era): the call cannot wait, so an unanswered
//!   question ends it with [`Interrupt::InputRequired`]; the client answers in
//!   a new request and the call is replayed from the start with the answers
//!   known, returning them at once.
//!
//! Answers are checked for shape before the guest sees them: the guest
//! trusts that an elicitation answer is an `ElicitResult` and so on.

use std::collections::BTreeMap;

use serde_json::Value;
use tokio::sync::oneshot;

use super::bindings::{ClientSupport, InputError, InputKind, InputRequest};
use super::store::{CallState, PluginEvent};

/// Most questions in one `request-input`; more is a guest bug or an attack
/// on the client.
const MAX_REQUESTS: usize = 16;

/// Largest total size of one `request-input`'s questions.
const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// How the current call's `request-input` is answered.
pub enum InputMode {
    /// Nobody can be asked (a client that accepts no event stream, a batch).
    Unavailable,
    /// Ask the client now, through the call's event channel.
    Live(tokio::sync::mpsc::Sender<PluginEvent>),
    /// Answers gathered in earlier rounds, by key; anything else interrupts.
    Replay(BTreeMap<String, String>),
}

/// A question on its way to the transport, with where to send the answers
/// (one JSON text per request, in order).
#[derive(Debug)]
pub struct InputAsk {
    pub requests: Vec<InputRequest>,
    pub reply: oneshot::Sender<Result<Vec<String>, InputError>>,
}

/// Why a replayed call stopped early; read by `call` after the trap.
#[derive(Debug)]
pub(crate) enum Interrupt {
    InputRequired(Vec<InputRequest>),
    MissingCapability(Vec<&'static str>),
    InvalidAnswer(String),
}

/// The host side of `request-input`.
pub(crate) async fn request(
    state: &mut CallState,
    requests: Vec<InputRequest>,
) -> wasmtime::Result<Result<Vec<String>, InputError>> {
    if requests.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    let size: usize = requests.iter().map(request_size).sum();
    if requests.len() > MAX_REQUESTS || size > MAX_REQUEST_BYTES {
        return Ok(Err(InputError::Failed(format!(
            "at most {MAX_REQUESTS} questions and {MAX_REQUEST_BYTES} bytes per request-input"
        ))));
    }
    let missing = missing_capabilities(&state.client_supports, &requests);
    match &mut state.input {
        InputMode::Unavailable => Ok(Err(InputError::Unsupported(
            "this request cannot carry questions to the client (it must accept text/event-stream)"
                .into(),
        ))),
        InputMode::Live(events) => {
            if !missing.is_empty() {
                return Ok(Err(InputError::Unsupported(format!(
                    "the client did not declare the capabilities: {}",
                    missing.join(", ")
                ))));
            }
            let (reply, answer) = oneshot::channel();
            let ask = InputAsk {
                requests: requests.clone(),
                reply,
            };
            if events.send(PluginEvent::Input(ask)).await.is_err() {
                return Ok(Err(InputError::Failed("the client went away".into())));
            }
            let answers = match answer.await {
                Ok(Ok(answers)) => answers,
                Ok(Err(err)) => return Ok(Err(err)),
                Err(_) => return Ok(Err(InputError::Failed("the client did not answer".into()))),
            };
            if answers.len() != requests.len() {
                return Ok(Err(InputError::Failed(
                    "the client's answers do not match the questions".into(),
                )));
            }
            for (request, answer) in requests.iter().zip(&answers) {
                if let Err(message) = check_answer(request, answer) {
                    return Ok(Err(InputError::Failed(message)));
                }
            }
            Ok(Ok(answers))
        }
        InputMode::Replay(answers) => {
            if !missing.is_empty() {
                state.interrupt = Some(Interrupt::MissingCapability(missing));
                wasmtime::bail!("call interrupted: missing client capability");
            }
            let mut found = Vec::with_capacity(requests.len());
            let mut unanswered = Vec::new();
            for request in &requests {
                match answers.get(&request.key) {
                    Some(answer) => {
                        if let Err(message) = check_answer(request, answer) {
                            state.interrupt = Some(Interrupt::InvalidAnswer(message));
                            wasmtime::bail!("call interrupted: invalid answer");
                        }
                        found.push(answer.clone());
                    }
                    None => unanswered.push(request.clone()),
                }
            }
            if !unanswered.is_empty() {
                state.interrupt = Some(Interrupt::InputRequired(unanswered));
                wasmtime::bail!("call interrupted: input required");
            }
            for (request, answer) in requests.iter().zip(&found) {
                state.consumed.insert(request.key.clone(), answer.clone());
            }
            Ok(Ok(found))
        }
    }
}

fn request_size(request: &InputRequest) -> usize {
    request.key.len()
        + match &request.kind {
            InputKind::Elicitation(e) => e.message.len() + e.requested_schema.len(),
            InputKind::Sampling(params) => params.len(),
            InputKind::ListRoots => 0,
        }
}

/// The capability names (as in MCP `ClientCapabilities`) the questions need
/// and the client lacks.
pub(crate) fn missing_capabilities(
    support: &ClientSupport,
    requests: &[InputRequest],
) -> Vec<&'static str> {
    let mut missing = Vec::new();
    for request in requests {
        let (name, ok) = match request.kind {
            InputKind::Elicitation(_) => ("elicitation", support.elicitation),
            InputKind::Sampling(_) => ("sampling", support.sampling),
            InputKind::ListRoots => ("roots", support.roots),
        };
        if !ok && !missing.contains(&name) {
            missing.push(name);
        }
    }
    missing
}

/// Checks that an answer has the shape its question's kind promises.
pub(crate) fn check_answer(request: &InputRequest, answer: &str) -> Result<(), String> {
    let key = &request.key;
    let value: Value = serde_json::from_str(answer)
        .map_err(|e| format!("the answer to {key:?} is not JSON: {e}"))?;
    let ok = match &request.kind {
        InputKind::Elicitation(_) => {
            matches!(
                value.get("action").and_then(Value::as_str),
                Some("accept" | "decline" | "cancel")
            ) && value.get("content").is_none_or(Value::is_object)
        }
        InputKind::Sampling(_) => value.get("content").is_some() && value.get("role").is_some(),
        InputKind::ListRoots => value.get("roots").is_some_and(Value::is_array),
    };
    if ok {
        return Ok(());
    }
    let expected = match &request.kind {
        InputKind::Elicitation(_) => {
            "an ElicitResult ({\"action\": \"accept\"|\"decline\"|\"cancel\", \"content\": {…}})"
        }
        InputKind::Sampling(_) => "a CreateMessageResult ({\"role\", \"content\", …})",
        InputKind::ListRoots => "a ListRootsResult ({\"roots\": […]})",
    };
    Err(format!("the answer to {key:?} is not {expected}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::bindings::ElicitationRequest;

    fn req(kind: InputKind) -> InputRequest {
        InputRequest {
            key: "k".into(),
            kind,
        }
    }

    #[test]
    fn answers_are_shape_checked() {
        let elicit = || {
            req(InputKind::Elicitation(ElicitationRequest {
                message: "m".into(),
                requested_schema: "{}".into(),
            }))
        };
        let check = |request: InputRequest, answer: &str, expect: bool| {
            assert_eq!(check_answer(&request, answer).is_ok(), expect, "{answer}");
        };
        check(
            elicit(),
            r#"{"action":"accept","content":{"name":"a"}}"#,
            true,
        );
        check(elicit(), r#"{"action":"decline"}"#, true);
        check(elicit(), r#"12345"#, false);
        check(elicit(), r#"null"#, false);
        check(elicit(), r#"{"action":"maybe"}"#, false);
        check(elicit(), r#"{"action":"accept","content":"x"}"#, false);
        check(
            req(InputKind::Sampling("{}".into())),
            r#"{"role":"assistant","content":{"type":"text","text":"t"}}"#,
            true,
        );
        check(
            req(InputKind::Sampling("{}".into())),
            r#"{"content":{}}"#,
            false,
        );
        check(req(InputKind::ListRoots), r#"{"roots":[]}"#, true);
        check(req(InputKind::ListRoots), r#"{"roots":{}}"#, false);
        check(req(InputKind::ListRoots), r#"not json"#, false);
    }

    #[test]
    fn missing_capabilities_are_named_once() {
        let support = ClientSupport {
            elicitation: false,
            sampling: true,
            roots: false,
        };
        let requests = vec![
            req(InputKind::ListRoots),
            req(InputKind::Sampling("{}".into())),
            req(InputKind::ListRoots),
        ];
        assert_eq!(missing_capabilities(&support, &requests), vec!["roots"]);
    }
}
