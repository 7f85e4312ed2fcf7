//! `json_query`: evaluates a JSONPath (RFC 9535) or JSON Pointer (RFC 6901)
//! expression against a JSON document.

use serde::Deserialize;
use serde_json::{Value, json};
use serde_json_path::JsonPath;

use crate::tool::{Output, ToolError, ToolSpec, invalid, parse_args};

/// Rendered matches stop here: `$..*` on a deep document repeats every
/// subtree once per ancestor, so output could dwarf the 1 MiB input.
const MAX_OUTPUT_BYTES: usize = 1024 * 1024;

pub(crate) fn spec() -> ToolSpec {
    ToolSpec {
        name: "json_query",
        title: "Query JSON",
        description: "Evaluate a JSONPath (RFC 9535, e.g. `$.items[?@.price < 10].name`) or JSON \
            Pointer (RFC 6901, e.g. `/items/0/name`) expression against a JSON document and return \
            every matching value with its location. Use it to pull fields out of large JSON \
            instead of reading it all.",
        input_schema: json!({
            "type": "object",
            "properties": {
                "json": {"type": "string", "description": "The JSON document, as text."},
                "query": {"type": "string", "description": "A JSONPath expression starting with `$`, or a JSON Pointer starting with `/` (the empty pointer selects the whole document)."},
                "syntax": {"type": "string", "enum": ["auto", "jsonpath", "pointer"], "default": "auto", "description": "How to read `query`; `auto` picks JSONPath for `$...` and JSON Pointer for `/...` or empty."},
                "max_results": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100, "description": "Return at most this many matches; `count` still reports the total."}
            },
            "required": ["json", "query"],
            "additionalProperties": false
        }),
        output_schema: Some(json!({
            "type": "object",
            "properties": {
                "syntax": {"type": "string", "enum": ["jsonpath", "pointer"]},
                "count": {"type": "integer", "description": "Total number of matches."},
                "truncated": {"type": "boolean", "description": "Whether `matches` holds fewer than `count` items."},
                "matches": {"type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "path": {"type": "string", "description": "Normalized JSONPath, or the JSON Pointer."},
                        "value": {}
                    },
                    "required": ["path", "value"]
                }}
            },
            "required": ["syntax", "count", "truncated", "matches"]
        })),
        idempotent: true,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    json: String,
    query: String,
    #[serde(default)]
    syntax: Syntax,
    #[serde(default = "default_max_results")]
    max_results: usize,
}

