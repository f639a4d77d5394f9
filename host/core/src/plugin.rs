//! A plugin's description of itself.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The three kinds of plugin, one per WIT world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// Turns appended bytes into samples and topic updates (world `collector`).
    Collector,
    /// Computes the change between two topic states (world `delta`).
    Delta,
    /// Derives samples from samples and ticks (world `metric`).
    Metric,
}

impl PluginKind {
    /// All kinds, in a stable order.
    pub const ALL: [PluginKind; 3] = [PluginKind::Collector, PluginKind::Delta, PluginKind::Metric];

    /// The WIT world name of this kind.
    pub fn world(self) -> &'static str {
        match self {
            PluginKind::Collector => "collector",
            PluginKind::Delta => "delta",
            PluginKind::Metric => "metric",
        }
    }

    /// The interface (without package and version) that components of this kind export.
    pub fn interface(self) -> &'static str {
        match self {
            PluginKind::Collector => "collect",
            PluginKind::Delta => "diff",
            PluginKind::Metric => "derive",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.world())
    }
}

impl FromStr for PluginKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PluginKind::ALL
            .into_iter()
            .find(|k| k.world() == s)
            .ok_or_else(|| {
                format!("unknown plugin kind `{s}` (expected collector, delta or metric)")
            })
    }
}

/// What a plugin says about itself (`describe`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// Short identifier, `[a-z0-9-]+`.
    pub name: String,
    /// The plugin's own semantic version.
    pub version: String,
    /// Which world it implements.
    pub kind: PluginKind,
    /// One line for humans.
    pub description: String,
    /// Metric names and topic patterns it may emit.
    pub emits: Vec<String>,
    /// Whether it carries state across a hot swap.
    pub stateful: bool,
}
