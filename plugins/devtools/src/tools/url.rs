//! `url`: percent-encoding and -decoding, and parsing or resolving URLs into
//! their parts (WHATWG URL rules, as browsers apply them).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use crate::tool::{Output, ToolError, ToolSpec, invalid, parse_args};

/// RFC 3986 unreserved characters stay as they are; everything else is
/// escaped, so the result is safe in any URL component.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub(crate) fn spec() -> ToolSpec {
    ToolSpec {
        name: "url",
        title: "URL encode, decode and parse",
        description: "Work with URLs: `encode` percent-encodes text for use in a URL component \
            (like encodeURIComponent, or form encoding with `+` for spaces); `decode` reverses it; \
            `parse` splits a URL into scheme, user, host, port, path, query parameters and \
            fragment; `resolve` joins a relative reference onto `base`.",
        input_schema: json!({
            "type": "object",
            "properties": {
                "operation": {"type": "string", "enum": ["encode", "decode", "parse", "resolve"], "description": "What to do with `input`."},
                "input": {"type": "string", "description": "Text to encode or decode, a URL to parse, or a (relative) reference to resolve."},
                "base": {"type": "string", "description": "Absolute base URL; required for `resolve`."},
                "form": {"type": "boolean", "default": false, "description": "Use application/x-www-form-urlencoded rules: spaces are `+` when encoding and `+` means space when decoding."}
            },
            "required": ["operation", "input"],
            "additionalProperties": false
        }),
        output_schema: Some(json!({
            "type": "object",
            "properties": {
                "operation": {"type": "string"},
                "result": {"type": "string", "description": "Encoded or decoded text, or the normalised URL."},
                "parts": {
                    "type": "object",
                    "description": "For `parse` and `resolve`.",
                    "properties": {
                        "scheme": {"type": "string"},
                        "username": {"type": "string"},
                        "password": {"type": ["string", "null"]},
                        "host": {"type": ["string", "null"]},
                        "port": {"type": ["integer", "null"]},
                        "effective_port": {"type": ["integer", "null"], "description": "The port, or the scheme's default."},
                        "path": {"type": "string"},
                        "path_segments": {"type": ["array", "null"], "items": {"type": "string"}},
                        "query": {"type": ["string", "null"]},
                        "query_params": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}, "description": "Decoded [name, value] pairs in order."},
                        "fragment": {"type": ["string", "null"]},
                        "origin": {"type": "string"}
                    }
                }
            },
            "required": ["operation", "result"]
        })),
        idempotent: true,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    operation: Operation,
    input: String,
    base: Option<String>,
    #[serde(default)]
    form: bool,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Operation {
    Encode,
    Decode,
    Parse,
    Resolve,
}

fn parts(url: &Url) -> Value {
    json!({
        "scheme": url.scheme(),
        "username": url.username(),
        "password": url.password(),
        "host": url.host_str(),
        "port": url.port(),
        "effective_port": url.port_or_known_default(),
        "path": url.path(),
        "path_segments": url.path_segments().map(|s| s.collect::<Vec<_>>()),
        "query": url.query(),
        "query_params": url.query_pairs().map(|(k, v)| vec![k.into_owned(), v.into_owned()]).collect::<Vec<_>>(),
        "fragment": url.fragment(),
        "origin": url.origin().ascii_serialization(),
    })
}

fn parse_url(text: &str, what: &str) -> Result<Url, ToolError> {
    Url::parse(text.trim())
        .map_err(|e| invalid(format!("`{what}` is not a valid absolute URL: {e}")))
}

fn describe(url: &Url) -> String {
    let p = parts(url);
    let mut text = format!("{url}\n");
    for key in [
        "scheme", "username", "password", "host", "port", "path", "query", "fragment",
    ] {
        match &p[key] {
            Value::Null => {}
            Value::String(s) if s.is_empty() => {}
            Value::String(s) => text.push_str(&format!("{key}: {s}\n")),
            other => text.push_str(&format!("{key}: {other}\n")),
        }
    }
    for (k, v) in url.query_pairs() {
        text.push_str(&format!("query param {k:?} = {v:?}\n"));
    }
    text.trim_end().to_string()
}

