//! The wasmtime engine every policy runs on: pooling allocator, epoch interruption and its ticker thread.

use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use arqon_policy_sdk::abi;
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter,
};

/// Limits and budgets of a [`PolicyHost`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostConfig {
    /// Wall-clock budget of one policy evaluation (default 2 ms, SC-004).
    pub time_budget: Duration,
    /// Period of the epoch ticker (default 1 ms); a policy is stopped within budget + one tick.
    pub epoch_tick: Duration,
    /// Largest linear memory a policy may have, in bytes (default 16 MiB).
    pub memory_limit: usize,
    /// Largest encoded input handed to a policy, in bytes (default 1 MiB).
    pub max_input: usize,
    /// Instance slots in the pool: the most evaluations that can run at once (default 256).
    pub pool_size: u32,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            time_budget: Duration::from_micros(abi::DEFAULT_TIME_BUDGET_US),
            epoch_tick: Duration::from_millis(1),
            memory_limit: usize::try_from(abi::DEFAULT_MEMORY_LIMIT).unwrap_or(usize::MAX),
            max_input: 1 << 20,
            pool_size: 256,
        }
    }
}

impl HostConfig {
    /// Epoch deadline in ticks: enough whole ticks to cover the budget, plus one, because the
    /// first tick may land at any moment after an evaluation starts.
    fn deadline_ticks(&self) -> u64 {
        let tick = self.epoch_tick.as_nanos().max(1);
        let ticks = self.time_budget.as_nanos().div_ceil(tick);
        u64::try_from(ticks).unwrap_or(u64::MAX - 1).max(1) + 1
    }
}

/// Why a [`PolicyHost`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A limit, the budget or the tick is zero.
    #[error("invalid policy host config: {0}")]
    Config(&'static str),
    /// wasmtime refused the engine configuration.
    #[error("cannot build the wasmtime engine: {0}")]
    Engine(String),
    /// The epoch ticker thread could not be spawned.
    #[error("cannot start the epoch ticker: {0}")]
    Ticker(#[from] std::io::Error),
}

/// One wasmtime engine with its epoch ticker; cheap to clone, shared by every policy compiled on it.
///
/// The ticker thread stops when the host and every policy compiled on it are dropped.
#[derive(Clone)]
pub struct PolicyHost {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) engine: Engine,
    pub(crate) config: HostConfig,
    pub(crate) deadline_ticks: u64,
    _ticker: Ticker,
}

/// Advances the engine's epoch every tick until dropped.
struct Ticker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: Engine, tick: Duration) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("arqon-policy-epoch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    engine.increment_epoch();
                }
            })?;
        Ok(Ticker {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // The thread only loops on `recv_timeout`; a join error would mean it panicked,
            // and there is nothing left to clean up in that case.
            let _ = thread.join();
        }
    }
}

impl PolicyHost {
    /// Builds the engine and starts the epoch ticker.
    pub fn new(config: HostConfig) -> Result<Self, HostError> {
        if config.epoch_tick.is_zero() || config.time_budget.is_zero() {
            return Err(HostError::Config(
                "time budget and epoch tick must be positive",
            ));
        }
        if config.memory_limit == 0 || config.max_input == 0 || config.pool_size == 0 {
            return Err(HostError::Config(
                "memory limit, input limit and pool size must be positive",
            ));
        }
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(config.pool_size)
            .total_memories(config.pool_size)
            .total_tables(config.pool_size)
            .max_memory_size(config.memory_limit)
            .table_elements(TABLE_LIMIT)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT)
            .pagemap_scan(Enabled::Auto);
        let mut wasm = Config::new();
        wasm.epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(|e| HostError::Engine(format!("{e:#}")))?;
        let ticker = Ticker::start(engine.clone(), config.epoch_tick)?;
        Ok(PolicyHost {
            shared: Arc::new(Shared {
                engine,
                deadline_ticks: config.deadline_ticks(),
                config,
                _ticker: ticker,
            }),
        })
    }

    /// The host's configuration.
    pub fn config(&self) -> &HostConfig {
        &self.shared.config
    }
}

/// Most table elements a policy may have.
const TABLE_LIMIT: usize = 10_000;
/// Bytes of each pool slot kept resident and reset in place instead of returned to the kernel.
/// With `PAGEMAP_SCAN` (Linux 6.7+) only the pages a message dirtied are reset, so this can be
/// larger than a small policy's whole memory without a memset of all of it per message.
const KEEP_RESIDENT: usize = 2 << 20;

/// Per-evaluation store data: enforces the memory limit and remembers that it did.
pub(crate) struct StoreLimits {
    memory_limit: usize,
    /// Set when a growth past the limit was refused; the failure is then `POLICY_MEMORY`.
    pub(crate) denied: Option<(usize, usize)>,
}

impl StoreLimits {
    pub(crate) fn new(memory_limit: usize) -> Self {
        StoreLimits {
            memory_limit,
            denied: None,
        }
    }
}

/// Growth past the memory limit; raised as a trap so the evaluation stops there.
#[derive(Debug, thiserror::Error)]
#[error("memory limit exceeded")]
struct MemoryLimitExceeded;

impl ResourceLimiter for StoreLimits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.denied = Some((desired, self.memory_limit));
            return Err(wasmtime::Error::new(MemoryLimitExceeded));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_LIMIT)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_covers_the_budget_plus_one_tick() {
        let config = |budget_us, tick_us| HostConfig {
            time_budget: Duration::from_micros(budget_us),
            epoch_tick: Duration::from_micros(tick_us),
            ..HostConfig::default()
        };
        assert_eq!(config(2000, 1000).deadline_ticks(), 3);
        assert_eq!(config(2500, 1000).deadline_ticks(), 4);
        assert_eq!(config(100, 1000).deadline_ticks(), 2);
    }

    #[test]
    fn zero_limits_are_refused() {
        let bad = HostConfig {
            pool_size: 0,
            ..HostConfig::default()
        };
        assert!(matches!(PolicyHost::new(bad), Err(HostError::Config(_))));
    }
}
