//! Running a plugin: a fresh instance per call from the pre-linked component,
//! under a memory limit and a wall-clock deadline, with every failure mode
//! turned into a [`CallError`] that names what happened.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use super::Runtime;
use super::bindings::{
    Caller, ClientSupport, Content, InputRequest, PluginPre, ResourceContents, ToolDefinition,
    ToolError, ToolOutput,
};
use super::guest_log::{PluginLog, escape};
use super::input::{InputMode, Interrupt};
use super::load::{LoadedPlugin, ToolSpec};
use super::network::NetworkGrant;
use super::sidecar::EffectiveLimits;
use super::store::{CallState, PluginEvent, StateParts};

/// Calls that may wait per concurrency slot of a saturated plugin.
const MAX_QUEUED_PER_SLOT: usize = 8;

/// Counts a call waiting for its plugin's permit; leaves on drop.
struct QueueSlot<'a> {
    counter: &'a std::sync::atomic::AtomicUsize,
    position: usize,
}

impl<'a> QueueSlot<'a> {
    fn enter(counter: &'a std::sync::atomic::AtomicUsize) -> QueueSlot<'a> {
        let position = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        QueueSlot { counter, position }
    }
}

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.counter
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How much of a plugin's stderr (where a Rust guest writes its panic message)
/// is kept to explain a crash.
const STDERR_CAPTURE: usize = 4 * 1024;

/// Deadline for `list-tools` at load time: listing must not compute anything.
const LIST_TOOLS_DEADLINE: Duration = Duration::from_secs(10);

/// Who is calling and where progress goes; built by the transport per request.
pub struct CallContext {
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    pub request_id: Arc<str>,
    /// What the client declared it can answer through `request-input`.
    pub client_supports: ClientSupport,
    /// Receives progress and log events while the call runs, if anyone listens.
    pub events: Option<mpsc::Sender<PluginEvent>>,
    /// How `request-input` is answered.
    pub input: InputMode,
}

/// How a call ended when it did not fail.
#[derive(Debug)]
pub enum CallOutcome {
    Complete(CallOutput),
    /// A replayed call needs answers first (stateless era). `answered` are
    /// the answers it already used, to carry into the next round.
    InputRequired {
        requests: Vec<InputRequest>,
        answered: BTreeMap<String, String>,
    },
}

/// The successful result of a call, ready for the wire.
#[derive(Debug)]
pub struct CallOutput {
    pub content: Vec<Content>,
    pub structured_content: Option<serde_json::Value>,
    pub is_error: bool,
}

/// Why a call produced no regular result. Every case is reported to the
/// client as a tool result with `isError: true` and this message.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    #[error("{0}")]
    Tool(ToolFailure),
    #[error("the tool ran past its deadline of {} ms and was stopped", .0.as_millis())]
    Deadline(Duration),
    /// Waited its whole deadline for a free instance and never ran.
    #[error("the tool did not start within its deadline of {} ms: every instance it may run in stayed busy; retry shortly", .0.as_millis())]
    NotStarted(Duration),
    #[error("the tool exceeded its memory limit of {0} MiB and was stopped")]
    Memory(usize),
    #[error("the tool used its whole CPU budget of {0} fuel and was stopped")]
    Fuel(u64),
    #[error("the tool overflowed its stack and was stopped")]
    StackOverflow,
    #[error("the tool crashed: {0}")]
    Trap(String),
    #[error("the tool's output is {size} bytes, over the limit of {limit} bytes")]
    OutputTooLarge { size: usize, limit: usize },
    #[error("the tool returned invalid structured content: {0}")]
    BadOutput(String),
    #[error("the tool is busy: {0} calls are running and the queue is full; retry shortly")]
    Busy(u32),
    /// The tool asked for input of a kind the client did not declare.
    #[error("the tool needs client capabilities the client did not declare: {}", .0.join(", "))]
    MissingCapability(Vec<&'static str>),
    /// An answer the client sent for a question does not have its shape.
    #[error("invalid input response: {0}")]
    InvalidAnswer(String),
}

/// A failure the plugin itself reported through `tool-error`.
#[derive(Debug)]
pub struct ToolFailure(ToolError);

impl std::fmt::Display for ToolFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            ToolError::InvalidArguments(m) => write!(f, "invalid arguments: {m}"),
            ToolError::UnknownTool(m) => write!(f, "unknown tool: {m}"),
            ToolError::Upstream(m) => write!(f, "upstream error: {m}"),
            ToolError::PermissionDenied(m) => write!(f, "permission denied: {m}"),
            ToolError::Internal(m) => write!(f, "internal error in the tool: {m}"),
        }
    }
}

