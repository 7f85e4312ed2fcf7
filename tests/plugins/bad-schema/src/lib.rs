//! Bad-schema fixture: declares a tool whose input schema is not valid JSON,
//! so the host must refuse to load the plugin.

wit_bindgen::generate!({
    world: "plugin",
    path: "../../../wit",
});

use exports::toolhost::plugin::tools::{Caller, Guest, ToolDefinition, ToolError, ToolOutput};
use toolhost::plugin::types::{Annotations, Content};

struct BadSchema;

impl Guest for BadSchema {
    fn list_tools() -> Vec<ToolDefinition> {
        vec![ToolDefinition {
            name: "broken".into(),
            title: None,
            description: "Its input schema is truncated JSON, which the host must reject.".into(),
            input_schema: r#"{"type":"#.into(),
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
            content: vec![Content::Text("bad-schema plugin was loaded".into())],
            structured_content: None,
            is_error: false,
        })
    }
}

export!(BadSchema);
