//! The running host's plugins and pipelines, and every change made to them while
//! it serves: swaps, reloads, rollbacks, loads and unloads (admin API, plugin-file
//! watcher) and config reloads (SIGHUP, admin API).
//!
//! One lock serialises changes; the data path never takes it, and neither do
//! readers: `list` and `inspect` read a copy of the registry replaced after each
//! change (see `view`). Every wait has a bound: for the change lock and for a
//! pipeline's answer `admin.reply_timeout_ms`, for a pipeline to drain
//! `runtime.shutdown_timeout_ms` (see `ask` for what a late answer means). Each
//! change runs in a task the supervisor owns, so a client that goes away does
//! not cut it in half; shutdown cancels it.
//!
//! A change prepares everything that can fail or take time first (read,
//! compile, instantiate, `init`, a smoke test, for every pipeline concerned) and
//! only then asks each pipeline's task to swap, between two chunks. A refused
//! change leaves the running version in place and is reported in the log, in
//! the admin API's answer and on the topic `_wasmeter/plugins/<name>`.

mod ask;
mod changes;
mod outcome;
mod reload;
mod running;
pub mod view;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wasmeter_pipeline::{Publish, SeriesStore, TopicOwners, TopicStore};
use wasmeter_plugin::Runtime;

pub use reload::ConfigReport;
use running::RunningPipeline;
pub use view::ControlStatus;
use view::{Activity, View};

use crate::error::{ControlError, known};
use crate::monitor::Monitor;
use crate::registry::{Origin, PluginDetail, PluginEntry, PluginSummary};
use crate::spec::HostSpec;

/// What every pipeline shares.
pub struct Shared {
    /// The plugin runtime.
    pub runtime: Runtime,
    /// Topic state.
    pub store: TopicStore,
    /// The hub.
    pub publisher: Arc<dyn Publish>,
    /// Latest value of every series (`/metrics`).
    pub series: SeriesStore,
    /// Counters, by pipeline and source.
    pub monitor: Monitor,
    /// Checkpoints live under it.
    pub data_dir: PathBuf,
    /// The only directory `load` and `swap` may name files in.
    pub plugins_dir: PathBuf,
    /// Which pipeline owns which topics.
    pub owners: TopicOwners,
}

/// How long the control plane waits.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Longest wait for a pipeline's answer to a command, and for the change
    /// lock (another change in progress).
    pub reply: Duration,
    /// Longest wait for pipelines to drain when they stop (shutdown, a reload
    /// that removes or restarts them); those still running then are aborted.
    pub stop: Duration,
}

/// The running plugins and pipelines. Cloning it is cheap: clones share
/// everything.
#[derive(Clone)]
pub struct Supervisor {
    core: Arc<Core>,
}

/// What a [`Supervisor`] and its clones share.
pub struct Core {
    shared: Shared,
    inner: Arc<Mutex<Inner>>,
    view: View,
    /// Longest wait for a pipeline's answer, and for the change lock.
    reply_timeout: Duration,
    /// Longest wait for the pipelines to drain.
    stop_timeout: Duration,
    /// Cancelled at shutdown: changes and late-answer watchers give up.
    closing: CancellationToken,
    /// Changes in progress and late-answer watchers.
    tasks: TaskTracker,
}

impl std::ops::Deref for Supervisor {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}

struct Inner {
    /// The spec running now (fixed settings as at start).
    spec: HostSpec,
    plugins: BTreeMap<String, PluginEntry>,
    pipelines: BTreeMap<String, RunningPipeline>,
}

/// Where a new version's bytes come from.
#[derive(Debug)]
pub enum WasmSource {
    /// A file, relative to (and inside) the plugins directory.
    File(PathBuf),
    /// Uploaded bytes.
    Bytes(Vec<u8>),
}

/// The outcome of a swap, reload, rollback or load.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SwapReport {
    /// The host's name for the plugin.
    pub plugin: String,
    /// The version now running.
    pub version: String,
    /// Its SHA-256 (hex).
    pub hash: String,
    /// The version it replaced, if any.
    pub replaced: Option<String>,
    /// Nothing was done: the file had not changed.
    pub unchanged: bool,
    /// Each pipeline's swap.
    pub pipelines: Vec<PipelineSwap>,
}

/// One pipeline's part of a swap.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineSwap {
    /// The pipeline.
    pub pipeline: String,
    /// How long the pipeline stopped processing, in microseconds.
    pub pause_us: f64,
    /// What happened to the plugin's state.
    pub state: String,
}

