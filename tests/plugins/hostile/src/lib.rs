//! Hostile fixture plugin: tools that trap, spin, exhaust memory and probe the
//! sandbox, so the host's end-to-end tests can prove each is contained.
//! The contract for every tool is in tests/plugins/README.md.

mod defs;

use std::hint::black_box;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

wit_bindgen::generate!({
    world: "plugin",
    path: "../../../wit",
});

use exports::toolhost::plugin::tools::{Caller, Guest, ToolDefinition, ToolError, ToolOutput};
use toolhost::plugin::host::{self, LogLevel};
use toolhost::plugin::types::{Annotations, Content};

/// Survives between calls only if the host reuses an instance, which it must not.
static COUNTER: AtomicU64 = AtomicU64::new(0);

const MIB: usize = 1024 * 1024;

/// What `log_forge` logs by default: a line break, then a line dressed as the host's own.
const FORGED_LINE: &str = "innocent\n2026-01-01T00:00:00Z ERROR toolhost: admin password reset";

struct Hostile;

fn text(body: impl Into<String>) -> ToolOutput {
    ToolOutput {
        content: vec![Content::Text(body.into())],
        structured_content: None,
        is_error: false,
    }
}

fn args(arguments: &str) -> Result<Map<String, Value>, ToolError> {
    match serde_json::from_str(arguments) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ToolError::InvalidArguments(
            "arguments must be a JSON object".into(),
        )),
    }
}

fn int_arg(map: &Map<String, Value>, key: &str, default: Option<u64>) -> Result<u64, ToolError> {
    match map.get(key) {
        Some(v) => v.as_u64().ok_or_else(|| {
            ToolError::InvalidArguments(format!("`{key}` must be a non-negative integer"))
        }),
        None => default.ok_or_else(|| ToolError::InvalidArguments(format!("`{key}` is required"))),
    }
}

fn str_arg<'a>(map: &'a Map<String, Value>, key: &str) -> Result<&'a str, ToolError> {
    map.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| ToolError::InvalidArguments(format!("`{key}` must be a string")))
}

fn spin() -> ! {
    let mut n = 0u64;
    loop {
        // black_box makes every iteration observable, so the loop survives optimisation.
        n = black_box(n.wrapping_add(1));
    }
}

fn hog() -> ! {
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; MIB];
        // Fresh linear memory is already zero, so write each page to really use it.
        for i in (0..chunk.len()).step_by(4096) {
            chunk[i] = 1;
        }
        held.push(black_box(chunk));
        black_box(&mut held);
    }
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    // Never true; it keeps rustc's unconditional-recursion lint quiet without
    // giving the optimiser a way out.
    if black_box(depth) == u64::MAX {
        return 0;
    }
    let mut frame = [0u64; 32];
    frame[0] = depth;
    // Forces the frame into the stack and the call out of tail position.
    black_box(&mut frame);
    let below = recurse(black_box(depth + 1));
    below.wrapping_add(frame[(depth % 32) as usize])
}

fn huge_output(mib: u64) -> String {
    let line = format!("{}\n", "x".repeat(1023));
    line.repeat(mib as usize * (MIB / line.len()))
}

fn sleep(ms: u64, busy: bool) {
    let wait = Duration::from_millis(ms);
    if busy {
        let start = Instant::now();
        while start.elapsed() < wait {
            black_box(());
        }
    } else {
        // On wasm32-wasip2 this blocks on wasi:clocks/monotonic-clock.
        std::thread::sleep(wait);
    }
}

fn caller_record(caller: &Caller) -> String {
    json!({
        "subject": caller.subject,
        "client-id": caller.client_id,
        "scopes": caller.scopes,
        "request-id": caller.request_id,
        "client-supports": {
            "elicitation": caller.client_supports.elicitation,
            "sampling": caller.client_supports.sampling,
            "roots": caller.client_supports.roots,
        },
    })
    .to_string()
}

fn read_file(path: &str) -> ToolOutput {
    let (body, structured) = match std::fs::read_to_string(path) {
        Ok(contents) => (contents.clone(), json!({"ok": true, "contents": contents})),
        Err(e) => (e.to_string(), json!({"ok": false, "error": e.to_string()})),
    };
    ToolOutput {
        structured_content: Some(structured.to_string()),
        ..text(body)
    }
}

