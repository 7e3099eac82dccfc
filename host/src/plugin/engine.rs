//! The wasmtime engine shared by every plugin, its epoch ticker, and the
//! linker that gives detectors their imports.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use super::call::CallState;
use super::limits::Limits;
use crate::contract::BasinDetector;

/// Time between two epoch ticks. A running detector yields to the async
/// executor and checks its deadline once per tick, so this is also the
/// precision of the deadline.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Headroom between the WebAssembly stack limit and the fiber stack that
/// runs it, for the host frames (imports, libcalls) below the guest's.
const HOST_STACK_HEADROOM: usize = 1 << 20;

/// Component instances the pool holds beyond the configured concurrency:
/// plugins loading in the background (up to four at once) and margin.
const EXTRA_SLOTS: u32 = 8;

/// Sizes the pooling allocator. Reusing memory, table and stack slots saves
/// a map and an unmap per call, about a third of the sandbox's own cost per
/// call (docs/benchmarks.md). Slots are address space, reserved up front and
/// only backed by memory while in use.
///
/// The pool's own caps are kept at or above the configured limits, so that
/// a component over a limit is refused by the store's resource limiter,
/// whose message names the setting, and not by the pool at compile time.
fn pooling(limits: &Limits, concurrency: usize) -> PoolingAllocationConfig {
    let slots = u32::try_from(concurrency)
        .unwrap_or(u32::MAX / 64)
        .saturating_add(EXTRA_SLOTS);
    let instances_per_call = u32::try_from(limits.instances)
        .unwrap_or(u32::MAX)
        .clamp(32, 1024);
    let memory = limits.memory_bytes.max(64 << 20);
    let table_elements = limits.table_elements.max(20_000);
    let mut pooling = PoolingAllocationConfig::default();
    pooling
        .total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(instances_per_call))
        .max_core_instances_per_component(instances_per_call)
        .total_memories(slots.saturating_mul(2))
        .total_tables(slots.saturating_mul(4))
        .total_stacks(slots)
        .max_memory_size(usize::try_from(memory).unwrap_or(usize::MAX))
        .table_elements(usize::try_from(table_elements).unwrap_or(usize::MAX));
    pooling
}

/// The engine, its ticker and the linker, created once per process.
pub struct SandboxEngine {
    engine: Engine,
    linker: Linker<CallState>,
    ticker: EpochTicker,
}

impl SandboxEngine {
    /// Creates the engine with epoch interruption, the stack limit and a
    /// pooling allocator sized for `concurrency` detector calls, and starts
    /// the ticker thread.
    pub fn new(limits: &Limits, concurrency: usize) -> anyhow::Result<SandboxEngine> {
        let stack = usize::try_from(limits.stack_bytes).context("limits.stack is too large")?;
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .max_wasm_stack(stack)
            .async_stack_size(stack + HOST_STACK_HEADROOM)
            .cranelift_opt_level(OptLevel::Speed)
            .wasm_component_model(true);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling(
            limits,
            concurrency,
        )));
        let engine = Engine::new(&config).map_err(anyhow::Error::from)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        BasinDetector::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |state| state)
            .map_err(anyhow::Error::from)?;

        let ticker = EpochTicker::start(&engine);
        Ok(SandboxEngine {
            engine,
            linker,
            ticker,
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The linker with WASI (no capabilities) and the detector imports.
    pub fn linker(&self) -> &Linker<CallState> {
        &self.linker
    }

    /// Checks that the ticker thread is alive; without it no deadline fires.
    pub fn ticker_running(&self) -> bool {
        self.ticker.running.load(Ordering::Relaxed)
    }
}

/// A thread that advances the engine's epoch every [`EPOCH_TICK`]. It holds
/// only a weak handle, so it ends once the engine is dropped.
struct EpochTicker {
    running: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: &Engine) -> EpochTicker {
        let weak = engine.weak();
        let running = Arc::new(AtomicBool::new(true));
        let flag = running.clone();
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
                flag.store(false, Ordering::Relaxed);
            })
            .expect("the operating system refused to start the epoch ticker thread");
        EpochTicker { running }
    }
}
