//! What the control plane runs, typed: plugins, sources and pipelines. The
//! caller (the config file's parser) builds and validates it; the control plane
//! never sees the file's syntax, and a config reload is the difference between
//! two of these (see [`mod@crate::plan`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use wasmeter_pipeline::PipelineConfig;
use wasmeter_plugin::PluginLimits;
use wasmeter_source::FileSourceConfig;

/// Everything a host runs, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostSpec {
    /// Plugins by the host's name for them.
    pub plugins: BTreeMap<String, PluginDef>,
    /// Sources by name.
    pub sources: BTreeMap<String, SourceDef>,
    /// Pipelines by name.
    pub pipelines: BTreeMap<String, PipelineDef>,
    /// Settings read once at start, whose change needs a restart, by section, in
    /// a form that compares: a reload reports the sections that differ, applies
    /// none of them, and keeps reporting them until the host restarts.
    pub fixed: BTreeMap<String, String>,
    /// Where the spec came from (the config file), for messages.
    pub origin: String,
}

/// A plugin: its code, its configuration and its limits.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginDef {
    /// Where its component comes from.
    pub code: PluginCode,
    /// Its configuration (dotted keys).
    pub config: Vec<(String, String)>,
    /// Its limits where they differ from the runtime's.
    pub limits: LimitOverrides,
}

/// Where a plugin's component comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginCode {
    /// A component file (an absolute path; hot reload watches it).
    File(PathBuf),
    /// A component shipped inside the binary.
    Builtin {
        /// Its name (`csv-collector`).
        name: String,
        /// The component.
        bytes: &'static [u8],
    },
}

/// A plugin's limits where they differ from the runtime's (`None`: the
/// runtime's). Kept as overrides, not resolved values, so that the runtime's
/// limits (fixed at start) apply whatever a reloaded file says about them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimitOverrides {
    /// Longest a call may run.
    pub call_timeout: Option<Duration>,
    /// Linear-memory cap.
    pub memory_bytes: Option<usize>,
    /// Distinct topics (other than sample series) it may create.
    pub max_topics: Option<usize>,
    /// Distinct sample series it may create.
    pub max_series: Option<usize>,
    /// Log bytes per second.
    pub log_bytes_per_sec: Option<u64>,
    /// Largest state it may export or import.
    pub state_bytes: Option<usize>,
}

impl LimitOverrides {
    /// `limits` with these overrides.
    pub fn apply(&self, mut limits: PluginLimits) -> PluginLimits {
        if let Some(t) = self.call_timeout {
            limits.call_timeout = t;
        }
        if let Some(n) = self.memory_bytes {
            limits.memory_bytes = n;
        }
        if let Some(n) = self.max_topics {
            limits.max_topics = n;
        }
        if let Some(n) = self.max_series {
            limits.max_series = n;
        }
        if let Some(n) = self.log_bytes_per_sec {
            limits.log_bytes_per_sec = n;
        }
        if let Some(n) = self.state_bytes {
            limits.state_bytes = n;
        }
        limits
    }
}

/// A source of input.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceDef {
    /// Files appended by producers (patterns absolute).
    File(FileSourceConfig),
    /// /proc, read every `interval`.
    System {
        /// How often it is read.
        interval: Duration,
    },
}

/// A pipeline: its sources, its plugins in order, and how it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineDef {
    /// Sources feeding it (each source feeds one pipeline).
    pub sources: Vec<String>,
    /// Its collector plugin.
    pub collector: String,
    /// Metric plugins, in order.
    pub metrics: Vec<String>,
    /// Its delta plugin, if any.
    pub delta: Option<String>,
    /// How it runs: ticks, checkpoint pacing, owned topic prefixes (normalised),
    /// topic quota, labels. The checkpoint path is the control plane's choice.
    pub settings: PipelineConfig,
}

impl PipelineDef {
    /// The plugins it runs, with the role each has.
    pub fn plugins(&self) -> impl Iterator<Item = (&'static str, &String)> {
        std::iter::once(("collector", &self.collector))
            .chain(self.metrics.iter().map(|m| ("metrics", m)))
            .chain(self.delta.iter().map(|d| ("delta", d)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_what_they_set() {
        let base = PluginLimits::default();
        let limits = LimitOverrides {
            max_series: Some(7),
            call_timeout: Some(Duration::from_millis(9)),
            ..LimitOverrides::default()
        }
        .apply(base.clone());
        assert_eq!(limits.max_series, 7);
        assert_eq!(limits.call_timeout, Duration::from_millis(9));
        assert_eq!(limits.max_topics, base.max_topics);
        assert_eq!(limits.state_bytes, base.state_bytes);
        assert_eq!(LimitOverrides::default().apply(base.clone()), base);
    }
}