impl Supervisor {
    /// Starts every pipeline of `spec` with the loaded `plugins` (see
    /// [`crate::load::load_all`]).
    pub async fn start(
        shared: Shared,
        spec: HostSpec,
        plugins: BTreeMap<String, PluginEntry>,
        timeouts: Timeouts,
    ) -> anyhow::Result<Self> {
        let stop_timeout = timeouts.stop;
        let mut pipelines = BTreeMap::new();
        for (name, def) in &spec.pipelines {
            let running = RunningPipeline::start(&shared, &spec, &plugins, name, def).await;
            match running {
                Ok(running) => {
                    pipelines.insert(name.clone(), running);
                }
                Err(error) => {
                    let deadline = tokio::time::Instant::now() + stop_timeout;
                    for (name, p) in std::mem::take(&mut pipelines) {
                        p.stop(&shared, &name, deadline).await;
                    }
                    return Err(error);
                }
            }
        }
        let view = View::default();
        view.set_plugins(&plugins);
        Ok(Self {
            core: Arc::new(Core {
                shared,
                view,
                reply_timeout: timeouts.reply,
                stop_timeout,
                inner: Arc::new(Mutex::new(Inner {
                    spec,
                    plugins,
                    pipelines,
                })),
                closing: CancellationToken::new(),
                tasks: TaskTracker::new(),
            }),
        })
    }

    /// Makes changes in progress give up (their callers get "shutting down") and
    /// refuses new ones; the first step of shutting down.
    pub fn close(&self) {
        self.closing.cancel();
    }

    /// Stops every pipeline within `runtime.shutdown_timeout_ms`: changes in
    /// progress give up, sources stop at a record boundary, pipelines drain and
    /// write their final checkpoints; those still running at the deadline are
    /// aborted (their last checkpoint stays) and named in the log.
    pub async fn shutdown(&self) {
        let deadline = tokio::time::Instant::now() + self.stop_timeout;
        self.closing.cancel();
        self.tasks.close();
        let inner = match tokio::time::timeout_at(deadline, self.inner.clone().lock_owned()).await {
            Ok(inner) => inner,
            Err(_) => {
                tracing::error!("a change did not give up in time; pipelines are left to the exit");
                return;
            }
        };
        let mut inner = inner;
        let stops = std::mem::take(&mut inner.pipelines)
            .into_iter()
            .map(|(name, p)| async move { (p.stop(&self.shared, &name, deadline).await, name) });
        let aborted: Vec<String> = futures_util::future::join_all(stops)
            .await
            .into_iter()
            .filter(|(drained, _)| !drained)
            .map(|(_, name)| name)
            .collect();
        if !aborted.is_empty() {
            tracing::error!(
                pipelines = %aborted.join(", "),
                "pipelines aborted at shutdown; they resume from their last checkpoint"
            );
        }
        drop(inner);
        if tokio::time::timeout(Duration::from_secs(1), self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("supervisor tasks still running after shutdown");
        }
    }

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
        self.notice(entry, if on { "quarantined" } else { "released" }, None);
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

    /// Runs a change: waits (within the bound) for the change lock, then runs
    /// `body` in a task of its own, so the change completes even if the caller
    /// goes away; the readers' copy of the registry is replaced afterwards.
    async fn change<T, F, Fut>(&self, what: Activity, body: F) -> Result<T, ControlError>
    where
        T: Send + 'static,
        F: FnOnce(Supervisor, OwnedMutexGuard<Inner>) -> Fut + Send + 'static,
        Fut: Future<Output = (OwnedMutexGuard<Inner>, Result<T, ControlError>)> + Send + 'static,
    {
        let inner = tokio::select! {
            biased;
            _ = self.closing.cancelled() => return Err(ControlError::ShuttingDown),
            inner = tokio::time::timeout(self.reply_timeout, self.inner.clone().lock_owned()) => inner,
        };
        let Ok(inner) = inner else {
            let busy = self
                .view
                .activity()
                .map_or_else(|| "another change".to_string(), |a| a.describe());
            return Err(ControlError::Conflict(format!(
                "another change is in progress: {busy}; try again when it has finished"
            )));
        };
        let this = self.clone();
        let task = self.tasks.spawn(async move {
            this.view.set_activity(Some(what));
            let run = body(this.clone(), inner);
            let result = tokio::select! {
                biased;
                _ = this.closing.cancelled() => Err(ControlError::ShuttingDown),
                (inner, result) = run => {
                    this.view.set_plugins(&inner.plugins);
                    result
                }
            };
            this.view.set_activity(None);
            result
        });
        task.await
            .map_err(|e| ControlError::Internal(format!("the change failed: {e}")))?
    }
}

/// The entry called `name`, or an error listing the names there are.
fn entry<'a>(
    plugins: &'a BTreeMap<String, PluginEntry>,
    name: &str,
) -> Result<&'a PluginEntry, ControlError> {
    plugins
        .get(name)
        .ok_or_else(|| ControlError::UnknownPlugin {
            name: name.to_string(),
            known: known(plugins.keys()),
        })
}

impl Inner {
    fn entry(&self, name: &str) -> Result<&PluginEntry, ControlError> {
        entry(&self.plugins, name)
    }

    fn pipeline(&self, name: &str) -> Result<&RunningPipeline, ControlError> {
        self.pipelines
            .get(name)
            .ok_or_else(|| ControlError::UnknownPipeline {
                name: name.to_string(),
                known: known(self.pipelines.keys()),
            })
    }

    /// Pipelines running the plugin `name` now.
    fn users(&self, name: &str) -> Vec<String> {
        self.pipelines
            .iter()
            .filter(|(_, p)| p.uses(name))
            .map(|(n, _)| n.clone())
            .collect()
    }
}
