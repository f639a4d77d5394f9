//! The mechanics every change shares: reading and compiling a new version,
//! preparing an instance per pipeline before any is touched, and swapping the
//! prepared instances in, all or (undone) nothing.

use std::path::{Path, PathBuf};

use wasmeter_core::plugin::PluginKind;
use wasmeter_pipeline::Replacement;

use super::outcome::{pipeline_swap, report, sent};
use super::{ControlError, Inner, PipelineSwap, Supervisor, SwapReport, WasmSource};
use crate::load::{load_version, prepare};
use crate::registry::{Origin, PluginEntry, Version};

impl Supervisor {
    /// Reads a new version's bytes; a file must be inside the plugins directory.
    pub(super) async fn read(&self, source: WasmSource) -> Result<(Vec<u8>, Origin), ControlError> {
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
    pub(super) async fn compile(
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
    let dir = tokio::fs::canonicalize(dir).await.map_err(|e| {
        ControlError::BadRequest(format!(
            "the plugins directory {} (admin.plugins_dir) cannot be used: {e}",
            dir.display()
        ))
    })?;
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
    let candidate = tokio::fs::canonicalize(&joined).await.map_err(|e| {
        ControlError::BadRequest(format!(
            "{} in the plugins directory {}: {e}",
            path.display(),
            dir.display()
        ))
    })?;
    if !candidate.starts_with(&dir) {
        return Err(outside());
    }
    Ok(candidate)
}
