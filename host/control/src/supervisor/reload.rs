//! Config reload: applies the difference between the running spec and a new one
//! (see [`mod@crate::plan`]), all or nothing.
//!
//! 1. Prepare, touching nothing: compile new and changed plugins; create and
//!    initialise the plugin instances of every new and changed pipeline; create,
//!    initialise and smoke-test the instances that changed plugins swap into the
//!    pipelines that keep running. Any failure refuses the reload (422): every
//!    pipeline keeps running as it was, and the new spec is not recorded, so
//!    the next reload tries it again.
//! 2. Switch: swap changed plugins into the untouched pipelines (a refusal or a
//!    pipeline that does not answer undoes the swaps made so far and refuses the
//!    reload), then stop removed and changed pipelines (drained, final
//!    checkpoint, bounded by `runtime.shutdown_timeout_ms`) and start the new and
//!    changed ones from the prepared instances (changed ones resume from their
//!    checkpoint). A pipeline that then fails to start (its checkpoint or
//!    sources) is started again with its previous definition, is reported in
//!    `failed`, and keeps its previous definition in the recorded spec, so the
//!    next reload tries it again.
//! 3. The spec's fixed settings need a restart: a change there is reported and
//!    not applied, and the recorded spec keeps the running ones, so the change
//!    stays reported until the host restarts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use wasmeter_pipeline::{PipelinePlugins, Replacement};

use super::running::RunningPipeline;
use super::view::Activity;
use super::{ControlError, Inner, Supervisor};
use crate::load::{instantiate_pipeline, load_def};
use crate::plan::{Plan, plan};
use crate::registry::PluginEntry;
use crate::spec::HostSpec;

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
    /// Pipelines that failed to start, with why (they run their previous definition).
    pub failed: BTreeMap<String, String>,
}

/// Everything a reload needs, built before anything running is touched.
struct Prepared {
    /// The registry as it will be.
    plugins: BTreeMap<String, PluginEntry>,
    /// Instances of the pipelines to start.
    pipelines: Vec<(String, PipelinePlugins)>,
    /// Changed plugins: instances for the pipelines that keep running.
    swaps: Vec<(String, Vec<(String, Replacement)>)>,
}

impl Supervisor {
    /// Applies what changed from the running spec to `new`, all or nothing.
    pub async fn reload_config(&self, new: HostSpec) -> Result<ConfigReport, ControlError> {
        let what = Activity::new("reload-config", "");
        self.change(what, move |this, mut inner| async move {
            let result = this.reload_config_in(&mut inner, new).await;
            if let Err(error) = &result {
                tracing::error!(%error, "config reload refused; the running config stays");
            }
            (inner, result)
        })
        .await
    }

    async fn reload_config_in(
        &self,
        inner: &mut Inner,
        mut new: HostSpec,
    ) -> Result<ConfigReport, ControlError> {
        let old = inner.spec.clone();
        let plan = plan(&old, &new);
        new.fixed = old.fixed.clone();
        let prepared = self.prepare_reload(inner, &plan, &new).await?;

        // Switch: swaps first (all undone on a failure), then pipelines.
        let mut report = ConfigReport {
            needs_restart: plan.needs_restart.clone(),
            ..ConfigReport::default()
        };
        let mut swapped: Vec<(PluginEntry, Vec<String>)> = Vec::new();
        for (name, instances) in prepared.swaps {
            // (A plugin an admin unloaded runs nowhere: nothing to swap.)
            let Some(current) = inner.plugins.get(&name) else {
                continue;
            };
            let next = &prepared.plugins[&name];
            match self
                .swap_prepared(inner, current, next, instances, true)
                .await
            {
                Ok(swaps) => swapped.push((
                    current.clone(),
                    swaps.into_iter().map(|s| s.pipeline).collect(),
                )),
                Err(error) => {
                    for (old_entry, pipelines) in &swapped {
                        self.undo(inner, old_entry, pipelines).await;
                    }
                    return Err(ControlError::Config(format!(
                        "plugins.{name}: {error}; nothing was applied"
                    )));
                }
            }
        }
        let deadline = tokio::time::Instant::now() + self.stop_timeout;
        // On standby, only the pipelines this host produces run again; the
        // others (and new ones) start when it is told it produces them.
        let was_running: Vec<String> = inner.pipelines.keys().cloned().collect();
        for name in plan.pipelines_removed.iter().chain(&plan.pipelines_changed) {
            if let Some(p) = inner.pipelines.remove(name) {
                p.stop(&self.shared, name, deadline).await;
            }
        }
        // A removed pipeline's prefixes and series are free for others.
        // (A shard's owner is its sharded pipeline: released when no shard of it
        // is left in the new spec.)
        for name in &plan.pipelines_removed {
            let owner = old.pipelines[name].settings.owner();
            if !new.pipelines.values().any(|d| d.settings.owner() == owner) {
                self.shared.owners.release(owner);
            }
        }
        let previous = std::mem::replace(&mut inner.plugins, prepared.plugins);
        let batch = prepared
            .pipelines
            .into_iter()
            .filter(|(name, _)| !inner.standby || was_running.contains(name))
            .collect();
        for (name, running) in RunningPipeline::launch_batch(&self.shared, &new, batch).await {
            match running {
                Ok(p) => {
                    inner.pipelines.insert(name.clone(), p);
                }
                Err(e) => {
                    let error = format!("{e:#}");
                    tracing::error!(pipeline = %name, %error, "pipeline not started");
                    report.failed.insert(format!("pipelines.{name}"), error);
                    self.fall_back(inner, &old, &previous, &mut new, &name)
                        .await;
                    continue;
                }
            }
            if plan.pipelines_changed.contains(&name) {
                report.restarted.push(name);
            } else {
                report.started.push(name);
            }
        }
        report.stopped = plan.pipelines_removed.clone();
        report.plugins_added = plan.plugins_added.clone();
        report.plugins_removed = plan.plugins_removed.clone();
        report.plugins_updated = plan.plugins_changed.clone();
        for entry in plan.plugins_removed.iter().filter_map(|n| previous.get(n)) {
            self.notice(entry, "unloaded", None);
        }
        for (name, event) in plan
            .plugins_added
            .iter()
            .map(|n| (n, "loaded"))
            .chain(plan.plugins_changed.iter().map(|n| (n, "updated")))
        {
            self.notice(&inner.plugins[name], event, None);
        }
        inner.spec = new;
        tracing::info!(?report, "config reloaded");
        Ok(report)
    }

