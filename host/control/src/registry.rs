//! The plugin registry: every named plugin the host knows, the version running
//! now, the versions it can roll back to, and what went wrong last.
//!
//! A name (the config key, or the name given to `load`) is what pipelines refer
//! to; each pipeline runs its own instance of the current version. The registry
//! holds compiled components, not instances: instances live in the pipelines'
//! tasks (see [`crate::supervisor`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use wasmeter_core::plugin::PluginKind;
use wasmeter_pipeline::{PluginRef, PluginSpec};
use wasmeter_plugin::{LoadedPlugin, PluginLimits, World, unix_now_ms};

/// Versions kept for `rollback`, per plugin.
pub const HISTORY: usize = 8;

/// Where a version's bytes came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A file (hot reload watches it).
    Path(PathBuf),
    /// A component shipped inside the binary.
    Builtin(String),
    /// Bytes uploaded through the admin API.
    Upload,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Path(p) => write!(f, "{}", p.display()),
            Origin::Builtin(b) => write!(f, "builtin:{b}"),
            Origin::Upload => f.write_str("upload"),
        }
    }
}

/// The config and limits a version ran with, kept with it in the history so a
/// rollback restores them.
#[derive(Clone)]
pub struct Settings {
    /// Its configuration (dotted keys).
    pub config: Vec<(String, String)>,
    /// Its limits.
    pub limits: PluginLimits,
}

/// One compiled version of a plugin.
#[derive(Clone)]
pub struct Version {
    /// The compiled, described component.
    pub loaded: LoadedPlugin,
    /// Where it came from.
    pub origin: Origin,
    /// When it was loaded (Unix ms).
    pub loaded_at_ms: i64,
    /// The config and limits it ran with, once it is in the history; `None` for
    /// the current version (the entry's `config` and `limits` apply).
    pub settings: Option<Settings>,
}

impl Version {
    /// A version loaded now.
    pub fn new(loaded: LoadedPlugin, origin: Origin) -> Self {
        Self {
            loaded,
            origin,
            loaded_at_ms: unix_now_ms(),
            settings: None,
        }
    }

    fn info(&self) -> VersionInfo {
        let meta = self.loaded.meta();
        VersionInfo {
            version: meta.info.version.clone(),
            hash: meta.hash_hex(),
            origin: self.origin.to_string(),
            loaded_at_ms: self.loaded_at_ms,
            config: self
                .settings
                .iter()
                .flat_map(|s| s.config.iter().cloned())
                .collect(),
        }
    }
}

/// A named plugin.
#[derive(Clone)]
pub struct PluginEntry {
    /// The host's name for it.
    pub name: String,
    /// Collector, delta or metric: fixed for the name's lifetime.
    pub kind: PluginKind,
    /// The version pipelines run.
    pub current: Version,
    /// Earlier versions, oldest first (at most [`HISTORY`]).
    pub previous: Vec<Version>,
    /// Its configuration (dotted keys).
    pub config: Vec<(String, String)>,
    /// Its limits.
    pub limits: PluginLimits,
    /// The last failed attempt to change it (Unix ms, message); cleared by a success.
    pub last_error: Option<(i64, String)>,
    /// Successful swaps (reloads, swaps, rollbacks).
    pub swaps: u64,
}

impl PluginEntry {
    /// A plugin whose first version is `current`.
    pub fn new(
        name: &str,
        current: Version,
        config: Vec<(String, String)>,
        limits: PluginLimits,
    ) -> Self {
        Self {
            name: name.to_string(),
            kind: current.loaded.meta().info.kind,
            current,
            previous: Vec::new(),
            config,
            limits,
            last_error: None,
            swaps: 0,
        }
    }

    /// The current version as a spec for pipeline instances of world `W`, or why not.
    pub fn spec<W: World>(&self) -> Result<PluginSpec<W>, String> {
        let plugin = W::from_loaded(self.current.loaded.clone()).ok_or_else(|| {
            format!(
                "plugin `{}` is a {} plugin, not a {}",
                self.name,
                self.kind,
                W::KIND
            )
        })?;
        Ok(PluginSpec {
            name: self.name.clone(),
            plugin,
            config: self.config.clone(),
            limits: self.limits.clone(),
        })
    }

    /// Makes `version` current; the old one, with the config and limits it ran
    /// with, becomes the newest rollback target.
    pub fn advance(&mut self, version: Version) {
        let mut old = std::mem::replace(&mut self.current, version);
        old.settings = Some(Settings {
            config: self.config.clone(),
            limits: self.limits.clone(),
        });
        self.previous.push(old);
        if self.previous.len() > HISTORY {
            self.previous.remove(0);
        }
        self.succeeded();
    }

    /// Makes the newest rollback target current again, with the config and limits
    /// it ran with. `false` when there is none.
    pub fn roll_back(&mut self) -> bool {
        let Some(mut previous) = self.previous.pop() else {
            return false;
        };
        if let Some(settings) = previous.settings.take() {
            self.config = settings.config;
            self.limits = settings.limits;
        }
        self.current = previous;
        self.succeeded();
        true
    }

    /// Records a successful change.
    pub fn succeeded(&mut self) {
        self.swaps += 1;
        self.last_error = None;
    }

    /// Records a failed attempt; the current version keeps running.
    pub fn failed(&mut self, message: &str) {
        self.last_error = Some((unix_now_ms(), message.to_string()));
    }

