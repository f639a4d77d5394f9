//! What readers ask of the supervisor, answered from the view without waiting
//! for a change: the plugin list, one plugin in detail, the control plane's
//! activity, the files hot reload watches; and quarantine, which flips health
//! flags a stuck pipeline does not hold.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::view::ControlStatus;
use super::{ControlError, Supervisor, entry};
use crate::registry::{Origin, PluginDetail, PluginSummary};

impl Supervisor {
    /// Every plugin, by name. Never waits for a change.
    pub async fn list(&self) -> Vec<PluginSummary> {
        let plugins = self.view.plugins();
        // Every instance once, grouped by plugin, rather than a full scan per plugin.
        let mut by_plugin: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for (pipeline, r) in self.shared.monitor.plugin_instances() {
            by_plugin
                .entry(r.name.clone())
                .or_default()
                .push((pipeline, r));
        }
        plugins
            .values()
            .map(|e| e.summary(by_plugin.get(&e.name).map_or(&[], Vec::as_slice)))
            .collect()
    }

    /// The change in progress and the pipelines that have not answered.
    pub fn status(&self) -> ControlStatus {
        self.view.status()
    }

    /// One plugin in detail. Never waits for a change.
    pub async fn inspect(&self, name: &str) -> Result<PluginDetail, ControlError> {
        let plugins = self.view.plugins();
        let entry = entry(&plugins, name)?;
        Ok(entry.detail(&self.instances(name)))
    }

    /// Files that plugins' current versions were read from, with the plugins' names.
    pub async fn watched_files(&self) -> Vec<(PathBuf, String)> {
        self.view
            .plugins()
            .values()
            .filter_map(|e| match &e.current.origin {
                Origin::Path(p) => Some((p.clone(), e.name.clone())),
                _ => None,
            })
            .collect()
    }

    /// Quarantines (`on`) or releases every instance of a plugin. Never waits for
    /// a change: it flips the instances' health flags, which a stuck pipeline's
    /// task does not hold.
    pub async fn set_quarantine(
        &self,
        name: &str,
        on: bool,
    ) -> Result<PluginSummary, ControlError> {
        let plugins = self.view.plugins();
        let entry = entry(&plugins, name)?;
        let instances = self.instances(name);
        for (_, r) in &instances {
            if on {
                r.health.quarantine("quarantined by an admin");
            } else {
                r.health.release();
            }
        }
        tracing::info!(plugin = %name, quarantined = on, instances = instances.len(), "quarantine changed");
        let by_admin = on.then_some("quarantined by an admin");
        self.announce_quarantine(entry, on, by_admin, true);
        Ok(entry.summary(&instances))
    }

    /// Live instances of a plugin, with their pipelines.
    fn instances(&self, name: &str) -> Vec<(String, wasmeter_pipeline::PluginRef)> {
        self.shared
            .monitor
            .plugin_instances()
            .into_iter()
            .filter(|(_, r)| r.name == name)
            .collect()
    }
}
