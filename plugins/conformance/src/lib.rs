//! The fixture tools of the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`), built against the toolhost WIT world
//! like any other plugin. Names, arguments and outputs follow the suite's
//! scenario descriptions exactly; nothing here is toolhost-specific.

mod fixtures;

wit_bindgen::generate!({
    world: "plugin",
    path: "../../wit",
});

use exports::toolhost::plugin::tools::{Caller, Guest, ToolDefinition, ToolError, ToolOutput};

struct Conformance;

impl Guest for Conformance {
    fn list_tools() -> Vec<ToolDefinition> {
        fixtures::definitions()
    }

    fn call_tool(caller: Caller, name: String, arguments: String) -> Result<ToolOutput, ToolError> {
        let arguments: serde_json::Value = serde_json::from_str(&arguments)
            .map_err(|e| ToolError::InvalidArguments(format!("arguments are not JSON: {e}")))?;
        fixtures::call(&caller, &name, &arguments)
    }
}

export!(Conformance);
