//! The running host's plugins and pipelines, and every change made to them while
//! it serves: swaps, reloads, rollbacks, loads and unloads (admin API, plugin-file
//! watcher) and config reloads (SIGHUP, admin API).
//!
//! One lock serialises changes; the data path never takes it, and neither do
//! readers: `list` and `inspect` read a copy of the registry replaced after each
//! change (see `view`). Every wait has a bound ([`Timeouts`]): `reply` for the
//! change lock and for a pipeline's answer, `stop` for a pipeline to drain (see
//! `ask` for what a late answer means). Each
//! change runs in a task the supervisor owns, so a client that goes away does
//! not cut it in half; shutdown cancels it.
//!
//! A change prepares everything that can fail or take time first (read,
//! compile, instantiate, `init`, a smoke test, for every pipeline concerned) and
//! only then asks each pipeline's task to swap, between two chunks. A refused
//! change leaves the running version in place and is reported in the log, in
//! the admin API's answer and on the topic `_wasmeter/plugins/<name>`.
//!
//! - `changes`: swap, reload, rollback; `membership`: load, unload; `reload`:
//!   a new spec; `apply`: what they share (read, compile, prepare, swap in or
//!   undo); `ask`: commands to a pipeline and late answers; `outcome`: reports,
//!   notices; `health_watch`: announcing automatic quarantines; `read` and
//!   `view`: what readers see; `running`: one pipeline; `group_source`: the
//!   file sources a sharded pipeline's shards read together.

mod apply;
mod ask;
mod changes;
mod group_source;
mod health_watch;
mod membership;
mod outcome;
mod pipeline_thread;
mod producer;
mod read;
mod reload;
mod running;
pub mod view;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wasmeter_pipeline::{SampleSink, SeriesStore, TopicOwners, Topics};
use wasmeter_plugin::Runtime;

pub use outcome::{PipelineSwap, SwapReport};
pub use reload::ConfigReport;
use running::RunningPipeline;
pub use view::ControlStatus;
use view::{Activity, View};

use crate::error::{ControlError, known};
use crate::monitor::Monitor;
use crate::registry::PluginEntry;
use crate::spec::HostSpec;

/// What every pipeline shares.
pub struct Shared {
    /// The plugin runtime.
    pub runtime: Runtime,
    /// The topics: their state and the broker they are published through.
    pub topics: Topics,
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
    /// Where samples go besides their topics: the metric history, if kept.
    pub history: Option<Arc<dyn SampleSink>>,
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
    /// Pipelines run only when this host produces them (several hosts share the
    /// topics; see `producer.rs`): none starts by itself.
    standby: bool,
}

/// Where a new version's bytes come from.
#[derive(Debug)]
pub enum WasmSource {
    /// A file, relative to (and inside) the plugins directory.
    File(PathBuf),
    /// Uploaded bytes.
    Bytes(Vec<u8>),
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
        Self::start_with(shared, spec, plugins, timeouts, false).await
    }

    /// Starts with no pipeline running: each runs once this host is told it
    /// produces it ([`Supervisor::activate`]).
    pub async fn start_on_standby(
        shared: Shared,
        spec: HostSpec,
        plugins: BTreeMap<String, PluginEntry>,
        timeouts: Timeouts,
    ) -> anyhow::Result<Self> {
        Self::start_with(shared, spec, plugins, timeouts, true).await
    }

    async fn start_with(
        shared: Shared,
        spec: HostSpec,
        plugins: BTreeMap<String, PluginEntry>,
        timeouts: Timeouts,
        standby: bool,
    ) -> anyhow::Result<Self> {
        let stop_timeout = timeouts.stop;
        let mut pipelines = BTreeMap::new();
        let mut batch = Vec::new();
        for (name, def) in spec.pipelines.iter().filter(|_| !standby) {
            let instances =
                crate::load::instantiate_pipeline(&plugins, &spec.origin, name, def).await?;
            batch.push((name.clone(), instances));
        }
        let mut failed = None;
        for (name, running) in RunningPipeline::launch_batch(&shared, &spec, batch).await {
            match running {
                Ok(running) => {
                    pipelines.insert(name, running);
                }
                Err(error) => {
                    failed.get_or_insert(error);
                }
            }
        }
        if let Some(error) = failed {
            let deadline = tokio::time::Instant::now() + stop_timeout;
            let stops = std::mem::take(&mut pipelines).into_iter().map(|(name, p)| {
                let shared = &shared;
                async move { p.stop(shared, &name, deadline).await }
            });
            futures_util::future::join_all(stops).await;
            return Err(error);
        }
        let view = View::default();
        view.set_plugins(&plugins);
        let supervisor = Self {
            core: Arc::new(Core {
                shared,
                view,
                reply_timeout: timeouts.reply,
                stop_timeout,
                inner: Arc::new(Mutex::new(Inner {
                    spec,
                    plugins,
                    pipelines,
                    standby,
                })),
                closing: CancellationToken::new(),
                tasks: TaskTracker::new(),
            }),
        };
        supervisor.watch_health();
        Ok(supervisor)
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
