//! The tools, one module per area of the API, and the pieces of their
//! answers they share. Each module keeps its I/O in the `#[tool]` function
//! and builds requests and formats answers in plain functions the tests
//! call with canned responses.
//!
//! A tool's text goes into the model's context and its structured content
//! to programs; both come from the same bounded values, so the two never
//! disagree and every answer stays far below the host's output limit.

pub mod comments;
pub mod issues;
pub mod meta;
pub mod projects;
pub mod search;
pub mod transitions;
pub mod users;
pub mod worklog;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::User;
#[cfg(test)]
use toolhost_sdk::Tool;

/// An issue description in `jira_get_issue`.
pub const DESCRIPTION_LIMIT: usize = 20_000;
/// One comment in a page of comments (at most 50 a page).
pub const COMMENT_LIMIT: usize = 3_000;
/// A value on one line (a summary, a custom field in a list).
pub const LINE_LIMIT: usize = 200;

pub use toolhost_sdk::text::{bounded, one_line, truncate};

/// `2021-01-17 12:34` from Jira's `2021-01-17T12:34:00.000+0000`; anything
/// else as it is.
pub fn when(timestamp: &str) -> String {
    match (timestamp.get(..10), timestamp.get(11..16)) {
        (Some(date), Some(time)) if timestamp.as_bytes().get(10) == Some(&b'T') => {
            format!("{date} {time}")
        }
        _ => timestamp.to_string(),
    }
}

/// A timestamp field, which a mock (or a custom field) may send as a
/// number.
pub fn timestamp(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `1 issue`, `2 issues`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A field value for a line of text: names for objects and lists, Markdown
/// for rich text, compact JSON otherwise.
pub fn field_text(value: &Value) -> String {
    let text = match value {
        Value::Object(map) if map.get("type").and_then(Value::as_str) == Some("doc") => {
            crate::model::rich_text(value)
        }
        Value::Array(items) => items
            .iter()
            .map(|item| crate::model::value_name(item).unwrap_or_else(|| item.to_string()))
            .collect::<Vec<_>>()
            .join(", "),
        other => crate::model::value_name(other).unwrap_or_else(|| other.to_string()),
    };
    one_line(&text, LINE_LIMIT)
}

/// Raw JSON values for structured output, each at most `each` bytes and
/// all together at most `total`: `fields: ["*all"]` or a long changelog must
/// not push an answer past the host's output limit. A note stands in for
/// what does not fit.
pub fn raw_bounded<'a>(
    values: impl IntoIterator<Item = (&'a str, &'a Value)>,
    each: usize,
    total: usize,
) -> Map<String, Value> {
    let mut used = 0;
    values
        .into_iter()
        .filter(|(_, value)| !value.is_null())
        .map(|(name, value)| {
            let size = value.to_string().len();
            let value = if size <= each && used + size <= total {
                used += size;
                value.clone()
            } else {
                Value::String(format!(
                    "[left out: {size} bytes of JSON; ask for this field alone or read it in Jira]"
                ))
            };
            (name.to_string(), value)
        })
        .collect()
}

/// Markdown from an argument as the ADF document Jira v3 wants for rich
/// text (descriptions, comments, worklog comments).
pub fn to_adf(markdown: &str) -> Value {
    toolhost_adf::markdown_to_adf(markdown)
}

/// A person an issue names (assignee, reporter, comment author).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Person {
    pub display_name: String,
    /// The id to assign or mention (`[~accountid:ID]`) them with.
    pub account_id: Option<String>,
}

impl Person {
    pub fn from_user(user: &User) -> Person {
        Person {
            display_name: user.label(),
            account_id: user.account_id.clone(),
        }
    }
}

/// Checks `data` against the tool's output schema the way the host will:
/// every required property present, types as declared, nested objects and
/// arrays included. Enough of JSON Schema for what schemars generates.
#[cfg(test)]
pub fn assert_fits<T: Tool>(data: &impl Serialize) {
    let schema = T::spec()
        .output_schema
        .expect("the tool declares an output schema");
    let data = serde_json::to_value(data).expect("serializes");
    fits(&schema, &schema, &data, T::NAME);
}

#[cfg(test)]
fn fits(root: &Value, schema: &Value, data: &Value, path: &str) {
    if let Some(name) = schema.get("$ref").and_then(Value::as_str) {
        let name = name.trim_start_matches("#/$defs/");
        return fits(root, &root["$defs"][name], data, path);
    }
    if let Some(variants) = schema.get("anyOf").and_then(Value::as_array) {
        let variant = variants
            .iter()
            .find(|v| (v["type"] == "null") == data.is_null())
            .unwrap_or_else(|| panic!("{path}: {data} fits no variant"));
        return fits(root, variant, data, path);
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return,
    };
    let actual = match data {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    assert!(
        types.contains(&actual) || (actual == "integer" && types.contains(&"number")),
        "{path}: {actual} is not {types:?}"
    );
    if let (Some(required), Some(object)) = (schema["required"].as_array(), data.as_object()) {
        for name in required.iter().filter_map(Value::as_str) {
            assert!(
                object.contains_key(name),
                "{path}.{name} is required but missing"
            );
        }
    }
    if let (Some(properties), Some(object)) = (schema["properties"].as_object(), data.as_object()) {
        for (name, value) in object {
            let property = properties
                .get(name)
                .unwrap_or_else(|| panic!("{path}.{name} is not in the schema"));
            fits(root, property, value, &format!("{path}.{name}"));
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), data.as_array()) {
        for (i, item) in array.iter().enumerate() {
            fits(root, items, item, &format!("{path}[{i}]"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn texts_are_bounded() {
        assert_eq!(truncate("héllo", 2), ("h".to_string(), true));
        assert_eq!(one_line("a\n  b", 10), "a b");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert!(bounded(&"x".repeat(30), 10).ends_with("[truncated: 10 of 30 bytes shown]"));
        assert_eq!(when("2021-01-17T12:34:00.000+0000"), "2021-01-17 12:34");
        assert_eq!(when("1"), "1");
        assert_eq!(timestamp(Some(&json!(1))).as_deref(), Some("1"));
        assert_eq!(count(1, "issue", "issues"), "1 issue");
        assert_eq!(count(0, "issue", "issues"), "0 issues");
    }

    #[test]
    fn field_values_read_as_text() {
        assert_eq!(field_text(&json!({"value": "red", "id": "1"})), "red");
        assert_eq!(field_text(&json!([{"name": "v1"}, "x"])), "v1, x");
        assert_eq!(field_text(&json!(3.5)), "3.5");
        assert_eq!(field_text(&json!({"a": 1})), "{\"a\":1}");
        let (small, big, null) = (json!({"a": 1}), json!("x".repeat(30)), Value::Null);
        let raw = raw_bounded(
            [("a", &small), ("b", &big), ("c", &null), ("d", &small)],
            20,
            50,
        );
        assert_eq!(raw["a"], small);
        assert_eq!(
            raw["b"],
            "[left out: 32 bytes of JSON; ask for this field alone or read it in Jira]"
        );
        assert!(!raw.contains_key("c"));
        assert_eq!(raw["d"], small);
        let raw = raw_bounded([("a", &small), ("d", &small)], 20, 10);
        assert_eq!(raw["a"], small);
        assert!(raw["d"].is_string());
    }
}