    /// What `list` shows, given the live instances of this plugin.
    pub fn summary(&self, instances: &[(String, PluginRef)]) -> PluginSummary {
        let meta = self.current.loaded.meta();
        let health: Vec<_> = instances.iter().map(|(_, r)| r.health.snapshot()).collect();
        let state = if health.iter().any(|h| h.quarantined) {
            PluginState::Quarantined
        } else if self.last_error.is_some() {
            PluginState::Failed
        } else if instances.is_empty() {
            PluginState::Unused
        } else {
            PluginState::Active
        };
        PluginSummary {
            name: self.name.clone(),
            kind: self.kind.to_string(),
            plugin: meta.info.name.clone(),
            version: meta.info.version.clone(),
            state,
            hash: meta.hash_hex(),
            origin: self.current.origin.to_string(),
            loaded_at_ms: self.current.loaded_at_ms,
            pipelines: instances.iter().map(|(p, _)| p.clone()).collect(),
            calls: health.iter().map(|h| h.calls).sum(),
            errors: health.iter().map(|h| h.failures).sum(),
            swaps: self.swaps,
            rollback_versions: self.previous.len(),
            last_error: self
                .last_error
                .as_ref()
                .map(|(_, m)| m.clone())
                .or_else(|| health.iter().find_map(|h| h.last_error.clone())),
        }
    }

    /// What `inspect` shows.
    pub fn detail(&self, instances: &[(String, PluginRef)]) -> PluginDetail {
        let meta = self.current.loaded.meta();
        PluginDetail {
            summary: self.summary(instances),
            description: meta.info.description.clone(),
            emits: meta.info.emits.clone(),
            stateful: meta.info.stateful,
            contract: meta.contract.version().to_string(),
            size_bytes: meta.size_bytes,
            config: self.config.iter().cloned().collect(),
            call_timeout_ms: self.limits.call_timeout.as_millis() as u64,
            memory_limit_bytes: self.limits.memory_bytes,
            last_error_at_ms: self.last_error.as_ref().map(|(at, _)| *at),
            history: self.previous.iter().rev().map(Version::info).collect(),
            instances: instances
                .iter()
                .map(|(pipeline, r)| {
                    let h = r.health.snapshot();
                    InstanceInfo {
                        pipeline: pipeline.clone(),
                        role: r.role.to_string(),
                        calls: h.calls,
                        failures: h.failures,
                        rebuilds: h.rebuilds,
                        quarantined: h.quarantined,
                        busy_seconds: h.busy.as_secs_f64(),
                        last_error: h.last_error,
                    }
                })
                .collect(),
        }
    }
}

/// A plugin's state as `list` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginState {
    /// Running in at least one pipeline.
    Active,
    /// At least one instance is quarantined: its calls fail at once.
    Quarantined,
    /// The last attempt to change it failed; the previous version still runs.
    Failed,
    /// Loaded, used by no pipeline.
    Unused,
}

impl std::fmt::Display for PluginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Active => "active",
            Self::Quarantined => "quarantined",
            Self::Failed => "failed",
            Self::Unused => "unused",
        })
    }
}

/// One line of `plugin list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginSummary {
    /// The host's name for it.
    pub name: String,
    /// collector, delta or metric.
    pub kind: String,
    /// The plugin's own name.
    pub plugin: String,
    /// The plugin's version (its self-description).
    pub version: String,
    /// active, quarantined, failed or unused.
    pub state: PluginState,
    /// SHA-256 of the component (hex).
    pub hash: String,
    /// Where the current version came from.
    pub origin: String,
    /// When the current version was loaded (Unix ms).
    pub loaded_at_ms: i64,
    /// Pipelines running it.
    pub pipelines: Vec<String>,
    /// Calls over all its instances (since their last swap).
    pub calls: u64,
    /// Failed calls over all its instances.
    pub errors: u64,
    /// Successful swaps.
    pub swaps: u64,
    /// Versions available to `rollback`.
    pub rollback_versions: usize,
    /// The last failure: a refused change, or else a failed call.
    pub last_error: Option<String>,
}

/// `plugin inspect`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginDetail {
    /// What `list` shows.
    #[serde(flatten)]
    pub summary: PluginSummary,
    /// The plugin's description of itself.
    pub description: String,
    /// Sample names it says it emits.
    pub emits: Vec<String>,
    /// Whether it keeps state that carries over swaps and restarts.
    pub stateful: bool,
    /// The contract version it was built against (`0.2.0`, `0.1.0`).
    #[serde(default)]
    pub contract: String,
    /// Size of the component.
    pub size_bytes: usize,
    /// Its configuration.
    pub config: BTreeMap<String, String>,
    /// Per-call deadline.
    pub call_timeout_ms: u64,
    /// Memory cap per instance.
    pub memory_limit_bytes: usize,
    /// When the last failure happened (Unix ms).
    pub last_error_at_ms: Option<i64>,
    /// Versions to roll back to, newest first.
    pub history: Vec<VersionInfo>,
    /// Its instances.
    pub instances: Vec<InstanceInfo>,
}

/// An earlier version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The plugin's version.
    pub version: String,
    /// SHA-256 (hex).
    pub hash: String,
    /// Where it came from.
    pub origin: String,
    /// When it was loaded (Unix ms).
    pub loaded_at_ms: i64,
    /// The config it ran with (a rollback restores it).
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

/// One pipeline's instance of a plugin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceInfo {
    /// The pipeline.
    pub pipeline: String,
    /// Its role there.
    pub role: String,
    /// Calls since it was swapped in.
    pub calls: u64,
    /// Failed calls.
    pub failures: u64,
    /// Rebuilds after traps, timeouts or OOM.
    pub rebuilds: u64,
    /// Quarantined now.
    pub quarantined: bool,
    /// Time spent inside the plugin.
    pub busy_seconds: f64,
    /// The last failed call.
    pub last_error: Option<String>,
}