fn default_max_results() -> usize {
    100
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Syntax {
    #[default]
    Auto,
    Jsonpath,
    Pointer,
}

pub(crate) fn run(arguments: &str) -> Result<Output, ToolError> {
    let args: Args = parse_args(arguments)?;
    if !(1..=10_000).contains(&args.max_results) {
        return Err(invalid("`max_results` must be between 1 and 10000"));
    }
    let doc: Value = serde_json::from_str(&args.json)
        .map_err(|e| invalid(format!("`json` is not valid JSON: {e}")))?;
    let query = args.query.trim();
    let syntax = match args.syntax {
        Syntax::Auto if query.starts_with('$') => Syntax::Jsonpath,
        Syntax::Auto if query.is_empty() || query.starts_with('/') => Syntax::Pointer,
        Syntax::Auto => {
            return Err(invalid(format!(
                "cannot tell what `{query}` is: start a JSONPath with `$` or a JSON Pointer with `/`"
            )));
        }
        explicit => explicit,
    };

    let found: Vec<(String, &Value)> = match syntax {
        Syntax::Pointer => {
            if !query.is_empty() && !query.starts_with('/') {
                return Err(invalid("a JSON Pointer must be empty or start with `/`"));
            }
            doc.pointer(query)
                .map(|v| (query.to_string(), v))
                .into_iter()
                .collect()
        }
        _ => {
            let path = JsonPath::parse(query)
                .map_err(|e| invalid(format!("`{query}` is not a valid JSONPath: {e}")))?;
            path.query_located(&doc)
                .into_iter()
                .map(|node| (node.location().to_string(), node.node()))
                .collect()
        }
    };

    let count = found.len();
    let mut matches = Vec::new();
    let mut lines = Vec::new();
    let mut size = 0;
    for (path, value) in found.into_iter().take(args.max_results) {
        let rendered =
            serde_json::to_string(value).map_err(|e| ToolError::Internal(e.to_string()))?;
        size += path.len() + rendered.len();
        if size > MAX_OUTPUT_BYTES {
            break;
        }
        lines.push(format!("{path} = {rendered}"));
        matches.push(json!({"path": path, "value": value}));
    }
    let truncated = matches.len() < count;
    let syntax_name = if syntax == Syntax::Pointer {
        "pointer"
    } else {
        "jsonpath"
    };

    let text = if count == 0 {
        format!("No value matches `{query}`.")
    } else {
        let mut text = format!("{count} match{}", if count == 1 { "" } else { "es" });
        if truncated {
            text.push_str(&format!(" (showing the first {})", matches.len()));
        }
        text.push_str(":\n");
        text.push_str(&lines.join("\n"));
        text
    };
    Ok(Output::with_structured(
        text,
        json!({"syntax": syntax_name, "count": count, "truncated": truncated, "matches": matches}),
    ))
}

#[cfg(test)]
mod tests {
    use crate::registry::tests::{run_invalid, run_ok};
    use serde_json::json;

    const DOC: &str = r#"{"store":{"book":[{"title":"A","price":8},{"title":"B","price":12}]}}"#;

    #[test]
    fn jsonpath_filter_returns_values_and_paths() {
        let out = run_ok(
            "json_query",
            json!({"json": DOC, "query": "$.store.book[?@.price < 10].title"}),
        );
        let s = out.structured.unwrap_or_default();
        assert_eq!(s["count"], 1);
        assert_eq!(s["matches"][0]["value"], "A");
        assert_eq!(s["matches"][0]["path"], "$['store']['book'][0]['title']");
        assert!(out.text.contains("\"A\""));
    }

    #[test]
    fn pointer_selects_one_value() {
        let out = run_ok(
            "json_query",
            json!({"json": DOC, "query": "/store/book/1/price"}),
        );
        assert_eq!(
            out.structured.unwrap_or_default()["matches"][0]["value"],
            12
        );
    }

    #[test]
    fn empty_pointer_is_whole_document_and_missing_is_zero_matches() {
        let out = run_ok("json_query", json!({"json": "[1]", "query": ""}));
        assert_eq!(
            out.structured.unwrap_or_default()["matches"][0]["value"],
            json!([1])
        );
        let out = run_ok("json_query", json!({"json": "[1]", "query": "/5"}));
        assert_eq!(out.structured.unwrap_or_default()["count"], 0);
        assert!(out.text.starts_with("No value"));
    }

    #[test]
    fn max_results_truncates() {
        let out = run_ok(
            "json_query",
            json!({"json": "[1,2,3]", "query": "$[*]", "max_results": 2}),
        );
        let s = out.structured.unwrap_or_default();
        assert_eq!(
            (s["count"].as_u64(), s["truncated"].as_bool()),
            (Some(3), Some(true))
        );
    }

    #[test]
    fn bad_input_is_invalid_arguments() {
        assert!(
            run_invalid("json_query", json!({"json": "{", "query": "$"}))
                .contains("not valid JSON")
        );
        assert!(
            run_invalid("json_query", json!({"json": "{}", "query": "$[?"})).contains("JSONPath")
        );
        assert!(
            run_invalid("json_query", json!({"json": "{}", "query": "store"}))
                .contains("cannot tell")
        );
        run_invalid(
            "json_query",
            json!({"json": "{}", "query": "a", "syntax": "pointer"}),
        );
        run_invalid(
            "json_query",
            json!({"json": "{}", "query": "$", "max_results": 0}),
        );
    }
}
