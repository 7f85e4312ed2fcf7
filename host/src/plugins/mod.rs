//! The plugin runtime: wasmtime engine, loading and validation, the served
//! registry, and per-call sandboxed execution.
//!
//! **Invariant:** this module knows nothing about HTTP, MCP or auth. Callers
//! hand it a plain [`CallContext`] and get a [`CallOutput`] or [`CallError`].

mod bindings;
mod cache;
mod call;
mod compiler;
mod engine;
mod guest_log;
mod host;
mod input;
mod load;
mod network;
mod outbound;
mod registry;
mod sidecar;
mod store;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Semaphore;
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use crate::config::PluginsConfig;

pub use bindings::{
    Annotations, Blob, ClientSupport, Content, ElicitationRequest, EmbeddedResource, InputError,
    InputKind, InputRequest, ResourceContents, ResourceLink,
};
pub use call::{CallContext, CallError, CallOutcome, CallOutput, call_tool};
pub use compiler::compile_entry;
pub use engine::Shape as EngineShape;
/// For the other places a guest's text reaches the log (a tool's error).
pub(crate) use guest_log::escape as escape_guest_text;
pub use input::{InputAsk, InputMode};
pub use load::{LoadError, LoadedPlugin, ToolSpec, check};
/// The private-network check, shared with the authorization server's
/// fetches of client metadata documents.
pub(crate) use network::{AddressClass, classify as classify_address};
pub use registry::{PluginSet, Registry, RegistryError, ReloadReport, reload_dir};
pub use store::{EVENT_QUEUE, LogLevel, PluginEvent};
#[cfg(feature = "fuzzing")]
pub(crate) use {
    network::{AllowRule, DenyList},
    sidecar::check_text as check_sidecar,
};

/// Process-lifetime plugin machinery, shared by every generation.
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<store::CallState>,
    pub(crate) cache_dir: PathBuf,
    /// Compiles in a child process when set (the server's own binary).
    pub(crate) compiler: Option<compiler::Compiler>,
    pub(crate) config: PluginsConfig,
    /// TLS client and operator deny list for plugins' outbound HTTP.
    pub(crate) outbound: Arc<outbound::Outbound>,
    /// One permit per live instance, matching the pool's slots, so a burst of
    /// calls queues instead of failing to find a slot.
    pub(crate) instances: Semaphore,
    pub(crate) timings: Timings,
    /// Plugin log lines dropped over a budget, per plugin.
    pub(crate) log_dropped: prometheus_client::metrics::family::Family<
        PluginLabel,
        prometheus_client::metrics::counter::Counter,
    >,
    _ticker: engine::EpochTicker,
}

/// Where plugin time goes, measured around the guest itself so a streamed
/// response (whose headers leave long before the tool finishes) still
/// times the whole call. The metrics module registers these.
#[derive(Clone)]
pub struct Timings {
    /// Creating an instance from the pre-linked component.
    pub instantiate: prometheus_client::metrics::histogram::Histogram,
    /// Instantiation through the tool's answer, per plugin.
    pub execute: prometheus_client::metrics::family::Family<
        PluginLabel,
        prometheus_client::metrics::histogram::Histogram,
    >,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct PluginLabel {
    pub plugin: String,
}

impl Timings {
    fn new() -> Timings {
        use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
        Timings {
            // 10 µs to ~1.3 s: a pooled instance takes tens of microseconds.
            instantiate: Histogram::new(exponential_buckets(0.000_01, 2.0, 18)),
            execute: prometheus_client::metrics::family::Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.000_05, 2.0, 19))
            }),
        }
    }
}

impl Runtime {
    /// Bytes the instance pool keeps resident in slots no call is using:
    /// each slot's keep-resident window of memory, tables and stack, kept
    /// so the next call there starts without page faults.
    pub fn pool_resident_bytes(&self) -> u64 {
        self.engine
            .pooling_allocator_metrics()
            .map_or(0, |pool| {
                pool.unused_memory_bytes_resident()
                    + pool.unused_table_bytes_resident()
                    + pool.unused_stack_bytes_resident().unwrap_or(0)
            })
            .try_into()
            .unwrap_or(u64::MAX)
    }

    pub fn timings(&self) -> &Timings {
        &self.timings
    }

    /// `host.log` lines dropped over a call's budget or a plugin's rate.
    pub fn log_dropped(
        &self,
    ) -> &prometheus_client::metrics::family::Family<
        PluginLabel,
        prometheus_client::metrics::counter::Counter,
    > {
        &self.log_dropped
    }

    /// Builds the engine and linker once at start-up. Compiled components are
    /// cached under `cache_dir`.
    /// Compiles plugins in child processes of `exe` (this program) from now
    /// on, so the compiler's memory never stays with the server.
    pub fn compile_in_children(&mut self, exe: PathBuf) {
        self.compiler = Some(compiler::Compiler {
            exe,
            shape: engine::Shape::of(&self.config.limits, &self.config.policy),
        });
    }

    pub fn new(config: &PluginsConfig, cache_dir: PathBuf) -> anyhow::Result<Runtime> {
        let limits = &config.limits;
        let engine = engine::build(&engine::Shape::of(limits, &config.policy))
            .map_err(|e| anyhow::anyhow!("wasmtime engine: {e:#}"))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| anyhow::anyhow!("linking WASI: {e:#}"))?;
        // Every request goes through `outbound`'s checks; a plugin without a
        // [network] grant gets a refusal for each, not a missing import.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| anyhow::anyhow!("linking wasi:http: {e:#}"))?;
        bindings::toolhost::plugin::host::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| {
            state
        })
        .map_err(|e| anyhow::anyhow!("linking host interface: {e:#}"))?;
        let outbound = outbound::Outbound::new(&config.policy.network_deny)?;
        let ticker = engine::EpochTicker::start(engine.clone())?;
        Ok(Runtime {
            engine,
            linker,
            cache_dir,
            compiler: None,
            config: config.clone(),
            outbound: Arc::new(outbound),
            instances: Semaphore::new(limits.max_instances as usize),
            timings: Timings::new(),
            log_dropped: Default::default(),
            _ticker: ticker,
        })
    }
}