/// Calls `tool` of `plugin` with `arguments` (a JSON object) on behalf of `ctx`.
/// Validates the arguments first; the plugin only runs on valid input.
pub async fn call_tool(
    runtime: &Runtime,
    plugin: &LoadedPlugin,
    tool: &ToolSpec,
    arguments: &serde_json::Value,
    ctx: CallContext,
) -> Result<CallOutcome, CallError> {
    validate_arguments(tool, arguments)?;
    let limits = &plugin.limits;
    let memory_bytes = limits.memory_bytes;
    let deadline = limits.deadline;
    let caller = Caller {
        subject: ctx.subject,
        client_id: ctx.client_id,
        scopes: ctx.scopes,
        request_id: ctx.request_id.to_string(),
        client_supports: ctx.client_supports,
    };
    let arguments_text = arguments.to_string();
    // The plugin's own cap first, so one busy plugin queues on itself rather
    // than holding instance slots every other plugin needs.
    // The queue in front of a saturated plugin is bounded: beyond it a call
    // is refused at once rather than piling up memory and latency.
    let queued = QueueSlot::enter(&plugin.queued);
    if queued.position > MAX_QUEUED_PER_SLOT * limits.max_concurrent as usize {
        return Err(CallError::Busy(limits.max_concurrent));
    }
    // Waiting for both permits ends at the call's deadline: a plugin (or
    // every plugin) held busy by slow calls must not keep a caller waiting
    // without bound. The deadline then applies afresh to the run.
    let permits = tokio::time::timeout(deadline, async {
        let plugin_permit = plugin
            .concurrency
            .acquire()
            .await
            .map_err(|_| CallError::Trap("the plugin was unloaded".into()))?;
        drop(queued);
        let instance_permit = runtime
            .instances
            .acquire()
            .await
            .map_err(|_| CallError::Trap("the plugin runtime is shutting down".into()))?;
        Ok::<_, CallError>((plugin_permit, instance_permit))
    })
    .await
    .map_err(|_| CallError::NotStarted(deadline))?;
    let (_plugin_permit, _permit) = permits?;
    let state = StateParts {
        plugin: plugin.name.clone(),
        request_id: ctx.request_id,
        config: plugin.config.clone(),
        memory_bytes,
        events: ctx.events,
        client_supports: ctx.client_supports,
        input: ctx.input,
        network: plugin.network.clone(),
        outbound: runtime.outbound.clone(),
        log: plugin.log.clone(),
    };
    let (mut store, stderr) = new_store(runtime, state, deadline, limits.fuel);
    // The epoch callback only runs while guest code runs; this timeout also
    // covers time parked in host calls (a clock, an upstream, a client).
    let started = std::time::Instant::now();
    let res = tokio::time::timeout(deadline, async {
        let instance = plugin.pre.instantiate_async(&mut store).await?;
        runtime
            .timings
            .instantiate
            .observe(started.elapsed().as_secs_f64());
        instance
            .toolhost_plugin_tools()
            .call_call_tool(&mut store, &caller, &tool.declared_name, &arguments_text)
            .await
    })
    .await;
    runtime
        .timings
        .execute
        .get_or_create(&super::PluginLabel {
            plugin: plugin.name.to_string(),
        })
        .observe(started.elapsed().as_secs_f64());
    let res = res.map_err(|_| CallError::Deadline(deadline))?;
    let output = match res {
        Ok(Ok(output)) => output,
        Ok(Err(tool_error)) => return Err(CallError::Tool(ToolFailure(tool_error))),
        Err(err) => {
            return match store.data_mut().interrupt.take() {
                Some(Interrupt::InputRequired(requests)) => Ok(CallOutcome::InputRequired {
                    requests,
                    answered: std::mem::take(&mut store.data_mut().consumed),
                }),
                Some(Interrupt::MissingCapability(names)) => {
                    Err(CallError::MissingCapability(names))
                }
                Some(Interrupt::InvalidAnswer(message)) => Err(CallError::InvalidAnswer(message)),
                None => Err(classify_trap(
                    err,
                    &store,
                    &stderr,
                    deadline,
                    memory_bytes,
                    limits.fuel,
                )),
            };
        }
    };
    finish_output(output, tool, limits.max_output_bytes).map(CallOutcome::Complete)
}

/// Asks a freshly linked plugin for its tools, under load-time limits.
pub(crate) async fn list_tools(
    runtime: &Runtime,
    pre: &PluginPre<CallState>,
    name: &Arc<str>,
    config: &Arc<BTreeMap<String, String>>,
    limits: &EffectiveLimits,
    log: &Arc<PluginLog>,
) -> Result<Vec<ToolDefinition>, CallError> {
    let memory_bytes = limits.memory_bytes;
    let _permit = tokio::time::timeout(LIST_TOOLS_DEADLINE, runtime.instances.acquire())
        .await
        .map_err(|_| CallError::NotStarted(LIST_TOOLS_DEADLINE))?
        .map_err(|_| CallError::Trap("the plugin runtime is shutting down".into()))?;
    let state = StateParts {
        plugin: name.clone(),
        request_id: Arc::from("load"),
        config: config.clone(),
        memory_bytes,
        events: None,
        client_supports: ClientSupport {
            elicitation: false,
            sampling: false,
            roots: false,
        },
        input: InputMode::Unavailable,
        // Listing tools must not reach the network.
        network: Arc::new(NetworkGrant::none()),
        outbound: runtime.outbound.clone(),
        log: log.clone(),
    };
    let (mut store, stderr) = new_store(runtime, state, LIST_TOOLS_DEADLINE, None);
    let res = tokio::time::timeout(LIST_TOOLS_DEADLINE, async {
        let instance = pre.instantiate_async(&mut store).await?;
        instance
            .toolhost_plugin_tools()
            .call_list_tools(&mut store)
            .await
    })
    .await
    .map_err(|_| CallError::Deadline(LIST_TOOLS_DEADLINE))?;
    res.map_err(|err| {
        classify_trap(
            err,
            &store,
            &stderr,
            LIST_TOOLS_DEADLINE,
            memory_bytes,
            None,
        )
    })
}

