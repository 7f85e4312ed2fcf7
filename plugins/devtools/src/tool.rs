//! The plugin-independent shape of a tool: its definition, its arguments and
//! its result, so tool modules and their tests never touch the WIT bindings.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Arguments larger than this are refused before any parsing; every tool here
/// works on text a person would paste, and this keeps a call's memory bounded.
pub(crate) const MAX_INPUT_BYTES: usize = 1024 * 1024;

/// Everything `tools/list` shows about one tool; `registry::runner` maps its
/// name to the function that runs it.
pub(crate) struct ToolSpec {
    pub(crate) name: &'static str,
    pub(crate) title: &'static str,
    pub(crate) description: &'static str,
    pub(crate) input_schema: Value,
    pub(crate) output_schema: Option<Value>,
    /// Only `uuid` and `time_convert` (because of "now") give different answers
    /// to the same arguments; every tool here is read-only and closed-world.
    pub(crate) idempotent: bool,
}

/// The caller as the host verified it (from the bearer token); the token
/// itself never reaches a plugin.
#[derive(Debug, Default, Clone)]
pub(crate) struct Who {
    pub(crate) subject: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) scopes: Vec<String>,
}

/// A successful result: text for the model, and the same facts as JSON when
/// the tool declares an output schema.
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) text: String,
    pub(crate) structured: Option<Value>,
}

impl Output {
    pub(crate) fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            structured: None,
        }
    }

    pub(crate) fn with_structured(text: impl Into<String>, structured: Value) -> Self {
        Self {
            text: text.into(),
            structured: Some(structured),
        }
    }
}

/// The failures these tools can have; both map onto WIT `tool-error` cases.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToolError {
    InvalidArguments(String),
    UnknownTool(String),
    Internal(String),
}

pub(crate) fn invalid(message: impl Into<String>) -> ToolError {
    ToolError::InvalidArguments(message.into())
}

/// Parses a tool's arguments. The host has already validated them against the
/// input schema, but this is the plugin's own line of defence: a host bug or a
/// direct caller must still get a clear message rather than a trap.
pub(crate) fn parse_args<T: DeserializeOwned>(arguments: &str) -> Result<T, ToolError> {
    if arguments.len() > MAX_INPUT_BYTES {
        return Err(invalid(format!(
            "the arguments are {} bytes; this tool accepts at most 1 MiB",
            arguments.len()
        )));
    }
    // serde would also read a struct from a JSON array; the contract says object.
    if !arguments.trim_start().starts_with('{') {
        return Err(invalid("the arguments must be a JSON object"));
    }
    serde_json::from_str(arguments).map_err(|e| invalid(format!("invalid arguments: {e}")))
}

/// Renders JSON for the model; serialising a `Value` cannot fail, but a
/// failure would be our bug, not the caller's.
pub(crate) fn pretty(value: &Value) -> Result<String, ToolError> {
    serde_json::to_string_pretty(value).map_err(|e| ToolError::Internal(e.to_string()))
}
