//! Many-tools fixture: `list-tools` answers 10,000 valid tools. The host caps
//! a plugin at 1,000, so it must refuse this one with a clear reason (and
//! without spending its memory on 10,000 compiled schemas first), while the
//! other plugins keep serving.

wit_bindgen::generate!({
    world: "plugin",
    path: "../../../wit",
});

use exports::toolhost::plugin::tools::{Caller, Guest, ToolDefinition, ToolError, ToolOutput};
use toolhost::plugin::types::{Annotations, Content};

/// How many tools this plugin declares.
const TOOLS: usize = 10_000;

struct ManyTools;

impl Guest for ManyTools {
    fn list_tools() -> Vec<ToolDefinition> {
        (0..TOOLS)
            .map(|i| ToolDefinition {
                name: format!("tool_{i:05}"),
                title: None,
                description: format!("Returns its own number, {i}."),
                input_schema: r#"{"type":"object","properties":{},"additionalProperties":false}"#
                    .into(),
                output_schema: None,
                annotations: Annotations {
                    read_only: true,
                    destructive: false,
                    idempotent: true,
                    open_world: false,
                },
            })
            .collect()
    }

    fn call_tool(
        _caller: Caller,
        name: String,
        _arguments: String,
    ) -> Result<ToolOutput, ToolError> {
        match name.strip_prefix("tool_") {
            Some(number) => Ok(ToolOutput {
                content: vec![Content::Text(number.trim_start_matches('0').to_string())],
                structured_content: None,
                is_error: false,
            }),
            None => Err(ToolError::UnknownTool(name)),
        }
    }
}

export!(ManyTools);
