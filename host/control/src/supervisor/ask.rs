//! Commands to a pipeline's task, each answered within a bound, and what a late
//! answer means.
//!
//! A pipeline applies commands between two chunks; a plugin call that does not
//! end keeps it from ever getting there. So the supervisor never waits for room
//! in a pipeline's queue and waits at most `admin.reply_timeout_ms` for the
//! answer. When that passes, the change fails (504) and is undone where it was
//! applied, but the command is still queued: the pipeline may apply it later.
//! Until it answers, the pipeline is *unanswered*: every change that would
//! send it another command is refused at once (409), and `GET /v1/plugins` lists
//! it. When the late answer comes, the supervisor reconciles, under the change
//! lock: a late swap whose version and config are not the registry's current
//! ones is swapped back to them (state carried), a late addition of a plugin the
//! registry does not have is removed, and a late removal needs nothing (the
//! pipelines a plugin runs in are read from the pipelines themselves). So the
//! registry never claims, for longer than that reconciliation, a version a
//! pipeline does not run. A pipeline that is stopped drops its queue: no late
//! answer can follow.

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::oneshot;
use wasmeter_pipeline::{Command, Replacement, Retired, SwapError, Swapped};

use super::running::RunningPipeline;
use super::view::Unanswered;
use super::{ControlError, Inner, Supervisor};
use crate::load::prepare;

/// What was sent to a pipeline, to reconcile a late answer.
#[derive(Debug, Clone)]
pub(crate) enum Sent {
    /// A version of `plugin` (its hash and config) swapped in or added.
    Swap {
        plugin: String,
        hash: [u8; 32],
        config: Vec<(String, String)>,
    },
    /// `plugin` taken out.
    Remove { plugin: String },
}

impl Sent {
    fn describe(&self) -> String {
        match self {
            Sent::Swap { plugin, .. } => format!("swap of `{plugin}`"),
            Sent::Remove { plugin } => format!("removal of `{plugin}`"),
        }
    }

    fn plugin(&self) -> &str {
        match self {
            Sent::Swap { plugin, .. } | Sent::Remove { plugin } => plugin,
        }
    }
}

/// A pipeline's answer, or why there is none.
type Answer<T> = Result<Result<T, SwapError>, ControlError>;

impl Supervisor {
    /// Asks a pipeline's task to put `replacement` in place.
    pub(super) async fn send_swap(
        &self,
        pipeline: &RunningPipeline,
        name: &str,
        replacement: Replacement,
        carry_state: bool,
        sent: Sent,
    ) -> Answer<Swapped> {
        self.ask(pipeline, name, sent, |reply| Command::Swap {
            replacement: Box::new(replacement),
            carry_state,
            reply,
        })
        .await
    }

    /// Asks a pipeline's task to take a metric or delta plugin out.
    pub(super) async fn send_remove(
        &self,
        pipeline: &RunningPipeline,
        name: &str,
        plugin: &str,
    ) -> Answer<Retired> {
        let sent = Sent::Remove {
            plugin: plugin.to_string(),
        };
        self.ask(pipeline, name, sent, |reply| Command::Remove {
            name: plugin.to_string(),
            reply,
        })
        .await
    }