    /// Step 1: everything that can fail, with nothing running touched.
    async fn prepare_reload(
        &self,
        inner: &Inner,
        plan: &Plan,
        new: &HostSpec,
    ) -> Result<Prepared, ControlError> {
        let refuse = |what: String| ControlError::Config(format!("{what}; nothing was applied"));
        let mut plugins = inner.plugins.clone();
        for name in plan.plugins_added.iter().chain(&plan.plugins_changed) {
            let mut entry = load_def(&self.shared.runtime, &new.origin, name, &new.plugins[name])
                .await
                .map_err(|e| refuse(format!("{e:#}")))?;
            match inner.plugins.get(name) {
                Some(current) => {
                    let mut next = current.clone();
                    next.advance(entry.current);
                    next.config = entry.config;
                    next.limits = entry.limits;
                    plugins.insert(name.clone(), next);
                }
                None => {
                    entry.swaps = 0;
                    plugins.insert(name.clone(), entry);
                }
            }
        }
        for name in &plan.plugins_removed {
            plugins.remove(name);
        }
        // A plugin of the file an admin unloaded is loaded again.
        for (name, def) in &new.plugins {
            if !plugins.contains_key(name) {
                let entry = load_def(&self.shared.runtime, &new.origin, name, def)
                    .await
                    .map_err(|e| refuse(format!("{e:#}")))?;
                plugins.insert(name.clone(), entry);
            }
        }
        let mut pipelines = Vec::new();
        for name in plan.pipelines_to_start() {
            let def = &new.pipelines[&name];
            let instances = instantiate_pipeline(&plugins, &new.origin, &name, def)
                .await
                .map_err(|e| refuse(format!("{e:#}")))?;
            pipelines.push((name, instances));
        }
        let mut swaps = Vec::new();
        for name in &plan.plugins_changed {
            let users: Vec<String> = inner
                .users(name)
                .into_iter()
                .filter(|p| plan.keeps(p))
                .collect();
            let instances = self
                .prepare_all(&plugins[name], &users)
                .await
                .map_err(|e| refuse(format!("plugins.{name}: {e}")))?;
            swaps.push((name.clone(), instances));
        }
        Ok(Prepared {
            plugins,
            pipelines,
            swaps,
        })
    }

    /// A pipeline that failed to start after the switch began: start it again as
    /// it was, and record its previous definition so the next reload retries.
    async fn fall_back(
        &self,
        inner: &mut Inner,
        old: &HostSpec,
        previous: &BTreeMap<String, PluginEntry>,
        new: &mut HostSpec,
        name: &str,
    ) {
        let Some(def) = old.pipelines.get(name) else {
            new.pipelines.remove(name);
            return;
        };
        new.pipelines.insert(name.to_string(), def.clone());
        for source in &def.sources {
            if let Some(s) = old.sources.get(source) {
                new.sources.insert(source.clone(), s.clone());
            }
        }
        match RunningPipeline::start(&self.shared, old, previous, name, def).await {
            Ok(p) => {
                tracing::warn!(pipeline = %name, "pipeline runs its previous definition");
                inner.pipelines.insert(name.to_string(), p);
            }
            Err(e) => {
                tracing::error!(pipeline = %name, error = %format!("{e:#}"), "pipeline cannot start with its previous definition either")
            }
        }
    }
}
