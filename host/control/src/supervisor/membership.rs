//! Plugins joining and leaving: load and unload. Like every change, each runs
//! through [`Supervisor::change`]; the `_in` functions do the work under the lock.

use std::collections::BTreeMap;

use wasmeter_core::plugin::PluginKind;

use super::outcome::{pipeline_swap, report, sent};
use super::view::Activity;
use super::{ControlError, Inner, Supervisor, SwapReport, WasmSource};
use crate::registry::PluginEntry;

impl Supervisor {
    /// Adds a plugin under a new name; a metric or delta plugin joins `pipelines`.
    pub async fn load(
        &self,
        name: &str,
        source: WasmSource,
        config: Option<BTreeMap<String, String>>,
        pipelines: Vec<String>,
    ) -> Result<SwapReport, ControlError> {
        let name = name.to_string();
        self.change(
            Activity::new("load", &name),
            move |this, mut inner| async move {
                let result = this
                    .load_in(&mut inner, &name, source, config, pipelines)
                    .await;
                // A refused load is announced under the name it was to have,
                // unless that is another plugin's.
                if let Err(error) = &result
                    && !inner.plugins.contains_key(&name)
                {
                    tracing::error!(plugin = %name, %error, "plugin load refused");
                    this.notice_failed_load(&name, &error.to_string());
                }
                (inner, result)
            },
        )
        .await
    }

    async fn load_in(
        &self,
        inner: &mut Inner,
        name: &str,
        source: WasmSource,
        config: Option<BTreeMap<String, String>>,
        pipelines: Vec<String>,
    ) -> Result<SwapReport, ControlError> {
        if inner.plugins.contains_key(name) {
            return Err(ControlError::Conflict(format!(
                "a plugin named `{name}` exists; swap it or choose another name"
            )));
        }
        for p in &pipelines {
            inner.pipeline(p)?;
        }
        let (bytes, origin) = self.read(source).await?;
        let version = self.compile(name, bytes, origin, None).await?;
        let entry = PluginEntry::new(
            name,
            version,
            config.unwrap_or_default().into_iter().collect(),
            self.shared.runtime.limits().clone(),
        );
        if entry.kind == PluginKind::Collector && !pipelines.is_empty() {
            return Err(ControlError::Conflict(format!(
                "`{name}` is a collector; a pipeline has one collector: swap it instead"
            )));
        }
        let replacements = self.prepare_all(&entry, &pipelines).await?;
        let mut report = report(&entry, None, Vec::new());
        for (pipeline, replacement) in replacements {
            let p = &inner.pipelines[&pipeline];
            let error = match self
                .send_swap(p, &pipeline, replacement, true, sent(&entry))
                .await
            {
                Ok(Ok(swapped)) => {
                    report.pipelines.push(pipeline_swap(&pipeline, &swapped));
                    continue;
                }
                Ok(Err(e)) => ControlError::Conflict(e.to_string()),
                Err(e) => e,
            };
            // Take it out of the pipelines it already joined.
            for done in &report.pipelines {
                let p = &inner.pipelines[&done.pipeline];
                let e = match self.send_remove(p, &done.pipeline, name).await {
                    Ok(Ok(_)) => continue,
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                };
                tracing::error!(plugin = %name, pipeline = %done.pipeline, error = %e, "could not take a refused plugin out again");
            }
            return Err(error);
        }
        self.notice(&entry, "loaded", None);
        inner.plugins.insert(name.to_string(), entry);
        Ok(report)
    }

    /// Takes a plugin out of every pipeline and forgets it. Refused for a collector
    /// a pipeline runs.
    pub async fn unload(&self, name: &str) -> Result<(), ControlError> {
        let name = name.to_string();
        self.change(
            Activity::new("unload", &name),
            move |this, mut inner| async move {
                let result = this.unload_in(&mut inner, &name).await;
                (inner, result)
            },
        )
        .await
    }

    /// Takes the plugin out of every pipeline running it, then forgets it. If a
    /// pipeline refuses or does not answer, the plugin stays loaded (in the
    /// pipelines not yet done); unloading again finishes the job.
    pub(super) async fn unload_in(
        &self,
        inner: &mut Inner,
        name: &str,
    ) -> Result<(), ControlError> {
        let entry = inner.entry(name)?.clone();
        let users = inner.users(name);
        if entry.kind == PluginKind::Collector && !users.is_empty() {
            return Err(ControlError::Conflict(format!(
                "plugin `{name}` is the collector of pipeline(s) {}; swap it or remove the pipeline",
                users.join(", ")
            )));
        }
        for pipeline in users {
            self.send_remove(&inner.pipelines[&pipeline], &pipeline, name)
                .await?
                .map_err(|e| ControlError::Conflict(e.to_string()))?;
        }
        inner.plugins.remove(name);
        self.notice(&entry, "unloaded", None);
        Ok(())
    }
}
