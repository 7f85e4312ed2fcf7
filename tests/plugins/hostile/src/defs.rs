//! The hostile fixture's tool definitions, as `tools/list` shows them.

/// A tool definition in plain statics, turned into the WIT record in lib.rs.
pub(crate) struct Def {
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
    pub(crate) input_schema: &'static str,
    pub(crate) output_schema: Option<&'static str>,
    pub(crate) read_only: bool,
}

const NO_ARGS: &str = r#"{"type":"object","properties":{},"additionalProperties":false}"#;

pub(crate) const DEFS: &[Def] = &[
    Def {
        name: "echo",
        description: "Returns `text` as text content and as structured content {\"text\": ...}.",
        input_schema: r#"{"type":"object","properties":{"text":{"type":"string","description":"Text to return."}},"required":["text"],"additionalProperties":false}"#,
        output_schema: Some(
            r#"{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}"#,
        ),
        read_only: true,
    },
    Def {
        name: "spin",
        description: "Loops forever without calling the host; the host must stop it (fuel or epoch deadline).",
        input_schema: NO_ARGS,
        output_schema: None,
        read_only: true,
    },
    Def {
        name: "hog",
        description: "Allocates and touches 1 MiB chunks forever; the host's memory limit must stop it.",
        input_schema: NO_ARGS,
        output_schema: None,
        read_only: true,
    },
    Def {
        name: "panic",
        description: "Panics with the message `hostile plugin panicked on purpose` (a trap).",
        input_schema: NO_ARGS,
        output_schema: None,
        read_only: true,
    },
    Def {
        name: "recurse",
        description: "Recurses without bound until the stack overflows (a trap).",
        input_schema: NO_ARGS,
        output_schema: None,
        read_only: true,
    },
    Def {
        name: "huge_output",
        description: "Returns `mib` MiB of text (lines of `x`), default 100.",
        input_schema: r#"{"type":"object","properties":{"mib":{"type":"integer","minimum":0,"maximum":1024,"default":100,"description":"Size of the returned text in MiB."}},"additionalProperties":false}"#,
        output_schema: None,
        read_only: true,
    },
    Def {
        name: "sleep",
        description: "Waits `ms` milliseconds, then returns `slept`. `mode` `block` waits in the host (wasi monotonic clock); `busy` spins reading the clock.",
        input_schema: r#"{"type":"object","properties":{"ms":{"type":"integer","minimum":0,"maximum":3600000,"description":"How long to wait, in milliseconds."},"mode":{"type":"string","enum":["block","busy"],"default":"block","description":"`block` sleeps via the host clock; `busy` burns CPU until the time has passed."}},"required":["ms"],"additionalProperties":false}"#,
        output_schema: None,
        read_only: true,
    },
    Def {
        name: "counter",
        description: "Increments a global counter and returns its new value; with a fresh instance per call it is always 1.",
        input_schema: NO_ARGS,
        output_schema: None,
        read_only: true,
    },
    Def {
        name: "progress",
        description: "Reports progress `steps` times (progress 1..=steps, total steps, message `step i of n`), then returns `done`.",
        input_schema: r#"{"type":"object","properties":{"steps":{"type":"integer","minimum":0,"maximum":1000,"default":3,"description":"How many progress notifications to send."}},"additionalProperties":false}"#,
        output_schema: None,
        read_only: true,
    },
    Def {
        name: "config",
        description: "Returns the host config value for `key`, or `unset`.",
        input_schema: r#"{"type":"object","properties":{"key":{"type":"string","description":"The config key to read."}},"required":["key"],"additionalProperties":false}"#,
        output_schema: None,
        read_only: true,
    },
    Def {
        name: "log",
        description: "Logs `hostile log at <level>` at each level trace..error, then returns `logged`.",
        input_schema: NO_ARGS,
        output_schema: None,
        read_only: true,
    },
    Def {
        name: "log_flood",
        description: "Calls host.log at error level `lines` times with a line of `bytes` bytes, then returns `flooded <lines>`.",
        input_schema: r#"{"type":"object","properties":{"lines":{"type":"integer","minimum":0,"maximum":10000000,"default":100000,"description":"How many lines to log."},"bytes":{"type":"integer","minimum":1,"maximum":65536,"default":8192,"description":"Length of each line in bytes."}},"additionalProperties":false}"#,
        output_schema: None,
        read_only: true,
    },
    Def {
        name: "log_forge",
        description: "Logs `message` once at error level (default: a newline followed by a fake host log line), then returns `forged`.",
        input_schema: r#"{"type":"object","properties":{"message":{"type":"string","description":"The text to log."}},"additionalProperties":false}"#,
        output_schema: None,
        read_only: true,
    },
    Def {
        name: "error",
        description: "Fails with tool-error::upstream(\"upstream exploded\").",
        input_schema: NO_ARGS,
        output_schema: None,
        read_only: true,
    },
    Def {
        name: "is_error",
        description: "Succeeds with is-error: true and the text `this is a tool-level error`.",
        input_schema: NO_ARGS,
        output_schema: None,
        read_only: true,
    },
    Def {
        name: "caller",
        description: "Returns the caller record as JSON text with keys subject, client-id, scopes, request-id and client-supports {elicitation, sampling, roots}.",
        input_schema: NO_ARGS,
        output_schema: None,
        read_only: true,
    },
    Def {
        name: "read_file",
        description: "Tries to read `path` with std::fs; returns the contents, or the I/O error text.",
        input_schema: r#"{"type":"object","properties":{"path":{"type":"string","description":"Path to read inside the plugin's sandbox."}},"required":["path"],"additionalProperties":false}"#,
        output_schema: Some(
            r#"{"type":"object","properties":{"ok":{"type":"boolean"},"contents":{"type":"string"},"error":{"type":"string"}},"required":["ok"]}"#,
        ),
        read_only: true,
    },
    Def {
        name: "env",
        description: "Returns the plugin's environment variables as a JSON object (text).",
        input_schema: NO_ARGS,
        output_schema: None,
        read_only: true,
    },
    Def {
        name: "print",
        description: "Writes a line to stdout and one to stderr, then returns `printed` (or `print failed: ...` if a write was refused).",
        input_schema: NO_ARGS,
        output_schema: None,
        read_only: true,
    },
    Def {
        name: "write",
        description: "Does nothing and returns `written`, but is annotated not read-only and destructive, so it needs the write scope.",
        input_schema: NO_ARGS,
        output_schema: None,
        read_only: false,
    },
];