    /// Sends the command `make` builds around a reply channel, and waits for the
    /// reply within the bound.
    async fn ask<T: Send + 'static>(
        &self,
        pipeline: &RunningPipeline,
        name: &str,
        sent: Sent,
        make: impl FnOnce(oneshot::Sender<Result<T, SwapError>>) -> Command,
    ) -> Answer<T> {
        if let Some(u) = self.view.unanswered(name, pipeline.id) {
            return Err(ControlError::Conflict(format!(
                "pipeline `{name}` has not answered an earlier command ({}, sent {:.1} s ago); \
                 its plugin may be stuck. No change touches it until it answers: quarantine \
                 the stuck plugin, or remove the pipeline from the config",
                u.command,
                u.sent.elapsed().as_secs_f64()
            )));
        }
        let (reply, mut rx) = oneshot::channel();
        match pipeline.commands.try_send(make(reply)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(ControlError::Conflict(format!(
                    "pipeline `{name}` has too many commands waiting; try again later"
                )));
            }
            Err(TrySendError::Closed(_)) => return Ok(Err(SwapError::Stopped(name.to_string()))),
        }
        self.view.set_waiting_for(Some(name));
        let answer = tokio::time::timeout(self.reply_timeout, &mut rx).await;
        self.view.set_waiting_for(None);
        match answer {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(_)) => Ok(Err(SwapError::Stopped(name.to_string()))),
            Err(_) => {
                tracing::error!(
                    pipeline = %name,
                    command = %sent.describe(),
                    "pipeline did not answer in time; no change touches it until it does"
                );
                self.view.add_unanswered(
                    name,
                    Unanswered {
                        id: pipeline.id,
                        command: sent.describe(),
                        sent: std::time::Instant::now(),
                    },
                );
                self.watch_late(name.to_string(), pipeline.id, sent, rx);
                Err(ControlError::Timeout(format!(
                    "pipeline `{name}` did not answer within {:.1} s; its plugin may be stuck. \
                     The change was not applied",
                    self.reply_timeout.as_secs_f64()
                )))
            }
        }
    }

    /// Waits (in a task the supervisor owns) for the late answer of a command,
    /// then reconciles. The wait ends with the answer, with the pipeline (a
    /// stopped pipeline drops its queue), or at shutdown.
    fn watch_late<T: Send + 'static>(
        &self,
        pipeline: String,
        id: u64,
        sent: Sent,
        rx: oneshot::Receiver<Result<T, SwapError>>,
    ) {
        let this = self.clone();
        self.tasks.spawn(async move {
            let answer = tokio::select! {
                biased;
                _ = this.closing.cancelled() => return,
                answer = rx => answer,
            };
            // A retired instance is dropped here, off the pipeline's task.
            let applied = matches!(answer, Ok(Ok(_)));
            drop(answer);
            let mut inner = tokio::select! {
                biased;
                _ = this.closing.cancelled() => return,
                inner = this.inner.clone().lock_owned() => inner,
            };
            this.view.clear_unanswered(&pipeline, id);
            tracing::warn!(%pipeline, command = %sent.describe(), applied, "late answer from pipeline");
            if applied {
                this.reconcile(&mut inner, &pipeline, id, &sent).await;
            }
            this.view.set_plugins(&inner.plugins);
        });
    }

    /// Brings a pipeline that applied `sent` late back to what the registry says.
    async fn reconcile(&self, inner: &mut Inner, pipeline: &str, id: u64, sent: &Sent) {
        let Some(running) = inner.pipelines.get(pipeline).filter(|p| p.id == id) else {
            return;
        };
        let Sent::Swap {
            plugin,
            hash,
            config,
        } = sent
        else {
            return;
        };
        let outcome = match inner.plugins.get(plugin) {
            Some(entry) if entry.current.loaded.meta().hash == *hash && entry.config == *config => {
                return;
            }
            Some(entry) => match prepare(entry).await {
                Ok(replacement) => {
                    let back = Sent::Swap {
                        plugin: plugin.clone(),
                        hash: entry.current.loaded.meta().hash,
                        config: entry.config.clone(),
                    };
                    match self
                        .send_swap(running, pipeline, replacement, true, back)
                        .await
                    {
                        Ok(Ok(_)) => Ok("swapped back to the registry's version"),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(e) => Err(e.to_string()),
                    }
                }
                Err(e) => Err(e),
            },
            None => match self.send_remove(running, pipeline, plugin).await {
                Ok(Ok(_)) => Ok("removed (the plugin is not loaded)"),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(e.to_string()),
            },
        };
        match outcome {
            Ok(what) => {
                tracing::warn!(%pipeline, plugin = %sent.plugin(), "late change {what}")
            }
            Err(error) => {
                tracing::error!(%pipeline, plugin = %sent.plugin(), %error, "cannot undo a late change")
            }
        }
    }
}
