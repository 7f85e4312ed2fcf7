//! toolhost devtools plugin: wires the WIT `tools` export to the tool registry
//! and converts between the plugin's own types and the WIT ones.
//!
//! Everything here is pure computation: no host configuration, no files, no
//! network. Tool logic lives in `tools/`, one module per tool, so it can be
//! unit-tested on the host target without a component runtime.

mod registry;
mod tool;
mod tools;

wit_bindgen::generate!({
    world: "plugin",
    path: "../../wit",
});

use exports::toolhost::plugin::tools::{Caller, Guest, ToolDefinition, ToolError, ToolOutput};
use toolhost::plugin::types::{Annotations, Content};

struct DevTools;

impl Guest for DevTools {
    fn list_tools() -> Vec<ToolDefinition> {
        registry::all()
            .into_iter()
            .map(|spec| ToolDefinition {
                name: spec.name.to_string(),
                title: Some(spec.title.to_string()),
                description: spec.description.to_string(),
                input_schema: spec.input_schema.to_string(),
                output_schema: spec.output_schema.map(|s| s.to_string()),
                annotations: Annotations {
                    read_only: true,
                    destructive: false,
                    idempotent: spec.idempotent,
                    open_world: false,
                },
            })
            .collect()
    }

    fn call_tool(caller: Caller, name: String, arguments: String) -> Result<ToolOutput, ToolError> {
        let who = tool::Who {
            subject: caller.subject,
            client_id: caller.client_id,
            scopes: caller.scopes,
        };
        match registry::call(&name, &arguments, &who) {
            Ok(out) => Ok(ToolOutput {
                content: vec![Content::Text(out.text)],
                structured_content: out.structured.map(|v| v.to_string()),
                is_error: false,
            }),
            Err(tool::ToolError::InvalidArguments(msg)) => Err(ToolError::InvalidArguments(msg)),
            Err(tool::ToolError::UnknownTool(msg)) => Err(ToolError::UnknownTool(msg)),
            Err(tool::ToolError::Internal(msg)) => Err(ToolError::Internal(msg)),
        }
    }
}

export!(DevTools);
