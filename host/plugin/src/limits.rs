//! The limits every plugin runs under, and the runtime's configuration.

use std::path::PathBuf;
use std::time::Duration;

use wasmeter_core::validate::OutputLimits;

/// Limits applied to each plugin instance.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginLimits {
    /// Longest a single call (`collect`, `diff`, `init`, ...) may take, in wall-clock
    /// time: computing (the epoch deadline) and waiting in host calls (a WASI sleep
    /// or poll) alike. A call still running shortly after it is abandoned.
    pub call_timeout: Duration,
    /// Largest linear memory a plugin may grow to, in bytes.
    pub memory_bytes: usize,
    /// Bounds on a call's output.
    pub output: OutputLimits,
    /// Consecutive failed calls after which the plugin is quarantined (counted over
    /// all calls, and separately per kind of call: see [`crate::Instance`]).
    pub quarantine_after: u32,
    /// Log volume an instance may write per second, in bytes (its `log` import,
    /// stdout and stderr together; a token bucket holding one second of quota). Lines
    /// beyond it are suppressed and counted; a call that tries to log more than
    /// [`LOG_FLOOD_FACTOR`] seconds of quota fails (see `log_limit.rs`).
    pub log_bytes_per_sec: u64,
    /// Largest state an instance may export or import, in bytes.
    pub state_bytes: usize,
    /// Distinct topics one plugin instance may create. Carried for the pipeline,
    /// which enforces it; the runtime does not look at it.
    pub max_topics: usize,
    /// Distinct sample series (name + labels) one plugin instance may create.
    /// Carried for the pipeline, which enforces it; the runtime does not look at it.
    pub max_series: usize,
}

/// A call that tries to log more than this many seconds of its instance's quota
/// (`log_bytes_per_sec`) fails: such a plugin is flooding, not chatty.
pub const LOG_FLOOD_FACTOR: u64 = 16;

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_millis(200),
            memory_bytes: 64 << 20,
            output: OutputLimits::default(),
            quarantine_after: 5,
            log_bytes_per_sec: 64 << 10,
            state_bytes: crate::MAX_STATE_BYTES,
            max_topics: 10_000,
            max_series: 10_000,
        }
    }
}

/// How the runtime is set up.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeConfig {
    /// Where compiled components are cached (`None`: in memory only). Used only if
    /// the directory is safe (owned by this user, not writable by group or others,
    /// not a symlink); the runtime creates it with mode 0700 if missing, and falls
    /// back to memory-only caching with a warning otherwise (see `cache_trust.rs`).
    pub cache_dir: Option<PathBuf>,
    /// Default limits for plugin instances.
    pub limits: PluginLimits,
    /// Plugin instances that can exist at once (pooling allocator slots).
    pub max_instances: u32,
    /// Largest memory cap any plugin may be given, in bytes (sizes the pool's slots).
    pub max_memory_bytes: usize,
    /// How often running guests are interrupted to check their deadline and yield.
    pub epoch_tick: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            limits: PluginLimits::default(),
            max_instances: 256,
            max_memory_bytes: 256 << 20,
            epoch_tick: Duration::from_millis(1),
        }
    }
}
