//! Changes to plugins: swap, reload, rollback, load and unload. Each public one
//! runs through [`Supervisor::change`] (bounded wait for the lock, a task of its
//! own); the `_in` functions do the work under the lock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use wasmeter_core::plugin::PluginKind;
use wasmeter_pipeline::Replacement;

use super::outcome::{pipeline_swap, report, sent, unchanged};
use super::view::Activity;
use super::{ControlError, Inner, PipelineSwap, Supervisor, SwapReport, WasmSource};
use crate::load::{load_version, prepare};
use crate::registry::{Origin, PluginEntry, Version};

impl Supervisor {
    /// Replaces the plugin `name` with the component from `source` in every
    /// pipeline that runs it, optionally with a new config. The state carries over
    /// unless `fresh_state`.
    pub async fn swap(
        &self,
        name: &str,
        source: WasmSource,
        config: Option<BTreeMap<String, String>>,
        fresh_state: bool,
    ) -> Result<SwapReport, ControlError> {
        let name = name.to_string();
        self.change(
            Activity::new("swap", &name),
            move |this, mut inner| async move {
                let result = this
                    .swap_in(&mut inner, &name, source, config, fresh_state)
                    .await;
                (inner, result)
            },
        )
        .await
    }

    async fn swap_in(
        &self,
        inner: &mut Inner,
        name: &str,
        source: WasmSource,
        config: Option<BTreeMap<String, String>>,
        fresh_state: bool,
    ) -> Result<SwapReport, ControlError> {
        let entry = inner.entry(name)?.clone();
        let result = async {
            let (bytes, origin) = self.read(source).await?;
            let version = self.compile(name, bytes, origin, Some(entry.kind)).await?;
            let mut next = entry.clone();
            next.advance(version);
            if let Some(config) = config {
                next.config = config.into_iter().collect();
            }
            self.apply(inner, next, !fresh_state).await
        }
        .await;
        self.finish(inner, name, "swapped", result)
    }

    /// Reads the plugin's file again and swaps it in if its bytes changed.
    pub async fn reload(&self, name: &str) -> Result<SwapReport, ControlError> {
        let name = name.to_string();
        self.change(
            Activity::new("reload", &name),
            move |this, mut inner| async move {
                let result = this.reload_in(&mut inner, &name).await;
                (inner, result)
            },
        )
        .await
    }

    async fn reload_in(&self, inner: &mut Inner, name: &str) -> Result<SwapReport, ControlError> {
        let entry = inner.entry(name)?.clone();
        let Origin::Path(path) = &entry.current.origin else {
            return Err(ControlError::Conflict(format!(
                "plugin `{name}` runs {}, not a file; swap it to a file instead",
                entry.current.origin
            )));
        };
        let result = async {
            let bytes = tokio::fs::read(path).await.map_err(|e| {
                ControlError::Refused(format!("cannot read {}: {e}", path.display()))
            })?;
            if wasmeter_plugin::content_hash(&bytes) == entry.current.loaded.meta().hash {
                return Ok(None);
            }
            let version = self
                .compile(name, bytes, Origin::Path(path.clone()), Some(entry.kind))
                .await?;
            let mut next = entry.clone();
            next.advance(version);
            self.apply(inner, next, true).await.map(Some)
        }
        .await;
        match result {
            Ok(None) => Ok(unchanged(&entry)),
            Ok(Some(report)) => self.finish(inner, name, "reloaded", Ok(report)),
            Err(e) => self.finish(inner, name, "reloaded", Err(e)),
        }
    }

    /// Goes back to the previous version, with the config it ran with; the state
    /// carries over.
    pub async fn rollback(&self, name: &str) -> Result<SwapReport, ControlError> {
        self.rollback_with(name, false).await
    }

    /// Goes back to the previous version, with the config it ran with; the state
    /// carries over unless `fresh_state`.
    pub async fn rollback_with(
        &self,
        name: &str,
        fresh_state: bool,
    ) -> Result<SwapReport, ControlError> {
        let name = name.to_string();
        self.change(
            Activity::new("rollback", &name),
            move |this, mut inner| async move {
                let result = this.rollback_in(&mut inner, &name, fresh_state).await;
                (inner, result)
            },
        )
        .await
    }

    async fn rollback_in(
        &self,
        inner: &mut Inner,
        name: &str,
        fresh_state: bool,
    ) -> Result<SwapReport, ControlError> {
        let mut next = inner.entry(name)?.clone();
        if !next.roll_back() {
            return Err(ControlError::Conflict(format!(
                "plugin `{name}` has no previous version to roll back to"
            )));
        }
        let result = self.apply(inner, next, !fresh_state).await;
        self.finish(inner, name, "rolled-back", result)
    }

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

    /// Reads a new version's bytes; a file must be inside the plugins directory.
    async fn read(&self, source: WasmSource) -> Result<(Vec<u8>, Origin), ControlError> {
        match source {
            WasmSource::Bytes(bytes) => Ok((bytes, Origin::Upload)),
            WasmSource::File(path) => {
                let path = inside(&self.shared.plugins_dir, &path).await?;
                let bytes = tokio::fs::read(&path).await.map_err(|e| {
                    ControlError::BadRequest(format!("cannot read {}: {e}", path.display()))
                })?;
                Ok((bytes, Origin::Path(path)))
            }
        }
    }

