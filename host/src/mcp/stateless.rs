//! The stateless era (2026-07-28): every request names its protocol version
//! in both the `MCP-Protocol-Version` header and `params._meta`, declares its
//! capabilities in `_meta`, and mirrors its method (and tool name) in the
//! `Mcp-Method` / `Mcp-Name` headers. There is no session.
//!
//! This file checks those rules in the order the spec gives them, so a
//! client gets the most specific error: header mismatch before unsupported
//! version, malformed `_meta` before either.

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::jsonrpc::{RpcError, code};
use super::protocol::{self, Era};
use super::transport::{VERSION_HEADER, header_str};

/// Header values disagree with each other or with the body.
pub(crate) const HEADER_MISMATCH: i64 = -32020;
/// The request needs a client capability the client did not declare.
pub(crate) const MISSING_CAPABILITY: i64 = -32021;
/// The protocol version is not one this server speaks.
pub(crate) const UNSUPPORTED_VERSION: i64 = -32022;

pub(crate) const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub(crate) const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub(crate) const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
pub(crate) const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
pub(crate) const META_SUBSCRIPTION: &str = "io.modelcontextprotocol/subscriptionId";

/// A refusal with the HTTP status the stateless era assigns to it.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) error: RpcError,
}

fn refuse(status: StatusCode, code: i64, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        error: RpcError::new(code, message),
    }
}

/// Validates a stateless-era message's headers and `_meta`. `method` and
/// `params` come from the body; `Ok` carries the era to serve it under.
pub(crate) fn validate(headers: &HeaderMap, method: &str, params: &Value) -> Result<Era, Refusal> {
    let Some(header_version) = header_str(headers, VERSION_HEADER).map(str::trim) else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            HEADER_MISMATCH,
            "MCP-Protocol-Version header is required",
        ));
    };
    mirrored_header(headers, "Mcp-Method", method)?;
    if let Some(name) = named_target(method, params) {
        mirrored_header(headers, "Mcp-Name", name)?;
    }
    let Some(meta) = params.get("_meta").and_then(Value::as_object) else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            code::INVALID_PARAMS,
            "params._meta is required",
        ));
    };
    let Some(meta_version) = meta.get(META_VERSION).and_then(Value::as_str) else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            code::INVALID_PARAMS,
            format!("params._meta[{META_VERSION:?}] is required"),
        ));
    };
    if !meta.get(META_CAPABILITIES).is_some_and(Value::is_object) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            code::INVALID_PARAMS,
            format!("params._meta[{META_CAPABILITIES:?}] must be an object"),
        ));
    }
    if meta_version != header_version {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            HEADER_MISMATCH,
            format!(
                "MCP-Protocol-Version header {header_version:?} does not match _meta version {meta_version:?}"
            ),
        ));
    }
    match protocol::known(header_version) {
        Some(era @ Era::Stateless(_)) => Ok(era),
        _ => Err(unsupported_version(header_version)),
    }
}

/// Checks that header `name` is present and equals `expected` from the body.
fn mirrored_header(headers: &HeaderMap, name: &str, expected: &str) -> Result<(), Refusal> {
    match header_str(headers, name).map(str::trim) {
        Some(value) if value == expected => Ok(()),
        Some(value) => Err(refuse(
            StatusCode::BAD_REQUEST,
            HEADER_MISMATCH,
            format!("{name} header {value:?} does not match the body's {expected:?}"),
        )),
        None => Err(refuse(
            StatusCode::BAD_REQUEST,
            HEADER_MISMATCH,
            format!("{name} header is required for {expected}"),
        )),
    }
}

/// `-32022` with the versions we do speak.
pub(crate) fn unsupported_version(requested: &str) -> Refusal {
    let mut refusal = refuse(
        StatusCode::BAD_REQUEST,
        UNSUPPORTED_VERSION,
        format!("unsupported protocol version {requested:?}"),
    );
    refusal.error = refusal.error.with_data(json!({
        "supported": protocol::STATELESS_VERSIONS,
        "requested": requested,
    }));
    refusal
}