pub(crate) fn run(arguments: &str) -> Result<Output, ToolError> {
    let args: Args = parse_args(arguments)?;
    let (name, result, url) = match args.operation {
        Operation::Encode => {
            let encoded = if args.form {
                url::form_urlencoded::byte_serialize(args.input.as_bytes()).collect()
            } else {
                utf8_percent_encode(&args.input, COMPONENT).to_string()
            };
            ("encode", encoded, None)
        }
        Operation::Decode => {
            let input = if args.form {
                args.input.replace('+', " ")
            } else {
                args.input
            };
            let bytes: Vec<u8> = percent_decode_str(&input).collect();
            let decoded = String::from_utf8(bytes).map_err(|_| {
                invalid("the decoded bytes are not UTF-8 text; decode to bytes with the `base64` or `hash` tools instead")
            })?;
            ("decode", decoded, None)
        }
        Operation::Parse => {
            let url = parse_url(&args.input, "input")?;
            ("parse", url.to_string(), Some(url))
        }
        Operation::Resolve => {
            let base_text = args
                .base
                .as_deref()
                .ok_or_else(|| invalid("`resolve` needs `base`"))?;
            let base = parse_url(base_text, "base")?;
            let url = base.join(args.input.trim()).map_err(|e| {
                invalid(format!(
                    "cannot resolve `{}` against the base: {e}",
                    args.input
                ))
            })?;
            ("resolve", url.to_string(), Some(url))
        }
    };
    let text = url.as_ref().map_or_else(|| result.clone(), describe);
    let mut structured = json!({"operation": name, "result": result});
    if let Some(url) = &url {
        structured["parts"] = parts(url);
    }
    Ok(Output::with_structured(text, structured))
}

#[cfg(test)]
mod tests {
    use crate::registry::tests::{run_invalid, run_ok};
    use serde_json::json;

    #[test]
    fn encodes_component_and_form() {
        let out = run_ok("url", json!({"operation": "encode", "input": "a b&c/d~é"}));
        assert_eq!(out.text, "a%20b%26c%2Fd~%C3%A9");
        let out = run_ok(
            "url",
            json!({"operation": "encode", "input": "a b&c", "form": true}),
        );
        assert_eq!(out.text, "a+b%26c");
    }

    #[test]
    fn decodes() {
        assert_eq!(
            run_ok(
                "url",
                json!({"operation": "decode", "input": "a%20b+c%C3%A9"})
            )
            .text,
            "a b+cé"
        );
        assert_eq!(
            run_ok(
                "url",
                json!({"operation": "decode", "input": "a+b", "form": true})
            )
            .text,
            "a b"
        );
        run_invalid("url", json!({"operation": "decode", "input": "%FF"}));
    }

    #[test]
    fn parses_parts() {
        let out = run_ok(
            "url",
            json!({"operation": "parse", "input": "https://u:p@Example.com:8443/a/b?x=1&y=two%20words#frag"}),
        );
        let p = &out.structured.unwrap_or_default()["parts"];
        assert_eq!(p["host"], "example.com");
        assert_eq!(p["port"], 8443);
        assert_eq!(p["path_segments"], json!(["a", "b"]));
        assert_eq!(p["query_params"], json!([["x", "1"], ["y", "two words"]]));
        assert_eq!(p["fragment"], "frag");
        assert_eq!(p["password"], "p");
        let p = run_ok("url", json!({"operation": "parse", "input": "http://h/"}))
            .structured
            .unwrap_or_default();
        assert_eq!(
            (
                p["parts"]["port"].is_null(),
                p["parts"]["effective_port"].as_u64()
            ),
            (true, Some(80))
        );
    }

    #[test]
    fn resolves_relative_references() {
        let out = run_ok(
            "url",
            json!({"operation": "resolve", "input": "../c?q", "base": "https://h/a/b/index.html"}),
        );
        assert_eq!(
            out.structured.unwrap_or_default()["result"],
            "https://h/a/c?q"
        );
        run_invalid("url", json!({"operation": "resolve", "input": "x"}));
        run_invalid("url", json!({"operation": "parse", "input": "/relative"}));
    }
}
