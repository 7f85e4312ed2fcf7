//! `json_format`: validates JSON and re-indents, minifies or key-sorts it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::tool::{Output, ToolError, ToolSpec, invalid, parse_args};

pub(crate) fn spec() -> ToolSpec {
    ToolSpec {
        name: "json_format",
        title: "Format JSON",
        description: "Check that text is valid JSON (reporting the line and column of the first \
            error) and return it pretty-printed with the chosen indent, minified (indent 0), and \
            optionally with object keys sorted so two documents can be compared.",
        input_schema: json!({
            "type": "object",
            "properties": {
                "json": {"type": "string", "description": "The JSON text."},
                "indent": {"type": "integer", "minimum": 0, "maximum": 8, "default": 2, "description": "Spaces per indent level; 0 minifies onto one line."},
                "sort_keys": {"type": "boolean", "default": false, "description": "Sort object keys alphabetically at every level; otherwise the input order is kept."}
            },
            "required": ["json"],
            "additionalProperties": false
        }),
        output_schema: None,
        idempotent: true,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    json: String,
    #[serde(default = "default_indent")]
    indent: usize,
    #[serde(default)]
    sort_keys: bool,
}

fn default_indent() -> usize {
    2
}

pub(crate) fn run(arguments: &str) -> Result<Output, ToolError> {
    let args: Args = parse_args(arguments)?;
    if args.indent > 8 {
        return Err(invalid("`indent` must be between 0 and 8"));
    }
    let mut value: Value = serde_json::from_str(&args.json)
        .map_err(|e| invalid(format!("`json` is not valid JSON: {e}")))?;
    if args.sort_keys {
        sort_keys(&mut value);
    }
    Ok(Output::text(format_json(&value, args.indent)?))
}

fn sort_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            *map = entries
                .into_iter()
                .map(|(k, mut v)| {
                    sort_keys(&mut v);
                    (k, v)
                })
                .collect::<Map<_, _>>();
        }
        Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

fn format_json(value: &Value, indent: usize) -> Result<String, ToolError> {
    let internal = |e: serde_json::Error| ToolError::Internal(e.to_string());
    if indent == 0 {
        return serde_json::to_string(value).map_err(internal);
    }
    let pad = vec![b' '; indent];
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(&pad);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut ser).map_err(internal)?;
    String::from_utf8(out).map_err(|e| ToolError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use crate::registry::tests::{run_invalid, run_ok};
    use serde_json::json;

    #[test]
    fn pretty_prints_in_input_order() {
        let out = run_ok("json_format", json!({"json": r#"{"b":1,"a":[true]}"#}));
        assert_eq!(out.text, "{\n  \"b\": 1,\n  \"a\": [\n    true\n  ]\n}");
    }

    #[test]
    fn minifies_and_sorts() {
        let out = run_ok(
            "json_format",
            json!({"json": "{ \"b\": {\"d\":1,\"c\":2}, \"a\": 0 }", "indent": 0, "sort_keys": true}),
        );
        assert_eq!(out.text, r#"{"a":0,"b":{"c":2,"d":1}}"#);
    }

    #[test]
    fn reports_position_of_error() {
        let msg = run_invalid("json_format", json!({"json": "{\n  \"a\": ,\n}"}));
        assert!(msg.contains("line 2"), "{msg}");
    }
}
