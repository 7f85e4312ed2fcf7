//! What a tool is to the SDK: its spec, its call, and the types a tool
//! function returns.

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Context;

/// Arguments larger than this are refused before parsing.
const MAX_ARGUMENTS_BYTES: usize = 4 * 1024 * 1024;

/// A tool, as `#[tool]` generates it from a function.
pub trait Tool {
    const NAME: &'static str;
    fn spec() -> ToolSpec;
    fn call(cx: &Context, arguments: &str) -> std::result::Result<Output, ToolError>;
}

/// Everything `tools/list` shows about a tool.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    pub name: &'static str,
    pub title: Option<&'static str>,
    pub description: &'static str,
    pub input_schema: Value,
    pub output_schema: Option<Value>,
    pub hints: Hints,
}

/// Behaviour hints; `read_only` also decides the scope a caller needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hints {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
}

/// Why a call failed, as the model will read it: say what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolError {
    /// The arguments are well-formed but unusable.
    InvalidArguments(String),
    /// The upstream service failed or refused.
    Upstream(String),
    /// The caller may not do this.
    PermissionDenied(String),
    /// A bug or unexpected state in the plugin.
    Internal(String),
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToolError::InvalidArguments(m) => write!(f, "invalid arguments: {m}"),
            ToolError::Upstream(m) => write!(f, "upstream error: {m}"),
            ToolError::PermissionDenied(m) => write!(f, "permission denied: {m}"),
            ToolError::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for ToolError {}

/// A tool function's result.
pub type Result<T, E = ToolError> = std::result::Result<T, E>;

/// A result with structured content: `text` for the model to read, `data`
/// (a struct, serialized as a JSON object) for programs, described by the
/// tool's output schema.
#[derive(Debug, Clone)]
pub struct Reply<T> {
    pub text: String,
    pub data: T,
}

impl<T> Reply<T> {
    pub fn new(text: impl Into<String>, data: T) -> Reply<T> {
        Reply {
            text: text.into(),
            data,
        }
    }
}

/// A finished call, before it becomes the WIT `tool-output`.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub text: String,
    pub structured: Option<Value>,
    /// The tool ran but reports failure (MCP `isError`).
    pub is_error: bool,
}

/// What a tool function may return in `Ok`.
pub trait IntoOutput {
    fn output_schema() -> Option<Value>;
    fn into_output(self) -> Result<Output>;
}

impl IntoOutput for String {
    fn output_schema() -> Option<Value> {
        None
    }

    fn into_output(self) -> Result<Output> {
        Ok(Output {
            text: self,
            structured: None,
            is_error: false,
        })
    }
}

impl<T: Serialize + JsonSchema> IntoOutput for Reply<T> {
    fn output_schema() -> Option<Value> {
        Some(crate::schema::output_schema::<T>())
    }

    fn into_output(self) -> Result<Output> {
        let data = serde_json::to_value(&self.data)
            .map_err(|e| ToolError::Internal(format!("cannot serialize the result: {e}")))?;
        if !data.is_object() {
            return Err(ToolError::Internal(
                "structured content must be a JSON object; reply with a struct".into(),
            ));
        }
        Ok(Output {
            text: self.text,
            structured: Some(data),
            is_error: false,
        })
    }
}

/// Parses a call's arguments. The host has validated them against the
/// input schema already; this is the plugin's own line of defence, so a
/// direct caller still gets a message rather than a trap.
pub fn parse_args<T: DeserializeOwned>(arguments: &str) -> Result<T> {
    if arguments.len() > MAX_ARGUMENTS_BYTES {
        return Err(ToolError::InvalidArguments(format!(
            "the arguments are {} bytes; at most {MAX_ARGUMENTS_BYTES} are accepted",
            arguments.len()
        )));
    }
    let arguments = if arguments.trim().is_empty() {
        "{}"
    } else {
        arguments
    };
    serde_json::from_str(arguments).map_err(|e| ToolError::InvalidArguments(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, JsonSchema)]
    struct Data {
        n: u32,
    }

    #[test]
    fn replies_carry_an_object_and_its_schema() {
        let output = Reply::new("one", Data { n: 1 })
            .into_output()
            .expect("output");
        assert_eq!(output.structured, Some(serde_json::json!({"n": 1})));
        let schema = <Reply<Data> as IntoOutput>::output_schema().expect("schema");
        assert_eq!(schema["type"], "object");
        assert!(<String as IntoOutput>::output_schema().is_none());
        assert!(Reply::new("x", 5).into_output().is_err());
    }

    #[test]
    fn arguments_parse_or_say_why() {
        #[derive(serde::Deserialize, Debug)]
        struct Args {
            #[allow(dead_code)]
            name: String,
        }
        assert!(parse_args::<Args>(r#"{"name": "x"}"#).is_ok());
        let Err(ToolError::InvalidArguments(message)) = parse_args::<Args>("{}") else {
            panic!("a missing field is invalid");
        };
        assert!(message.contains("name"), "{message}");
    }
}
