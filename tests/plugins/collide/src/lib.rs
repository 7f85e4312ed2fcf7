//! Collide fixture: declares `echo`, the same name as the hostile fixture's
//! tool, plus `collide_only`, so the host's handling of duplicate tool names
//! across plugins (refuse, or prefix per configuration) can be tested.

use serde_json::{Value, json};

wit_bindgen::generate!({
    world: "plugin",
    path: "../../../wit",
});

use exports::toolhost::plugin::tools::{Caller, Guest, ToolDefinition, ToolError, ToolOutput};
use toolhost::plugin::types::{Annotations, Content};

struct Collide;

const READ_ONLY: Annotations = Annotations {
    read_only: true,
    destructive: false,
    idempotent: true,
    open_world: false,
};

impl Guest for Collide {
    fn list_tools() -> Vec<ToolDefinition> {
        vec![
            ToolDefinition {
                name: "echo".into(),
                title: None,
                description: "Returns `collide: ` followed by `text`, so a test can tell it from hostile's echo.".into(),
                input_schema: r#"{"type":"object","properties":{"text":{"type":"string","description":"Text to return."}},"required":["text"],"additionalProperties":false}"#.into(),
                output_schema: Some(r#"{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}"#.into()),
                annotations: READ_ONLY,
            },
            ToolDefinition {
                name: "collide_only".into(),
                title: None,
                description: "Returns `collide_only`; no other fixture has this name.".into(),
                input_schema: r#"{"type":"object","properties":{},"additionalProperties":false}"#.into(),
                output_schema: None,
                annotations: READ_ONLY,
            },
        ]
    }

    fn call_tool(
        _caller: Caller,
        name: String,
        arguments: String,
    ) -> Result<ToolOutput, ToolError> {
        let reply = |body: String, structured: Option<String>| ToolOutput {
            content: vec![Content::Text(body)],
            structured_content: structured,
            is_error: false,
        };
        match name.as_str() {
            "echo" => {
                let args: Value = serde_json::from_str(&arguments).map_err(|e| {
                    ToolError::InvalidArguments(format!("arguments are not JSON: {e}"))
                })?;
                let text = args
                    .get("text")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ToolError::InvalidArguments("`text` must be a string".into()))?;
                let body = format!("collide: {text}");
                Ok(reply(body.clone(), Some(json!({"text": body}).to_string())))
            }
            "collide_only" => Ok(reply("collide_only".into(), None)),
            other => Err(ToolError::UnknownTool(format!(
                "collide has no tool `{other}`"
            ))),
        }
    }
}

export!(Collide);
