//! Config reload: applies the difference between the running config and the file
//! now on disk, touching nothing else.
//!
//! - Pipelines whose section or sources changed are stopped (drained, final
//!   checkpoint) and started again from that checkpoint, so offsets and plugin
//!   state carry over; removed ones are stopped, new ones started.
//! - Plugins whose section changed are compiled first (any failure refuses the
//!   whole reload, nothing is applied) and swapped into the untouched pipelines that
//!   run them, state carried over.
//! - `data_dir`, `[server]`, `[runtime]`, `[state]` and `[admin]` need a restart;
//!   a change there is reported and not applied.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::running::RunningPipeline;
use super::{AdminError, Supervisor};
use crate::config::Config;
use crate::plugins::load_section;
use crate::registry::PluginEntry;

/// Top-level keys whose changes need a restart.
const RESTART_ONLY: [&str; 5] = ["data_dir", "server", "runtime", "state", "admin"];

/// What a config reload did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConfigReport {
    /// Pipelines started (new in the file).
    pub started: Vec<String>,
    /// Pipelines stopped (gone from the file).
    pub stopped: Vec<String>,
    /// Pipelines restarted because they or their sources changed.
    pub restarted: Vec<String>,
    /// Plugins added.
    pub plugins_added: Vec<String>,
    /// Plugins removed.
    pub plugins_removed: Vec<String>,
    /// Plugins whose new version or config was swapped in.
    pub plugins_updated: Vec<String>,
    /// Changed sections that need a restart (not applied).
    pub needs_restart: Vec<String>,
    /// Pipelines that failed to start, with why.
    pub failed: BTreeMap<String, String>,
}

impl Supervisor {
    /// Reads the config file again and applies what changed.
    pub async fn reload_config(&self) -> Result<ConfigReport, AdminError> {
        let Some(path) = self.shared.config_path.clone() else {
            return Err(AdminError::Conflict(
                "the built-in demo configuration cannot be reloaded; start with --config FILE"
                    .into(),
            ));
        };
        let mut new = tokio::task::spawn_blocking(move || Config::load(&path))
            .await
            .map_err(|e| AdminError::Config(format!("config task: {e}")))?
            .map_err(|e| AdminError::Config(e.to_string()))?;
        let mut inner = self.inner.lock().await;
        let old = inner.config.clone();
        let mut report = ConfigReport::default();

        // Restart-only sections keep their running values (and their old text, so
        // the next reload still sees the pending change).
        for key in RESTART_ONLY {
            if old.raw.get(key) != new.raw.get(key) {
                report.needs_restart.push(key.to_string());
                match old.raw.get(key) {
                    Some(v) => new.raw.insert(key.to_string(), v.clone()),
                    None => new.raw.remove(key),
                };
            }
        }
        (new.data_dir, new.server, new.runtime, new.state, new.admin) = (
            old.data_dir.clone(),
            old.server.clone(),
            old.runtime.clone(),
            old.state.clone(),
            old.admin.clone(),
        );

        // Compile every new or changed plugin before touching anything.
        let mut loaded: BTreeMap<String, PluginEntry> = BTreeMap::new();
        for (name, section) in &new.plugins {
            if old.plugins.get(name) != Some(section) {
                let entry = load_section(&self.shared.runtime, &new, name, section)
                    .await
                    .map_err(|e| AdminError::Config(format!("{e:#}")))?;
                loaded.insert(name.clone(), entry);
            }
        }

        // Pipelines to stop: gone, or changed themselves or in their sources.
        let mut restart = Vec::new();
        for (name, running) in &inner.pipelines {
            match new.pipelines.get(name) {
                None => report.stopped.push(name.clone()),
                Some(section) => {
                    let sources_changed = section.sources.len() != running.sources.len()
                        || section
                            .sources
                            .iter()
                            .any(|s| running.sources.get(s) != new.sources.get(s));
                    if *section != running.section || sources_changed {
                        restart.push(name.clone());
                    }
                }
            }
        }
        for name in report.stopped.iter().chain(&restart) {
            if let Some(p) = inner.pipelines.remove(name) {
                p.stop(&self.shared, name).await;
            }
        }

        // Plugins: removed ones leave (first out of any pipeline still running them),
        // changed ones are swapped in, new ones join the registry.
        for name in old.plugins.keys().filter(|n| !new.plugins.contains_key(*n)) {
            match self.unload_in(&mut inner, name).await {
                Ok(()) => report.plugins_removed.push(name.clone()),
                Err(e) => {
                    report
                        .failed
                        .insert(format!("plugins.{name}"), e.to_string());
                }
            }
        }
        for (name, mut entry) in loaded {
            match inner.plugins.get(&name) {
                Some(current) => {
                    let mut next = current.clone();
                    next.advance(entry.current);
                    next.config = entry.config;
                    next.limits = entry.limits;
                    let result = self.apply(&mut inner, next, true).await;
                    match self.finish(&mut inner, &name, "updated", result) {
                        Ok(_) => report.plugins_updated.push(name),
                        Err(e) => {
                            report
                                .failed
                                .insert(format!("plugins.{name}"), e.to_string());
                        }
                    }
                }
                None => {
                    entry.swaps = 0;
                    self.notice(&entry, "loaded", None);
                    inner.plugins.insert(name.clone(), entry);
                    report.plugins_added.push(name);
                }
            }
        }

        // Start new and changed pipelines (changed ones resume from their checkpoint).
        for (name, section) in &new.pipelines {
            if inner.pipelines.contains_key(name) {
                continue;
            }
            match RunningPipeline::start(&self.shared, &new, &inner.plugins, name, section).await {
                Ok(p) => {
                    inner.pipelines.insert(name.clone(), p);
                    if restart.contains(name) {
                        report.restarted.push(name.clone());
                    } else {
                        report.started.push(name.clone());
                    }
                }
                Err(e) => {
                    tracing::error!(pipeline = %name, error = %format!("{e:#}"), "pipeline not started");
                    report
                        .failed
                        .insert(format!("pipelines.{name}"), format!("{e:#}"));
                }
            }
        }
        inner.config = new;
        tracing::info!(?report, "config reloaded");
        Ok(report)
    }
}
