//! Write toolhost plugins in Rust.
//!
//! A tool is a plain function: a `serde` + `schemars` argument struct in, a
//! [`Result`] out. Its doc comment is the description a model reads, the
//! argument fields' doc comments become the schema's descriptions, and the
//! behaviour hints are attribute flags:
//!
//! ```ignore
//! use toolhost_sdk::{Context, Reply, Result, tool};
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Greet {
//!     /// Who to greet.
//!     name: String,
//! }
//!
//! /// Say hello to someone.
//! #[tool(read_only, idempotent)]
//! fn greet(args: Greet) -> Result<String> {
//!     Ok(format!("Hello, {}!", args.name))
//! }
//!
//! toolhost_sdk::export_plugin!(greet);
//! ```
//!
//! The SDK answers `list-tools`, parses arguments and dispatches `call-tool`,
//! maps [`ToolError`] onto the WIT error cases, and wraps `wasi:http` in a
//! small JSON client ([`http`]) that goes through the host's permission
//! checks and credential injection like any other request.

pub mod context;
pub mod http;
mod schema;
pub mod text;
mod tool;

/// The WIT bindings (`toolhost:plugin`), for what the SDK does not wrap.
pub mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../../wit",
        pub_export_macro: true,
        default_bindings_module: "toolhost_sdk::bindings",
    });
}

pub use context::{Context, LogLevel};
pub use schemars::{self, JsonSchema};
pub use serde::{self, Deserialize, Serialize};
pub use serde_json::{self, Value, json};
pub use tool::{Hints, IntoOutput, Output, Reply, Result, Tool, ToolError, ToolSpec};
pub use toolhost_sdk_macros::tool;

/// Exports the listed tools (each a `#[tool]` function) as the plugin's
/// `tools` interface. Use once, at the crate root.
///
/// It also defines `exported_tool_specs()`, the specs of exactly the tools it
/// exports, so a crate's tests check every exported tool from the same list
/// (a tool added to the export cannot escape them).
#[macro_export]
macro_rules! export_plugin {
    ($($tool:ident),+ $(,)?) => {
        /// The specs of every exported tool, in export order.
        #[allow(dead_code)]
        fn exported_tool_specs() -> ::std::vec::Vec<$crate::ToolSpec> {
            ::std::vec![$(<$tool as $crate::Tool>::spec()),+]
        }

        struct __ToolhostPlugin;

        impl $crate::bindings::exports::toolhost::plugin::tools::Guest for __ToolhostPlugin {
            fn list_tools() -> ::std::vec::Vec<
                $crate::bindings::exports::toolhost::plugin::tools::ToolDefinition,
            > {
                ::std::vec![$($crate::__private::definition(<$tool as $crate::Tool>::spec())),+]
            }

            fn call_tool(
                caller: $crate::bindings::exports::toolhost::plugin::tools::Caller,
                name: ::std::string::String,
                arguments: ::std::string::String,
            ) -> ::core::result::Result<
                $crate::bindings::exports::toolhost::plugin::tools::ToolOutput,
                $crate::bindings::exports::toolhost::plugin::tools::ToolError,
            > {
                let cx = $crate::Context::from_caller(caller);
                let result = match name.as_str() {
                    $(<$tool as $crate::Tool>::NAME => <$tool as $crate::Tool>::call(&cx, &arguments),)+
                    _ => return ::core::result::Result::Err(
                        $crate::bindings::exports::toolhost::plugin::tools::ToolError::UnknownTool(name),
                    ),
                };
                $crate::__private::to_wit(result)
            }
        }

        $crate::bindings::export!(__ToolhostPlugin with_types_in $crate::bindings);
    };
}

/// What the macros expand to; not a stable interface.
#[doc(hidden)]
pub mod __private {
    use crate::bindings::exports::toolhost::plugin::tools as wit;
    use crate::bindings::toolhost::plugin::types::{Annotations, Content};

    pub use crate::schema::input_schema;
    pub use crate::tool::parse_args;

    pub fn definition(spec: crate::ToolSpec) -> wit::ToolDefinition {
        wit::ToolDefinition {
            name: spec.name.to_string(),
            title: spec.title.map(str::to_string),
            description: spec.description.to_string(),
            input_schema: spec.input_schema.to_string(),
            output_schema: spec.output_schema.map(|schema| schema.to_string()),
            annotations: Annotations {
                read_only: spec.hints.read_only,
                destructive: spec.hints.destructive,
                idempotent: spec.hints.idempotent,
                open_world: spec.hints.open_world,
            },
        }
    }

    pub fn to_wit(
        result: Result<crate::Output, crate::ToolError>,
    ) -> Result<wit::ToolOutput, wit::ToolError> {
        match result {
            Ok(output) => Ok(wit::ToolOutput {
                content: vec![Content::Text(output.text)],
                structured_content: output.structured.map(|value| value.to_string()),
                is_error: output.is_error,
            }),
            Err(err) => Err(match err {
                crate::ToolError::InvalidArguments(m) => wit::ToolError::InvalidArguments(m),
                crate::ToolError::Upstream(m) => wit::ToolError::Upstream(m),
                crate::ToolError::PermissionDenied(m) => wit::ToolError::PermissionDenied(m),
                crate::ToolError::Internal(m) => wit::ToolError::Internal(m),
            }),
        }
    }
}
