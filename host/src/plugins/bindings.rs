//! The only `bindgen!` in the host: Rust types and traits for the
//! `toolhost:plugin` world in `wit/`.
//!
//! Exports are async so a call runs as a future that epoch deadlines can pause
//! and a dropped request can cancel; the `host` imports are plain functions
//! because none of them waits on anything.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    imports: {
        // Waits on the client (session era) or unwinds the call to ask it
        // (stateless era), so it is both async and allowed to trap.
        "toolhost:plugin/host.request-input": async | trappable,
        default: tracing,
    },
    exports: { default: async },
});

pub(crate) use self::exports::toolhost::plugin::tools::{
    Caller, ToolDefinition, ToolError, ToolOutput,
};
pub(crate) use self::toolhost::plugin::host::LogLevel;
pub use self::toolhost::plugin::types::{
    Annotations, Blob, ClientSupport, Content, ElicitationRequest, EmbeddedResource, InputError,
    InputKind, InputRequest, ResourceContents, ResourceLink,
};
