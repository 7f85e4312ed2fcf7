//! The process-wide wasmtime engine: pooling allocator, epoch interruption and
//! the ticker thread that drives deadlines.
//!
//! Lives for the whole process; generations of plugins share it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::config::{PluginLimits, PluginPolicy};

/// How often the epoch advances. A call's deadline is checked at this
/// granularity, and a spinning guest yields its thread this often, so other
/// requests on the same worker are not starved.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(1);

/// What one component may contain: each pool slot is sized for exactly this,
/// and wasmtime refuses a component beyond it when it is compiled (so at
/// load), so no call can take more than its slot's share of the pool and
/// leave other calls without instances. A Python component (componentize-py)
/// has 14 core instances, every other plugin here 3; all have one memory
/// and two tables.
pub(crate) const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
pub(crate) const MEMORIES_PER_COMPONENT: u32 = 2;
pub(crate) const TABLES_PER_COMPONENT: u32 = 8;

/// What the engine is built from: all a compiler child needs to build the
/// same engine (same compatibility hash) and so write usable cache entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct Shape {
    /// `plugins.limits.max_instances`.
    #[arg(long)]
    pub max_instances: u32,
    /// `plugins.policy.max_memory_mib`.
    #[arg(long)]
    pub max_memory_mib: u32,
    /// `plugins.policy.fuel_metering`.
    #[arg(long)]
    pub fuel_metering: bool,
}

impl Shape {
    pub(crate) fn of(limits: &PluginLimits, policy: &PluginPolicy) -> Shape {
        Shape {
            max_instances: limits.max_instances,
            max_memory_mib: policy.max_memory_mib,
            fuel_metering: policy.fuel_metering,
        }
    }

    /// The flags that give a child process this shape.
    pub(crate) fn to_args(self) -> Vec<String> {
        let mut args = vec![
            "--max-instances".to_string(),
            self.max_instances.to_string(),
            "--max-memory-mib".to_string(),
            self.max_memory_mib.to_string(),
        ];
        if self.fuel_metering {
            args.push("--fuel-metering".to_string());
        }
        args
    }
}

/// Builds the engine once at start-up. Each pool slot can hold the largest
/// memory the policy lets a sidecar grant.
pub(crate) fn build(shape: &Shape) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::new();
    // Slots for concurrent calls plus headroom for loads (list-tools runs in an
    // instance too) so a reload never waits behind traffic.
    let instances = shape.max_instances + 16;
    pool.total_component_instances(instances)
        .total_core_instances(instances * CORE_INSTANCES_PER_COMPONENT)
        .total_memories(instances * MEMORIES_PER_COMPONENT)
        .total_tables(instances * TABLES_PER_COMPONENT)
        .total_stacks(instances)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .table_elements(200_000)
        .max_core_instance_size(4 << 20)
        .max_component_instance_size(4 << 20)
        .max_memory_size((shape.max_memory_mib as usize) << 20)
        // A Rust plugin's first MiB is its stack and its data and heap follow,
        // so keep enough resident to cover what a small tool touches, and let
        // PAGEMAP_SCAN (Linux 6.7+) reset only the pages it dirtied: no
        // madvise, no page faults on the next call. Measured in the bench:
        // per-call server CPU roughly halved.
        .linear_memory_keep_resident(8 << 20)
        .pagemap_scan(wasmtime::Enabled::Auto)
        .table_keep_resident(64 << 10)
        .async_stack_keep_resident(64 << 10);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(shape.fuel_metering)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .max_wasm_stack(1 << 20)
        .async_stack_size(2 << 20);
    Engine::new(&config)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
/// Owned by the server; dropping it stops the thread.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub(crate) fn start(engine: Engine) -> std::io::Result<EpochTicker> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        std::thread::Builder::new()
            .name("toolhost-epoch".into())
            .spawn(move || {
                while !thread_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(EpochTicker { stop })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