fn validate_arguments(tool: &ToolSpec, arguments: &serde_json::Value) -> Result<(), CallError> {
    // `is_valid` stops at the first failure and builds no error values, so the
    // common case stays cheap; messages are only collected for bad input.
    if tool.input_validator.is_valid(arguments) {
        return Ok(());
    }
    let errors = tool.input_validator.iter_errors(arguments);
    let messages: Vec<String> = errors
        .take(5)
        .map(|e| {
            let path = e.instance_path().to_string();
            if path.is_empty() {
                e.to_string()
            } else {
                format!("{path}: {e}")
            }
        })
        .collect();
    Err(CallError::InvalidArguments(messages.join("; ")))
}

fn new_store(
    runtime: &Runtime,
    parts: StateParts,
    deadline: Duration,
    fuel: Option<u64>,
) -> (Store<CallState>, MemoryOutputPipe) {
    let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
    let state = CallState::new(parts, stderr.clone());
    let mut store = Store::new(&runtime.engine, state);
    store.limiter(|state| &mut state.limiter);
    if runtime.config.policy.fuel_metering {
        // A metered store starts empty: without a budget, fill it.
        let _ = store.set_fuel(fuel.unwrap_or(u64::MAX));
    }
    let ends_at = Instant::now() + deadline;
    store.set_epoch_deadline(1);
    // Yield at every tick so a spinning guest shares its worker thread; stop it
    // once the wall-clock budget is spent.
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= ends_at {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    (store, stderr)
}

/// Turns a wasmtime error into the reason a user can act on.
fn classify_trap(
    err: wasmtime::Error,
    store: &Store<CallState>,
    stderr: &MemoryOutputPipe,
    deadline: Duration,
    memory_bytes: usize,
    fuel: Option<u64>,
) -> CallError {
    if store.data().limiter.exceeded {
        return CallError::Memory(memory_bytes >> 20);
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => return CallError::Deadline(deadline),
        Some(Trap::StackOverflow) => return CallError::StackOverflow,
        Some(Trap::OutOfFuel) => {
            return CallError::Fuel(fuel.unwrap_or(u64::MAX));
        }
        _ => {}
    }
    let captured = stderr.contents();
    let stderr_text = String::from_utf8_lossy(&captured);
    // The guest wrote all of this: escaped, it cannot forge log lines.
    let panic_line = stderr_text
        .lines()
        .find(|line| line.contains("panicked"))
        .map(|line| escape(line.trim()).into_owned());
    let plugin = &*store.data().plugin;
    let stderr_shown = escape(&stderr_text);
    tracing::warn!(plugin, stderr = %stderr_shown, "plugin trapped: {err:#}");
    match panic_line {
        Some(line) => CallError::Trap(line),
        None => CallError::Trap(err.to_string()),
    }
}

fn finish_output(
    output: ToolOutput,
    tool: &ToolSpec,
    limit: usize,
) -> Result<CallOutput, CallError> {
    let size: usize = output
        .content
        .iter()
        .map(|item| match item {
            Content::Text(text) => text.len(),
            Content::Image(blob) | Content::Audio(blob) => blob.data.len() * 4 / 3,
            Content::Resource(res) => match &res.contents {
                ResourceContents::Text(text) => text.len(),
                ResourceContents::Blob(data) => data.len() * 4 / 3,
            },
            Content::ResourceLink(link) => link.uri.len() + link.name.len(),
        })
        .sum::<usize>()
        + output.structured_content.as_ref().map_or(0, String::len);
    if size > limit {
        return Err(CallError::OutputTooLarge { size, limit });
    }
    let structured_content = match output.structured_content {
        Some(text) => {
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| CallError::BadOutput(format!("not JSON: {e}")))?;
            if let Some(validator) = &tool.output_validator
                && !output.is_error
                && let Err(e) = validator.validate(&value)
            {
                return Err(CallError::BadOutput(format!(
                    "does not match the output schema: {e}"
                )));
            }
            Some(value)
        }
        None => None,
    };
    Ok(CallOutput {
        content: output.content,
        structured_content,
        is_error: output.is_error,
    })
}