impl Guest for Hostile {
    fn list_tools() -> Vec<ToolDefinition> {
        defs::DEFS
            .iter()
            .map(|d| ToolDefinition {
                name: d.name.into(),
                title: None,
                description: d.description.into(),
                input_schema: d.input_schema.into(),
                output_schema: d.output_schema.map(Into::into),
                annotations: Annotations {
                    read_only: d.read_only,
                    destructive: !d.read_only,
                    idempotent: d.read_only,
                    open_world: false,
                },
            })
            .collect()
    }

    fn call_tool(caller: Caller, name: String, arguments: String) -> Result<ToolOutput, ToolError> {
        let a = args(&arguments)?;
        Ok(match name.as_str() {
            "echo" => {
                let t = str_arg(&a, "text")?;
                ToolOutput {
                    structured_content: Some(json!({"text": t}).to_string()),
                    ..text(t)
                }
            }
            "spin" => spin(),
            "hog" => hog(),
            "panic" => panic!("hostile plugin panicked on purpose"),
            "recurse" => text(recurse(0).to_string()),
            "huge_output" => text(huge_output(int_arg(&a, "mib", Some(100))?)),
            "sleep" => {
                let busy = match a.get("mode").and_then(Value::as_str) {
                    None | Some("block") => false,
                    Some("busy") => true,
                    Some(other) => {
                        return Err(ToolError::InvalidArguments(format!(
                            "unknown mode `{other}`"
                        )));
                    }
                };
                sleep(int_arg(&a, "ms", None)?, busy);
                text("slept")
            }
            "counter" => text((COUNTER.fetch_add(1, Ordering::SeqCst) + 1).to_string()),
            "progress" => {
                let steps = int_arg(&a, "steps", Some(3))?;
                for i in 1..=steps {
                    host::progress(
                        i as f64,
                        Some(steps as f64),
                        Some(&format!("step {i} of {steps}")),
                    );
                }
                text("done")
            }
            "config" => text(host::config(str_arg(&a, "key")?).unwrap_or_else(|| "unset".into())),
            "log" => {
                for (level, label) in [
                    (LogLevel::Trace, "trace"),
                    (LogLevel::Debug, "debug"),
                    (LogLevel::Info, "info"),
                    (LogLevel::Warn, "warn"),
                    (LogLevel::Error, "error"),
                ] {
                    host::log(level, &format!("hostile log at {label}"));
                }
                text("logged")
            }
            "log_flood" => {
                let lines = int_arg(&a, "lines", Some(100_000))?;
                let bytes = int_arg(&a, "bytes", Some(8192))? as usize;
                let line = "x".repeat(bytes);
                for _ in 0..lines {
                    host::log(LogLevel::Error, &line);
                }
                text(format!("flooded {lines}"))
            }
            "log_forge" => {
                let message = match a.get("message") {
                    Some(_) => str_arg(&a, "message")?,
                    None => FORGED_LINE,
                };
                host::log(LogLevel::Error, message);
                text("forged")
            }
            "error" => return Err(ToolError::Upstream("upstream exploded".into())),
            "is_error" => ToolOutput {
                is_error: true,
                ..text("this is a tool-level error")
            },
            "caller" => text(caller_record(&caller)),
            "read_file" => read_file(str_arg(&a, "path")?),
            "env" => text(
                Value::Object(
                    std::env::vars()
                        .map(|(k, v)| (k, Value::String(v)))
                        .collect(),
                )
                .to_string(),
            ),
            "print" => {
                // println! would panic on a refused write; report it instead.
                let out = writeln!(std::io::stdout(), "hostile plugin writing to stdout");
                let err = writeln!(std::io::stderr(), "hostile plugin writing to stderr");
                match (out, err) {
                    (Ok(()), Ok(())) => text("printed"),
                    (out, err) => text(format!("print failed: stdout {out:?}, stderr {err:?}")),
                }
            }
            "write" => text("written"),
            other => {
                return Err(ToolError::UnknownTool(format!(
                    "hostile has no tool `{other}`"
                )));
            }
        })
    }
}

export!(Hostile);
