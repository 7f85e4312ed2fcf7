//! Per-call state: what one instance may see and the limits it runs under.
//!
//! A `CallState` is created for one call (or one load-time `list-tools`) and
//! dropped with its store, so nothing survives from one caller to the next:
//! not its resources, not its outbound connections, not its request count.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use super::bindings::ClientSupport;
use super::guest_log::{LogBudget, PluginLog};
use super::input::{InputAsk, InputMode, Interrupt};
use super::network::NetworkGrant;
use super::outbound::{Outbound, OutboundHooks};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Something a plugin reported or asked while running, for the transport.
#[derive(Debug)]
pub enum PluginEvent {
    Progress {
        progress: f64,
        total: Option<f64>,
        message: Option<String>,
    },
    Log {
        level: LogLevel,
        message: String,
    },
    /// Questions for the client; the call waits for the answers.
    Input(InputAsk),
}

/// Severity of a plugin's log line, independent of the generated bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
}

/// Events a call may queue before the client reads them; beyond this, events
/// are dropped so a plugin looping on `progress` cannot grow host memory.
pub const EVENT_QUEUE: usize = 64;

/// Longest log or progress message kept from a plugin; longer ones are cut,
/// since the guest controls the length.
pub(crate) const MAX_MESSAGE_BYTES: usize = 8 * 1024;

pub(crate) struct CallState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) plugin: Arc<str>,
    pub(crate) request_id: Arc<str>,
    pub(crate) config: Arc<BTreeMap<String, String>>,
    pub(crate) events: Option<mpsc::Sender<PluginEvent>>,
    pub(crate) client_supports: ClientSupport,
    pub(crate) input: InputMode,
    /// Answers a replayed call used, carried into the next round's state.
    pub(crate) consumed: BTreeMap<String, String>,
    /// Set when `request-input` stops a replayed call on purpose.
    pub(crate) interrupt: Option<Interrupt>,
    /// What is left of the call's `host.log` allowance.
    pub(crate) log: LogBudget,
    http: WasiHttpCtx,
    /// Checks and sends the plugin's `wasi:http` requests under its grant.
    outbound: OutboundHooks,
}

/// The per-call facts a `CallState` is built from.
pub(crate) struct StateParts {
    pub(crate) plugin: Arc<str>,
    pub(crate) request_id: Arc<str>,
    pub(crate) config: Arc<BTreeMap<String, String>>,
    pub(crate) memory_bytes: usize,
    pub(crate) events: Option<mpsc::Sender<PluginEvent>>,
    pub(crate) client_supports: ClientSupport,
    pub(crate) input: InputMode,
    /// What the plugin may reach over `wasi:http`.
    pub(crate) network: Arc<NetworkGrant>,
    pub(crate) outbound: Arc<Outbound>,
    /// The plugin's log allowance, which the call's budget draws on.
    pub(crate) log: Arc<PluginLog>,
}

impl CallState {
    pub(crate) fn new(parts: StateParts, stderr: MemoryOutputPipe) -> CallState {
        // Nothing is inherited from the host process: no environment, no
        // arguments, no preopened directories, no network, no stdin or stdout.
        // Stderr goes to a small in-memory pipe so a crash can be explained.
        let wasi = WasiCtx::builder()
            .stderr(stderr)
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false)
            .build();
        let outbound = OutboundHooks::new(
            parts.outbound,
            parts.network,
            parts.plugin.clone(),
            parts.request_id.clone(),
        );
        let log = LogBudget::new(parts.log, parts.request_id.clone());
        CallState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(parts.memory_bytes),
            plugin: parts.plugin,
            request_id: parts.request_id,
            config: parts.config,
            events: parts.events,
            client_supports: parts.client_supports,
            input: parts.input,
            consumed: BTreeMap::new(),
            interrupt: None,
            log,
            http: WasiHttpCtx::new(),
            outbound,
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps linear memory and remembers whether the cap was hit, so a guest that
/// traps after a failed `memory.grow` is reported as out of memory rather than
/// as a generic trap. The cap is for all of the store's memories together: a
/// component with several memories gets no more than one with a single one.
pub(crate) struct MemoryLimiter {
    limit: usize,
    /// Bytes of all memories of the store, as last allowed to grow.
    used: usize,
    pub(crate) exceeded: bool,
}

impl MemoryLimiter {
    pub(crate) fn new(limit: usize) -> MemoryLimiter {
        MemoryLimiter {
            limit,
            used: 0,
            exceeded: false,
        }
    }
}

/// Table elements one instance may have; a guest asking for more is refused.
const MAX_TABLE_ELEMENTS: usize = 200_000;

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Each memory's creation (current 0) and growth passes here, so the
        // sum of the deltas is the store's total.
        let total = self.used.saturating_sub(current).saturating_add(desired);
        if total > self.limit {
            self.exceeded = true;
            return Ok(false);
        }
        self.used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// Cuts a guest-supplied message to [`MAX_MESSAGE_BYTES`] on a char boundary.
pub(crate) fn truncate_message(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module of two memories of `pages` 64 KiB pages each.
    fn two_memories(pages: u64) -> Vec<u8> {
        use wasm_encoder::{MemorySection, MemoryType, Module};
        let mut memories = MemorySection::new();
        for _ in 0..2 {
            memories.memory(MemoryType {
                minimum: pages,
                maximum: None,
                memory64: false,
                shared: false,
                page_size_log2: None,
            });
        }
        let mut module = Module::new();
        module.section(&memories);
        module.finish()
    }

    /// The limit is the call's, not each memory's: two memories of 6 MiB
    /// exceed a 10 MiB limit although each fits it alone.
    #[test]
    fn memory_is_counted_across_all_memories() {
        let engine = wasmtime::Engine::default();
        let instantiate = |pages: u64| {
            let module = wasmtime::Module::new(&engine, two_memories(pages)).expect("module");
            let mut store = wasmtime::Store::new(&engine, MemoryLimiter::new(10 << 20));
            store.limiter(|limiter| limiter);
            let res = wasmtime::Instance::new(&mut store, &module, &[]);
            (res.is_ok(), store.data().exceeded)
        };
        // 2 x 4 MiB fits.
        assert_eq!(instantiate(64), (true, false));
        // 2 x 6 MiB does not.
        assert_eq!(instantiate(96), (false, true));
    }

    #[test]
    fn truncates_on_char_boundary() {
        let check = |input: String, expect_len: usize| {
            assert_eq!(truncate_message(input).len(), expect_len);
        };
        check("short".into(), 5);
        check(
            "é".repeat(MAX_MESSAGE_BYTES),
            MAX_MESSAGE_BYTES + '…'.len_utf8(),
        );
        check(
            "a".repeat(MAX_MESSAGE_BYTES + 1),
            MAX_MESSAGE_BYTES + '…'.len_utf8(),
        );
    }
}