/// `-32021`: the call needs capabilities the client did not declare.
pub(crate) fn missing_capability(required: Value) -> Refusal {
    let names: Vec<&str> = required
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut refusal = refuse(
        StatusCode::BAD_REQUEST,
        MISSING_CAPABILITY,
        format!(
            "this request needs client capabilities the client did not declare: {}",
            names.join(", ")
        ),
    );
    refusal.error = refusal
        .error
        .with_data(json!({ "requiredCapabilities": required }));
    refusal
}

/// The client capabilities a stateless request declared (`{}` if none).
pub(crate) fn client_capabilities(params: &Value) -> &Value {
    static EMPTY: Value = Value::Null;
    params
        .get("_meta")
        .and_then(|m| m.get(META_CAPABILITIES))
        .unwrap_or(&EMPTY)
}

/// The value `Mcp-Name` must mirror, for methods that address one thing.
fn named_target<'a>(method: &str, params: &'a Value) -> Option<&'a str> {
    let field = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" => "uri",
        _ => return None,
    };
    params.get(field).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("header value"));
        }
        map
    }

    fn meta(version: &str) -> Value {
        json!({ "_meta": { META_VERSION: version, META_CAPABILITIES: {} } })
    }

    #[test]
    fn validation_order() {
        let check = |pairs: &[(&'static str, &str)],
                     method: &str,
                     params: Value,
                     expect: Result<(), (u16, i64)>| {
            let got = validate(&headers(pairs), method, &params)
                .map(|_| ())
                .map_err(|r| (r.status.as_u16(), r.error.code));
            assert_eq!(got, expect, "{pairs:?} {method} {params}");
        };
        let v = "2026-07-28";
        let good = [("mcp-protocol-version", v), ("mcp-method", "tools/list")];
        check(&good, "tools/list", meta(v), Ok(()));
        check(
            &[("mcp-method", "tools/list")],
            "tools/list",
            meta(v),
            Err((400, HEADER_MISMATCH)),
        );
        check(
            &[("mcp-protocol-version", v)],
            "tools/list",
            meta(v),
            Err((400, HEADER_MISMATCH)),
        );
        check(&good, "ping", meta(v), Err((400, HEADER_MISMATCH)));
        check(
            &good,
            "tools/list",
            json!({}),
            Err((400, code::INVALID_PARAMS)),
        );
        check(
            &good,
            "tools/list",
            json!({"_meta": {META_CAPABILITIES: {}}}),
            Err((400, code::INVALID_PARAMS)),
        );
        check(
            &good,
            "tools/list",
            json!({"_meta": {META_VERSION: v}}),
            Err((400, code::INVALID_PARAMS)),
        );
        check(
            &good,
            "tools/list",
            meta("v999.0.0"),
            Err((400, HEADER_MISMATCH)),
        );
        check(
            &[
                ("mcp-protocol-version", "v999.0.0"),
                ("mcp-method", "tools/list"),
            ],
            "tools/list",
            meta("v999.0.0"),
            Err((400, UNSUPPORTED_VERSION)),
        );
        let mut call = meta(v);
        call["name"] = json!("echo");
        check(
            &[("mcp-protocol-version", v), ("mcp-method", "tools/call")],
            "tools/call",
            call.clone(),
            Err((400, HEADER_MISMATCH)),
        );
        check(
            &[
                ("mcp-protocol-version", v),
                ("mcp-method", "tools/call"),
                ("mcp-name", "other"),
            ],
            "tools/call",
            call.clone(),
            Err((400, HEADER_MISMATCH)),
        );
        check(
            &[
                ("mcp-protocol-version", v),
                ("mcp-method", "tools/call"),
                ("mcp-name", " echo "),
            ],
            "tools/call",
            call,
            Ok(()),
        );
    }
}
