//! JSON-RPC 2.0 framing: parsing incoming messages and building responses.
//!
//! Only this module and its siblings in `mcp` touch the JSON wire format.

use serde_json::{Map, Value, json};

/// Standard and MCP-specific JSON-RPC error codes.
pub(crate) mod code {
    pub(crate) const PARSE_ERROR: i64 = -32700;
    pub(crate) const INVALID_REQUEST: i64 = -32600;
    pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
    pub(crate) const INVALID_PARAMS: i64 = -32602;
    pub(crate) const INTERNAL_ERROR: i64 = -32603;
}

/// One parsed JSON-RPC message from the client.
#[derive(Debug)]
pub(crate) enum Message {
    /// Has an `id`: needs a response.
    Request(Request),
    /// No `id`: never answered.
    Notification { method: String, params: Value },
    /// A response to a server-to-client request (a question a tool asked).
    Response {
        id: Value,
        /// `Ok(result)` or `Err(error object)`.
        outcome: Result<Value, Value>,
    },
}

#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) id: Value,
    pub(crate) method: String,
    /// `{}` when absent, so handlers read fields without special cases.
    pub(crate) params: Value,
}

/// A JSON-RPC error for one message, before it is framed with the message id.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RpcError {
    pub(crate) code: i64,
    pub(crate) message: String,
    pub(crate) data: Option<Value>,
}

impl RpcError {
    pub(crate) fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub(crate) fn invalid_params(message: impl Into<String>) -> RpcError {
        RpcError::new(code::INVALID_PARAMS, message)
    }

    pub(crate) fn with_data(mut self, data: Value) -> RpcError {
        self.data = Some(data);
        self
    }
}

/// Reads one message object. `Err` carries the id (if one could be read) so
/// the error response can still be correlated.
pub(crate) fn parse_message(value: Value) -> Result<Message, (Value, RpcError)> {
    let Value::Object(mut object) = value else {
        return Err((
            Value::Null,
            RpcError::new(
                code::INVALID_REQUEST,
                "a JSON-RPC message must be an object",
            ),
        ));
    };
    let id = object.remove("id");
    let id_for_error = id.clone().unwrap_or(Value::Null);
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err((
            id_for_error,
            RpcError::new(code::INVALID_REQUEST, "\"jsonrpc\" must be \"2.0\""),
        ));
    }
    match object.remove("method") {
        Some(Value::String(method)) => {
            let params = match object.remove("params") {
                None | Some(Value::Null) => Value::Object(Map::new()),
                Some(params @ Value::Object(_)) => params,
                Some(_) => {
                    return Err((
                        id_for_error,
                        RpcError::new(code::INVALID_REQUEST, "\"params\" must be an object"),
                    ));
                }
            };
            match id {
                None => Ok(Message::Notification { method, params }),
                Some(id @ (Value::String(_) | Value::Number(_))) => {
                    Ok(Message::Request(Request { id, method, params }))
                }
                Some(_) => Err((
                    Value::Null,
                    RpcError::new(code::INVALID_REQUEST, "\"id\" must be a string or a number"),
                )),
            }
        }
        Some(_) => Err((
            id_for_error,
            RpcError::new(code::INVALID_REQUEST, "\"method\" must be a string"),
        )),
        None if id.is_some() && (object.contains_key("result") || object.contains_key("error")) => {
            let outcome = match object.remove("result") {
                Some(result) => Ok(result),
                None => Err(object.remove("error").unwrap_or(Value::Null)),
            };
            Ok(Message::Response {
                id: id_for_error,
                outcome,
            })
        }
        None => Err((
            id_for_error,
            RpcError::new(
                code::INVALID_REQUEST,
                "a JSON-RPC message needs a \"method\"",
            ),
        )),
    }
}

/// A success response object.
pub(crate) fn result(id: &Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

/// An error response object.
pub(crate) fn error(id: &Value, error: &RpcError) -> Value {
    let mut body = json!({ "code": error.code, "message": error.message });
    if let Some(data) = &error.data {
        body["data"] = data.clone();
    }
    json!({ "jsonrpc": "2.0", "id": id, "error": body })
}

/// A notification object.
pub(crate) fn notification(method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "method": method, "params": params })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expect: &str) {
        let value: Value = serde_json::from_str(input).expect("test input is JSON");
        let got = match parse_message(value) {
            Ok(Message::Request(r)) => format!("request {} {} {}", r.id, r.method, r.params),
            Ok(Message::Notification { method, params }) => {
                format!("notification {method} {params}")
            }
            Ok(Message::Response { id, outcome }) => format!("response {id} {}", outcome.is_ok()),
            Err((id, e)) => format!("error {id} {} {}", e.code, e.message),
        };
        assert_eq!(got, expect, "for {input}");
    }

    #[test]
    fn parses_messages() {
        check(
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            "request 1 ping {}",
        );
        check(
            r#"{"jsonrpc":"2.0","id":"a","method":"x","params":{"k":1}}"#,
            r#"request "a" x {"k":1}"#,
        );
        check(
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            "notification notifications/initialized {}",
        );
        check(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#, "response 1 true");
        check(
            r#"{"jsonrpc":"2.0","id":"t-1","error":{"code":1,"message":"m"}}"#,
            r#"response "t-1" false"#,
        );
        check(
            r#"[1]"#,
            "error null -32600 a JSON-RPC message must be an object",
        );
        check(
            r#"{"id":1,"method":"ping"}"#,
            "error 1 -32600 \"jsonrpc\" must be \"2.0\"",
        );
        check(
            r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
            "error 1 -32600 \"jsonrpc\" must be \"2.0\"",
        );
        check(
            r#"{"jsonrpc":"2.0","id":1,"method":5}"#,
            "error 1 -32600 \"method\" must be a string",
        );
        check(
            r#"{"jsonrpc":"2.0","id":1}"#,
            "error 1 -32600 a JSON-RPC message needs a \"method\"",
        );
        check(
            r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
            "error null -32600 \"id\" must be a string or a number",
        );
        check(
            r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
            "error null -32600 \"id\" must be a string or a number",
        );
        check(
            r#"{"jsonrpc":"2.0","id":2,"method":"ping","params":[1]}"#,
            "error 2 -32600 \"params\" must be an object",
        );
    }
}
