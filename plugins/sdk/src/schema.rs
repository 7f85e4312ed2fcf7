//! JSON Schemas from Rust types (schemars, JSON Schema 2020-12, MCP's
//! default dialect). Doc comments on fields become `description`s, which
//! is what a model reads to fill them in.

use schemars::JsonSchema;
use serde_json::Value;

/// The input schema of an argument struct: always `"type": "object"`, as
/// MCP requires, even for a tool without arguments.
pub fn input_schema<T: JsonSchema>() -> Value {
    let mut schema = tidy(schemars::schema_for!(T).to_value());
    if schema.get("type").is_none_or(|t| t != "object") {
        schema = serde_json::json!({"type": "object", "properties": {}});
    }
    schema
}

/// The output schema of a reply's data.
pub(crate) fn output_schema<T: JsonSchema>() -> Value {
    tidy(schemars::schema_for!(T).to_value())
}

/// Drops the Rust type name schemars puts in `title`: the tool has its own.
fn tidy(mut schema: Value) -> Value {
    if let Some(map) = schema.as_object_mut() {
        map.remove("title");
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Search arguments.
    #[derive(JsonSchema, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Search {
        /// What to look for.
        query: String,
        /// Results per page (1–100).
        #[schemars(range(min = 1, max = 100))]
        per_page: Option<u32>,
    }

    #[test]
    fn field_docs_become_descriptions() {
        let schema = input_schema::<Search>();
        assert_eq!(schema["type"], "object");
        assert_eq!(
            schema["properties"]["query"]["description"],
            "What to look for."
        );
        assert_eq!(schema["properties"]["per_page"]["maximum"], 100);
        assert_eq!(schema["required"], serde_json::json!(["query"]));
        assert_eq!(schema["additionalProperties"], false);
        assert!(schema.get("title").is_none());
    }

    #[test]
    fn no_arguments_is_an_empty_object() {
        #[derive(JsonSchema)]
        struct None {}
        assert_eq!(input_schema::<None>()["type"], "object");
        assert_eq!(input_schema::<()>()["type"], "object");
    }
}
