//! Invalid-name fixture: declares a tool whose name breaks the
//! `^[a-zA-Z0-9_-]{1,64}$` rule, so the host must refuse to load the plugin.

wit_bindgen::generate!({
    world: "plugin",
    path: "../../../wit",
});

use exports::toolhost::plugin::tools::{Caller, Guest, ToolDefinition, ToolError, ToolOutput};
use toolhost::plugin::types::{Annotations, Content};

struct InvalidName;

impl Guest for InvalidName {
    fn list_tools() -> Vec<ToolDefinition> {
        vec![ToolDefinition {
            name: "bad name!".into(),
            title: None,
            description: "Its name has a space and a `!`, which the host must reject.".into(),
            input_schema: r#"{"type":"object","properties":{},"additionalProperties":false}"#
                .into(),
            output_schema: None,
            annotations: Annotations {
                read_only: true,
                destructive: false,
                idempotent: true,
                open_world: false,
            },
        }]
    }

    // Reached only if the host wrongly loaded this plugin.
    fn call_tool(
        _caller: Caller,
        _name: String,
        _arguments: String,
    ) -> Result<ToolOutput, ToolError> {
        Ok(ToolOutput {
            content: vec![Content::Text("invalid-name plugin was loaded".into())],
            structured_content: None,
            is_error: false,
        })
    }
}

export!(InvalidName);
