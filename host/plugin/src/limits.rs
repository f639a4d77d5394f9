//! The limits every plugin runs under, and the runtime's configuration.

use std::path::PathBuf;
use std::time::Duration;

use wasmeter_core::validate::OutputLimits;

/// Limits applied to each plugin instance.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginLimits {
    /// Longest a single call (`collect`, `diff`, `init`, ...) may run.
    pub call_timeout: Duration,
    /// Largest linear memory a plugin may grow to, in bytes.
    pub memory_bytes: usize,
    /// Bounds on a call's output.
    pub output: OutputLimits,
    /// Consecutive failed calls after which the plugin is quarantined.
    pub quarantine_after: u32,
    /// Distinct topics (other than sample series) one instance may create; the
    /// pipeline refuses more and quarantines the plugin.
    pub max_topics: usize,
    /// Distinct sample series one instance may create; likewise.
    pub max_series: usize,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_millis(200),
            memory_bytes: 64 << 20,
            output: OutputLimits::default(),
            quarantine_after: 5,
            max_topics: 10_000,
            max_series: 10_000,
        }
    }
}

/// How the runtime is set up.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeConfig {
    /// Where compiled components are cached (`None`: in memory only).
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
