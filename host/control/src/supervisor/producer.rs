//! Which pipelines this host produces, when several hosts share the topics: the
//! supervisor starts on standby ([`Supervisor::start_on_standby`]) and whoever
//! holds a pipeline's lease tells it to run or stop that pipeline. The plugins,
//! the registry and admin changes are the same on every host; only the running
//! pipelines differ.

use std::path::PathBuf;

use super::running::{RunningPipeline, checkpoint_file};
use super::view::Activity;
use super::{ControlError, Supervisor};

impl Supervisor {
    /// The pipelines of the running spec, by name.
    pub async fn pipeline_names(&self) -> Result<Vec<String>, ControlError> {
        let inner = tokio::time::timeout(self.reply_timeout, self.inner.lock())
            .await
            .map_err(|_| ControlError::Conflict("another change is in progress".into()))?;
        Ok(inner.spec.pipelines.keys().cloned().collect())
    }

    /// Starts pipeline `name` of the spec on this host (it produces it now),
    /// from `checkpoint` (the bytes of the checkpoint its last producer kept,
    /// written over this host's file first) or else from this host's own
    /// checkpoint file. False if it was running already.
    pub async fn activate(
        &self,
        name: &str,
        checkpoint: Option<Vec<u8>>,
    ) -> Result<bool, ControlError> {
        let name = name.to_string();
        self.change(
            Activity::new("activate", ""),
            move |this, mut inner| async move {
                if inner.pipelines.contains_key(&name) {
                    return (inner, Ok(false));
                }
                let Some(def) = inner.spec.pipelines.get(&name).cloned() else {
                    let known = super::known(inner.spec.pipelines.keys());
                    return (inner, Err(ControlError::UnknownPipeline { name, known }));
                };
                if let Some(bytes) = checkpoint {
                    let path = checkpoint_file(&this.shared.data_dir, &name, &def);
                    if let Err(e) = replace_file(path, bytes).await {
                        let error = format!("pipelines.{name}: cannot write the checkpoint: {e}");
                        return (inner, Err(ControlError::Internal(error)));
                    }
                }
                let started =
                    RunningPipeline::start(&this.shared, &inner.spec, &inner.plugins, &name, &def)
                        .await;
                let result = match started {
                    Ok(p) => {
                        inner.pipelines.insert(name.clone(), p);
                        tracing::info!(pipeline = %name, "this host produces the pipeline now");
                        Ok(true)
                    }
                    Err(e) => Err(ControlError::Config(format!(
                        "pipelines.{name}: cannot start: {e:#}"
                    ))),
                };
                (inner, result)
            },
        )
        .await
    }

    /// Stops pipeline `name` on this host (another produces it now, or this
    /// one gives it up). False if it was not running.
    pub async fn deactivate(&self, name: &str) -> Result<bool, ControlError> {
        let name = name.to_string();
        self.change(
            Activity::new("deactivate", ""),
            move |this, mut inner| async move {
                let Some(p) = inner.pipelines.remove(&name) else {
                    return (inner, Ok(false));
                };
                let deadline = tokio::time::Instant::now() + this.stop_timeout;
                p.stop(&this.shared, &name, deadline).await;
                tracing::info!(pipeline = %name, "this host no longer produces the pipeline");
                (inner, Ok(true))
            },
        )
        .await
    }
}

/// Atomically replaces the file at `path` with `bytes` (tmp + fsync + rename).
async fn replace_file(path: PathBuf, bytes: Vec<u8>) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("checkpoint.from-broker");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    })
    .await
    .map_err(std::io::Error::other)?
}