    /// Compiles a version (off the runtime's threads), checking its kind.
    async fn compile(
        &self,
        name: &str,
        bytes: Vec<u8>,
        origin: Origin,
        kind: Option<PluginKind>,
    ) -> Result<Version, ControlError> {
        load_version(&self.shared.runtime, name, bytes, origin, kind)
            .await
            .map_err(|e| ControlError::Refused(e.to_string()))
    }

    /// Builds and smoke-tests one instance of `entry` per pipeline, before any
    /// pipeline is touched.
    pub(super) async fn prepare_all(
        &self,
        entry: &PluginEntry,
        pipelines: &[String],
    ) -> Result<Vec<(String, Replacement)>, ControlError> {
        let mut prepared = Vec::new();
        for pipeline in pipelines {
            let replacement = prepare(entry).await.map_err(|e| {
                ControlError::Refused(format!(
                    "{} {}: {e}",
                    entry.current.loaded.meta().info.name,
                    entry.current.loaded.meta().info.version
                ))
            })?;
            prepared.push((pipeline.clone(), replacement));
        }
        Ok(prepared)
    }

    /// Puts `next` (the entry with its new current version and config) in place in
    /// every pipeline that runs the plugin. All instances are prepared first; if a
    /// pipeline then refuses (the new version rejects the state) or does not
    /// answer in time, the pipelines already swapped go back to the old version
    /// and nothing changed.
    pub(super) async fn apply(
        &self,
        inner: &mut Inner,
        next: PluginEntry,
        carry_state: bool,
    ) -> Result<SwapReport, ControlError> {
        let name = next.name.clone();
        let old = inner.entry(&name)?.clone();
        let users = inner.users(&name);
        let prepared = self.prepare_all(&next, &users).await?;
        let swaps = self
            .swap_prepared(inner, &old, &next, prepared, carry_state)
            .await?;
        let report = report(&next, Some(&old), swaps);
        inner.plugins.insert(name, next);
        Ok(report)
    }

    /// Sends each pipeline its prepared instance of `next`. If a pipeline refuses
    /// or does not answer in time, the pipelines already swapped go back to `old`.
    pub(super) async fn swap_prepared(
        &self,
        inner: &Inner,
        old: &PluginEntry,
        next: &PluginEntry,
        prepared: Vec<(String, Replacement)>,
        carry_state: bool,
    ) -> Result<Vec<PipelineSwap>, ControlError> {
        let mut done: Vec<String> = Vec::new();
        let mut swaps = Vec::new();
        for (pipeline, replacement) in prepared {
            let p = &inner.pipelines[&pipeline];
            let error = match self
                .send_swap(p, &pipeline, replacement, carry_state, sent(next))
                .await
            {
                Ok(Ok(swapped)) => {
                    swaps.push(pipeline_swap(&pipeline, &swapped));
                    done.push(pipeline);
                    continue;
                }
                Ok(Err(e)) => ControlError::Refused(format!("pipeline `{pipeline}`: {e}")),
                Err(e) => e,
            };
            self.undo(inner, old, &done).await;
            return Err(error);
        }
        Ok(swaps)
    }

    /// Best effort: swaps `old` back into `pipelines`.
    pub(super) async fn undo(&self, inner: &Inner, old: &PluginEntry, pipelines: &[String]) {
        for pipeline in pipelines {
            let back = match prepare(old).await {
                Ok(r) => {
                    let p = &inner.pipelines[pipeline];
                    match self.send_swap(p, pipeline, r, true, sent(old)).await {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(e) => Err(e.to_string()),
                    }
                }
                Err(e) => Err(e),
            };
            if let Err(error) = back {
                tracing::error!(plugin = %old.name, %pipeline, %error, "could not go back to the previous version");
            }
        }
    }
}

/// `path` resolved inside `dir` (symbolic links followed), or why not.
async fn inside(dir: &Path, path: &Path) -> Result<PathBuf, ControlError> {
    let bad = |what: &Path, e: std::io::Error| {
        ControlError::BadRequest(format!("{}: {e}", what.display()))
    };
    let dir = tokio::fs::canonicalize(dir)
        .await
        .map_err(|e| bad(dir, e))?;
    let outside = || {
        ControlError::BadRequest(format!(
            "{} is outside the plugins directory {}",
            path.display(),
            dir.display()
        ))
    };
    // Judged as written first, so the answer never tells whether a file outside
    // exists; then resolved, which catches symlinks out of the directory.
    let plain = path.components().all(|c| {
        matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    });
    if !plain {
        return Err(outside());
    }
    let joined = dir.join(path);
    let candidate = tokio::fs::canonicalize(&joined)
        .await
        .map_err(|e| bad(&joined, e))?;
    if !candidate.starts_with(&dir) {
        return Err(outside());
    }
    Ok(candidate)
}
