//! `jwt_decode`: shows the header and claims of a JWT without verifying it.

use chrono::{DateTime, SecondsFormat};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::base64::{Alphabet, decode_lenient};
use crate::tool::{Output, ToolError, ToolSpec, invalid, parse_args, pretty};

const UNVERIFIED: &str = "UNVERIFIED: the signature was not checked, so nothing below proves who issued this token or that it is unmodified.";

pub(crate) fn spec() -> ToolSpec {
    ToolSpec {
        name: "jwt_decode",
        title: "Decode a JWT (unverified)",
        description: "Decode the header and payload (claims) of a JSON Web Token (JWS compact \
            form) for inspection, with `exp`, `nbf` and `iat` shown as dates. The signature is \
            NOT verified: never treat the claims as trusted. Accepts a leading `Bearer `.",
        input_schema: json!({
            "type": "object",
            "properties": {
                "token": {"type": "string", "description": "The JWT: three base64url parts separated by dots."}
            },
            "required": ["token"],
            "additionalProperties": false
        }),
        output_schema: Some(json!({
            "type": "object",
            "properties": {
                "verified": {"type": "boolean", "const": false, "description": "Always false: the signature is never checked."},
                "header": {"type": "object"},
                "payload": {"description": "The claims object, or the payload as text when it is not JSON."},
                "times": {"type": "object", "description": "`exp`, `nbf` and `iat` as RFC 3339, when present.", "additionalProperties": {"type": "string"}},
                "signature_bytes": {"type": "integer"}
            },
            "required": ["verified", "header", "payload", "times", "signature_bytes"]
        })),
        idempotent: true,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    token: String,
}

fn decode_part(part: &str, what: &str) -> Result<Vec<u8>, ToolError> {
    decode_lenient(part, Some(Alphabet::UrlSafe))
        .map_err(|e| invalid(format!("the {what} is not valid base64url: {e}")))
}

pub(crate) fn run(arguments: &str) -> Result<Output, ToolError> {
    let args: Args = parse_args(arguments)?;
    let token = args.token.trim();
    let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
    let parts: Vec<&str> = token.split('.').collect();
    match parts.len() {
        3 => {}
        5 => {
            return Err(invalid(
                "this is an encrypted JWT (JWE, five parts); its claims cannot be read without the key",
            ));
        }
        n => {
            return Err(invalid(format!(
                "a JWT has three dot-separated parts; this has {n}"
            )));
        }
    }

    let header: Map<String, Value> = serde_json::from_slice(&decode_part(parts[0], "header")?)
        .map_err(|e| invalid(format!("the header is not a JSON object: {e}")))?;
    let payload_bytes = decode_part(parts[1], "payload")?;
    // RFC 7515 allows any payload; JWTs carry JSON, but show other text as is.
    let payload: Value = match serde_json::from_slice(&payload_bytes) {
        Ok(v) => v,
        Err(_) => Value::String(
            String::from_utf8(payload_bytes)
                .map_err(|_| invalid("the payload is neither JSON nor UTF-8 text"))?,
        ),
    };
    let signature = decode_part(parts[2], "signature")?;

    let mut times = Map::new();
    for claim in ["exp", "nbf", "iat"] {
        let when = payload
            .get(claim)
            .and_then(Value::as_i64)
            .and_then(|s| DateTime::from_timestamp(s, 0));
        if let Some(when) = when {
            times.insert(
                claim.to_string(),
                json!(when.to_rfc3339_opts(SecondsFormat::Secs, true)),
            );
        }
    }

    let mut text = format!("{UNVERIFIED}\n");
    if header
        .get("alg")
        .and_then(Value::as_str)
        .is_some_and(|a| a.eq_ignore_ascii_case("none"))
    {
        text.push_str("The header says alg \"none\": this token is unsigned.\n");
    }
    let header = Value::Object(header);
    text.push_str(&format!(
        "\nHeader:\n{}\n\nPayload:\n{}\n",
        pretty(&header)?,
        pretty(&payload)?
    ));
    if !times.is_empty() {
        text.push('\n');
        for (claim, when) in &times {
            text.push_str(&format!("{claim}: {}\n", when.as_str().unwrap_or_default()));
        }
    }
    text.push_str(&format!(
        "\nSignature: {} bytes (not verified)",
        signature.len()
    ));
    Ok(Output::with_structured(
        text,
        json!({
            "verified": false,
            "header": header,
            "payload": payload,
            "times": times,
            "signature_bytes": signature.len(),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use crate::registry::tests::{run_invalid, run_ok};
    use serde_json::json;

    // The example token from jwt.io (HS256, "your-256-bit-secret").
    const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

    #[test]
    fn decodes_header_payload_and_times() {
        let out = run_ok("jwt_decode", json!({"token": format!("Bearer {TOKEN}")}));
        assert!(out.text.starts_with("UNVERIFIED"));
        let s = out.structured.unwrap_or_default();
        assert_eq!(s["verified"], false);
        assert_eq!(s["header"]["alg"], "HS256");
        assert_eq!(s["payload"]["name"], "John Doe");
        assert_eq!(s["times"]["iat"], "2018-01-18T01:30:22Z");
        assert_eq!(s["signature_bytes"], 32);
    }

    #[test]
    fn flags_unsigned_tokens() {
        // {"alg":"none"} . {"a":1} . (empty signature)
        let out = run_ok(
            "jwt_decode",
            json!({"token": "eyJhbGciOiJub25lIn0.eyJhIjoxfQ."}),
        );
        assert!(out.text.contains("unsigned"));
    }

    #[test]
    fn rejects_non_jwts() {
        assert!(run_invalid("jwt_decode", json!({"token": "abc"})).contains("three"));
        assert!(run_invalid("jwt_decode", json!({"token": "a.b.c.d.e"})).contains("JWE"));
        run_invalid("jwt_decode", json!({"token": "!!.e30.x"}));
        run_invalid("jwt_decode", json!({"token": "WzFd.e30."}));
    }
}
