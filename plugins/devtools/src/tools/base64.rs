//! `base64`: encodes text to base64 and decodes base64 (standard or url-safe),
//! plus the lenient decoder other tools share.

use base64::Engine as _;
use base64::engine::general_purpose::{
    STANDARD, STANDARD_NO_PAD, STANDARD_NO_PAD_INDIFFERENT, URL_SAFE, URL_SAFE_NO_PAD,
    URL_SAFE_NO_PAD_INDIFFERENT,
};
use serde::Deserialize;
use serde_json::json;

use crate::tool::{Output, ToolError, ToolSpec, invalid, parse_args};

pub(crate) fn spec() -> ToolSpec {
    ToolSpec {
        name: "base64",
        title: "Base64 encode/decode",
        description: "Encode text (as UTF-8) to base64, or decode base64 back to text. Supports the \
            standard alphabet (+/) and the url-safe one (-_). Decoding ignores whitespace, accepts \
            missing padding and detects the alphabet when not given; bytes that are not UTF-8 \
            come back as hex.",
        input_schema: json!({
            "type": "object",
            "properties": {
                "operation": {"type": "string", "enum": ["encode", "decode"], "description": "`encode` text to base64, or `decode` base64 to text."},
                "input": {"type": "string", "description": "The text to encode, or the base64 to decode."},
                "alphabet": {"type": "string", "enum": ["standard", "url_safe"], "description": "Base64 alphabet. Encoding defaults to `standard`; decoding detects it."},
                "padding": {"type": "boolean", "description": "Whether encoding appends `=` padding. Defaults to true for `standard` and false for `url_safe` (as in JWTs). Ignored when decoding."}
            },
            "required": ["operation", "input"],
            "additionalProperties": false
        }),
        output_schema: Some(json!({
            "type": "object",
            "properties": {
                "result": {"type": "string", "description": "The base64 text, or the decoded text (hex when `result_kind` is `hex`)."},
                "result_kind": {"type": "string", "enum": ["base64", "utf8", "hex"]},
                "bytes": {"type": "integer", "description": "Length of the raw (unencoded) data in bytes."}
            },
            "required": ["result", "result_kind", "bytes"]
        })),
        idempotent: true,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    operation: Operation,
    input: String,
    alphabet: Option<Alphabet>,
    padding: Option<bool>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Operation {
    Encode,
    Decode,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Alphabet {
    Standard,
    UrlSafe,
}

/// Decodes base64 the way people paste it: with line breaks, with or without
/// padding, in either alphabet unless one is named.
pub(crate) fn decode_lenient(input: &str, alphabet: Option<Alphabet>) -> Result<Vec<u8>, String> {
    let cleaned: String = input.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let alphabet = alphabet.unwrap_or(if cleaned.contains(['-', '_']) {
        Alphabet::UrlSafe
    } else {
        Alphabet::Standard
    });
    // The *_INDIFFERENT engines accept input with or without `=` padding.
    let engine = match alphabet {
        Alphabet::Standard => STANDARD_NO_PAD_INDIFFERENT,
        Alphabet::UrlSafe => URL_SAFE_NO_PAD_INDIFFERENT,
    };
    engine.decode(cleaned.as_bytes()).map_err(|e| e.to_string())
}

pub(crate) fn run(arguments: &str) -> Result<Output, ToolError> {
    let args: Args = parse_args(arguments)?;
    let (result, kind, bytes) = match args.operation {
        Operation::Encode => {
            let alphabet = args.alphabet.unwrap_or(Alphabet::Standard);
            let padding = args.padding.unwrap_or(alphabet == Alphabet::Standard);
            let engine = match (alphabet, padding) {
                (Alphabet::Standard, true) => STANDARD,
                (Alphabet::Standard, false) => STANDARD_NO_PAD,
                (Alphabet::UrlSafe, true) => URL_SAFE,
                (Alphabet::UrlSafe, false) => URL_SAFE_NO_PAD,
            };
            (
                engine.encode(args.input.as_bytes()),
                "base64",
                args.input.len(),
            )
        }
        Operation::Decode => {
            let raw = decode_lenient(&args.input, args.alphabet)
                .map_err(|e| invalid(format!("`input` is not valid base64: {e}")))?;
            let len = raw.len();
            match String::from_utf8(raw) {
                Ok(text) => (text, "utf8", len),
                Err(e) => (hex::encode(e.into_bytes()), "hex", len),
            }
        }
    };
    let text = if kind == "hex" {
        format!("The decoded {bytes} bytes are not UTF-8 text; as hex:\n{result}")
    } else {
        result.clone()
    };
    Ok(Output::with_structured(
        text,
        json!({"result": result, "result_kind": kind, "bytes": bytes}),
    ))
}

#[cfg(test)]
mod tests {
    use crate::registry::tests::{run_invalid, run_ok};
    use serde_json::json;

    #[test]
    fn encodes_with_alphabet_defaults() {
        let std = run_ok("base64", json!({"operation": "encode", "input": "hi?>"}));
        assert_eq!(std.text, "aGk/Pg==");
        let url = run_ok(
            "base64",
            json!({"operation": "encode", "input": "hi?>", "alphabet": "url_safe"}),
        );
        assert_eq!(url.text, "aGk_Pg");
        let padded = run_ok(
            "base64",
            json!({"operation": "encode", "input": "hi?>", "alphabet": "url_safe", "padding": true}),
        );
        assert_eq!(padded.text, "aGk_Pg==");
    }

    #[test]
    fn decodes_leniently() {
        for input in ["aGk/Pg==", "aGk/Pg", "aGk_Pg", "aGk/\nPg=="] {
            let out = run_ok("base64", json!({"operation": "decode", "input": input}));
            assert_eq!(out.text, "hi?>", "{input}");
        }
    }

    #[test]
    fn binary_comes_back_as_hex() {
        let out = run_ok("base64", json!({"operation": "decode", "input": "/w=="}));
        let s = out.structured.unwrap_or_default();
        assert_eq!(
            (s["result"].as_str(), s["result_kind"].as_str()),
            (Some("ff"), Some("hex"))
        );
    }

    #[test]
    fn rejects_garbage() {
        run_invalid("base64", json!({"operation": "decode", "input": "!!!"}));
        run_invalid("base64", json!({"operation": "rot13", "input": "a"}));
    }
}
