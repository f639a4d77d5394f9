//! The running host's plugins and pipelines, and every change made to them while
//! it serves: swaps, reloads, rollbacks, loads and unloads (admin API, plugin-file
//! watcher) and config reloads (SIGHUP, admin API).
//!
//! One lock serialises changes; the data path never takes it. A change prepares
//! everything that can fail or take time first (read, compile, instantiate,
//! `init`, a smoke test, for every pipeline concerned) and only then asks each
//! pipeline's task to swap, between two chunks. A refused change leaves the
//! running version in place and is reported in the log, in the admin API's answer
//! and on the topic `_wasmeter/plugins/<name>`.

pub mod error;
mod reload;
mod running;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, oneshot};
use wasmeter_core::field::FieldValue;
use wasmeter_pipeline::TopicOwners;
use wasmeter_pipeline::{
    Command, Publish, Replacement, SeriesStore, SwapError, Swapped, TopicStore, publish_fields,
};
use wasmeter_plugin::{Runtime, unix_now_ms};

pub use error::AdminError;
pub use reload::ConfigReport;
use running::RunningPipeline;

use crate::config::Config;
use crate::monitor::Monitor;
use crate::plugins::{load_version, prepare};
use crate::registry::{Origin, PluginDetail, PluginEntry, PluginSummary, Version};

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
    /// The config file, if the host runs one (the demo's is built in).
    pub config_path: Option<PathBuf>,
    /// The only directory `load` and `swap` may name files in.
    pub plugins_dir: PathBuf,
    /// Which pipeline owns which topics.
    pub owners: TopicOwners,
}

/// The running plugins and pipelines.
pub struct Supervisor {
    shared: Shared,
    inner: Mutex<Inner>,
}

struct Inner {
    config: Config,
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
    /// Starts every pipeline of `config` with the loaded `plugins`.
    pub async fn start(
        shared: Shared,
        config: Config,
        plugins: BTreeMap<String, PluginEntry>,
    ) -> anyhow::Result<Self> {
        let mut pipelines = BTreeMap::new();
        for (name, section) in &config.pipelines {
            let running = RunningPipeline::start(&shared, &config, &plugins, name, section).await;
            match running {
                Ok(running) => {
                    pipelines.insert(name.clone(), running);
                }
                Err(error) => {
                    for (name, p) in std::mem::take(&mut pipelines) {
                        p.stop(&shared, &name).await;
                    }
                    return Err(error);
                }
            }
        }
        Ok(Self {
            shared,
            inner: Mutex::new(Inner {
                config,
                plugins,
                pipelines,
            }),
        })
    }

    /// Stops every pipeline: sources stop at a record boundary, pipelines drain and
    /// write their final checkpoints.
    pub async fn shutdown(&self) {
        let mut inner = self.inner.lock().await;
        let stops = std::mem::take(&mut inner.pipelines)
            .into_iter()
            .map(|(name, p)| async move { p.stop(&self.shared, &name).await });
        futures_util::future::join_all(stops).await;
    }

    /// Every plugin, by name.
    pub async fn list(&self) -> Vec<PluginSummary> {
        let inner = self.inner.lock().await;
        // Every instance once, grouped by plugin, rather than a full scan per plugin.
        let mut by_plugin: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for (pipeline, r) in self.shared.monitor.plugin_instances() {
            by_plugin
                .entry(r.name.clone())
                .or_default()
                .push((pipeline, r));
        }
        inner
            .plugins
            .values()
            .map(|e| e.summary(by_plugin.get(&e.name).map_or(&[], Vec::as_slice)))
            .collect()
    }

    /// One plugin in detail.
    pub async fn inspect(&self, name: &str) -> Result<PluginDetail, AdminError> {
        let inner = self.inner.lock().await;
        let entry = inner.entry(name)?;
        Ok(entry.detail(&self.instances(name)))
    }

    /// Files that plugins' current versions were read from, with the plugins' names.
    pub async fn watched_files(&self) -> Vec<(PathBuf, String)> {
        let inner = self.inner.lock().await;
        inner
            .plugins
            .values()
            .filter_map(|e| match &e.current.origin {
                Origin::Path(p) => Some((p.clone(), e.name.clone())),
                _ => None,
            })
            .collect()
    }

    /// Replaces the plugin `name` with the component from `source` in every
    /// pipeline that runs it, optionally with a new config. The state carries over
    /// unless `fresh_state`.
    pub async fn swap(
        &self,
        name: &str,
        source: WasmSource,
        config: Option<BTreeMap<String, String>>,
        fresh_state: bool,
    ) -> Result<SwapReport, AdminError> {
        let mut inner = self.inner.lock().await;
        let entry = inner.entry(name)?.clone();
        let result = async {
            let (bytes, origin) = self.read(source).await?;
            let version = self.compile(name, bytes, origin, Some(entry.kind)).await?;
            let mut next = entry.clone();
            next.advance(version);
            if let Some(config) = config {
                next.config = config.into_iter().collect();
            }
            self.apply(&mut inner, next, !fresh_state).await
        }
        .await;
        self.finish(&mut inner, name, "swapped", result)
    }

    /// Reads the plugin's file again and swaps it in if its bytes changed.
    pub async fn reload(&self, name: &str) -> Result<SwapReport, AdminError> {
        let mut inner = self.inner.lock().await;
        let entry = inner.entry(name)?.clone();
        let Origin::Path(path) = &entry.current.origin else {
            return Err(AdminError::Conflict(format!(
                "plugin `{name}` runs {}, not a file; swap it to a file instead",
                entry.current.origin
            )));
        };
        let result = async {
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|e| AdminError::Refused(format!("cannot read {}: {e}", path.display())))?;
            if wasmeter_plugin::content_hash(&bytes) == entry.current.loaded.meta().hash {
                return Ok(None);
            }
            let version = self
                .compile(name, bytes, Origin::Path(path.clone()), Some(entry.kind))
                .await?;
            let mut next = entry.clone();
            next.advance(version);
            self.apply(&mut inner, next, true).await.map(Some)
        }
        .await;
        match result {
            Ok(None) => Ok(unchanged(&entry)),
            Ok(Some(report)) => self.finish(&mut inner, name, "reloaded", Ok(report)),
            Err(e) => self.finish(&mut inner, name, "reloaded", Err(e)),
        }
    }

    /// Goes back to the previous version.
    pub async fn rollback(&self, name: &str) -> Result<SwapReport, AdminError> {
        let mut inner = self.inner.lock().await;
        let entry = inner.entry(name)?.clone();
        let mut next = entry.clone();
        let Some(previous) = next.previous.pop() else {
            return Err(AdminError::Conflict(format!(
                "plugin `{name}` has no previous version to roll back to"
            )));
        };
        next.current = previous;
        next.succeeded();
        let result = self.apply(&mut inner, next, true).await;
        self.finish(&mut inner, name, "rolled-back", result)
    }

    /// Adds a plugin under a new name; a metric or delta plugin joins `pipelines`.
    pub async fn load(
        &self,
        name: &str,
        source: WasmSource,
        config: Option<BTreeMap<String, String>>,
        pipelines: Vec<String>,
    ) -> Result<SwapReport, AdminError> {
        let mut inner = self.inner.lock().await;
        if inner.plugins.contains_key(name) {
            return Err(AdminError::Conflict(format!(
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
        if entry.kind == wasmeter_core::plugin::PluginKind::Collector && !pipelines.is_empty() {
            return Err(AdminError::Conflict(format!(
                "`{name}` is a collector; a pipeline has one collector: swap it instead"
            )));
        }
        let replacements = self.prepare_all(&entry, &pipelines).await?;
        let mut report = report(&entry, None, Vec::new());
        for (pipeline, replacement) in replacements {
            match send_swap(&inner.pipelines[&pipeline], &pipeline, replacement, true).await {
                Ok(swapped) => report.pipelines.push(pipeline_swap(&pipeline, &swapped)),
                Err(error) => {
                    // Take it out of the pipelines it already joined.
                    for done in &report.pipelines {
                        let p = &inner.pipelines[&done.pipeline];
                        let _ = send_remove(p, &done.pipeline, name).await;
                    }
                    return Err(AdminError::Conflict(error.to_string()));
                }
            }
        }
        self.notice(&entry, "loaded", None);
        inner.plugins.insert(name.to_string(), entry);
        Ok(report)
    }

    /// Takes a plugin out of every pipeline and forgets it. Refused for a collector
    /// a pipeline runs.
    pub async fn unload(&self, name: &str) -> Result<(), AdminError> {
        let mut inner = self.inner.lock().await;
        self.unload_in(&mut inner, name).await
    }

    async fn unload_in(&self, inner: &mut Inner, name: &str) -> Result<(), AdminError> {
        let entry = inner.entry(name)?.clone();
        let users = inner.users(name);
        if entry.kind == wasmeter_core::plugin::PluginKind::Collector && !users.is_empty() {
            return Err(AdminError::Conflict(format!(
                "plugin `{name}` is the collector of pipeline(s) {}; swap it or remove the pipeline",
                users.join(", ")
            )));
        }
        for pipeline in users {
            send_remove(&inner.pipelines[&pipeline], &pipeline, name)
                .await
                .map_err(|e| AdminError::Conflict(e.to_string()))?;
        }
        inner.plugins.remove(name);
        self.notice(&entry, "unloaded", None);
        Ok(())
    }

    /// Quarantines (`on`) or releases every instance of a plugin.
    pub async fn set_quarantine(&self, name: &str, on: bool) -> Result<PluginSummary, AdminError> {
        let inner = self.inner.lock().await;
        let entry = inner.entry(name)?;
        let instances = self.instances(name);
        for (_, r) in &instances {
            if on {
                r.health.quarantine("quarantined by an admin");
            } else {
                r.health.release();
            }
        }
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

    /// Reads a new version's bytes; a file must be inside the plugins directory.
    async fn read(&self, source: WasmSource) -> Result<(Vec<u8>, Origin), AdminError> {
        match source {
            WasmSource::Bytes(bytes) => Ok((bytes, Origin::Upload)),
            WasmSource::File(path) => {
                let path = inside(&self.shared.plugins_dir, &path).await?;
                let bytes = tokio::fs::read(&path).await.map_err(|e| {
                    AdminError::BadRequest(format!("cannot read {}: {e}", path.display()))
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
        kind: Option<wasmeter_core::plugin::PluginKind>,
    ) -> Result<Version, AdminError> {
        load_version(&self.shared.runtime, name, bytes, origin, kind)
            .await
            .map_err(|e| AdminError::Refused(e.to_string()))
    }

    /// Builds and smoke-tests one instance of `entry` per pipeline, before any
    /// pipeline is touched.
    async fn prepare_all(
        &self,
        entry: &PluginEntry,
        pipelines: &[String],
    ) -> Result<Vec<(String, Replacement)>, AdminError> {
        let mut prepared = Vec::new();
        for pipeline in pipelines {
            let replacement = prepare(entry).await.map_err(|e| {
                AdminError::Refused(format!(
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
    /// pipeline then refuses (the new version rejects the state), the pipelines
    /// already swapped go back to the old version and nothing changed.
    async fn apply(
        &self,
        inner: &mut Inner,
        next: PluginEntry,
        carry_state: bool,
    ) -> Result<SwapReport, AdminError> {
        let name = next.name.clone();
        let old = inner.entry(&name)?.clone();
        let users = inner.users(&name);
        let prepared = self.prepare_all(&next, &users).await?;
        let mut done: Vec<String> = Vec::new();
        let mut swaps = Vec::new();
        for (pipeline, replacement) in prepared {
            let p = &inner.pipelines[&pipeline];
            match send_swap(p, &pipeline, replacement, carry_state).await {
                Ok(swapped) => {
                    swaps.push(pipeline_swap(&pipeline, &swapped));
                    done.push(pipeline);
                }
                Err(error) => {
                    self.undo(inner, &old, &done).await;
                    return Err(AdminError::Refused(format!(
                        "pipeline `{pipeline}`: {error}"
                    )));
                }
            }
        }
        let report = report(&next, Some(&old), swaps);
        inner.plugins.insert(name, next);
        Ok(report)
    }

    /// Best effort: swaps `old` back into `pipelines`.
    async fn undo(&self, inner: &Inner, old: &PluginEntry, pipelines: &[String]) {
        for pipeline in pipelines {
            let back = match prepare(old).await {
                Ok(r) => send_swap(&inner.pipelines[pipeline], pipeline, r, true)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            if let Err(error) = back {
                tracing::error!(plugin = %old.name, %pipeline, %error, "could not go back to the previous version");
            }
        }
    }

    /// Records the outcome of a change: the entry's last error, a log line, a notice.
    fn finish(
        &self,
        inner: &mut Inner,
        name: &str,
        event: &str,
        result: Result<SwapReport, AdminError>,
    ) -> Result<SwapReport, AdminError> {
        let Some(entry) = inner.plugins.get_mut(name) else {
            return result;
        };
        match &result {
            Ok(report) => {
                tracing::info!(plugin = %name, version = %report.version, pipelines = report.pipelines.len(), "plugin {event}");
                self.notice(entry, event, None);
            }
            Err(error) => {
                let message = error.to_string();
                tracing::error!(plugin = %name, error = %message, "plugin change refused; the running version stays");
                entry.failed(&message);
                self.notice(entry, &format!("{event}-failed"), Some(&message));
            }
        }
        result
    }

    /// Publishes what happened to a plugin on `_wasmeter/plugins/<name>`.
    fn notice(&self, entry: &PluginEntry, event: &str, error: Option<&str>) {
        let meta = entry.current.loaded.meta();
        let text = |s: &str| FieldValue::Text(s.to_string());
        let fields = BTreeMap::from([
            ("event".to_string(), text(event)),
            ("version".to_string(), text(&meta.info.version)),
            ("hash".to_string(), text(&meta.hash_hex()[..16])),
            ("error".to_string(), text(error.unwrap_or(""))),
            (
                "at_ms".to_string(),
                FieldValue::Number(unix_now_ms() as f64),
            ),
        ]);
        let topic = format!("_wasmeter/plugins/{}", entry.name).into();
        publish_fields(
            &self.shared.store,
            self.shared.publisher.as_ref(),
            &topic,
            fields,
        );
    }
}

impl Inner {
    fn entry(&self, name: &str) -> Result<&PluginEntry, AdminError> {
        self.plugins
            .get(name)
            .ok_or_else(|| AdminError::UnknownPlugin {
                name: name.to_string(),
                known: error::known(self.plugins.keys()),
            })
    }

    fn pipeline(&self, name: &str) -> Result<&RunningPipeline, AdminError> {
        self.pipelines
            .get(name)
            .ok_or_else(|| AdminError::UnknownPipeline {
                name: name.to_string(),
                known: error::known(self.pipelines.keys()),
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

/// Asks a pipeline's task to swap, and waits for its answer.
async fn send_swap(
    pipeline: &RunningPipeline,
    name: &str,
    replacement: Replacement,
    carry_state: bool,
) -> Result<Swapped, SwapError> {
    ask(pipeline, name, |reply| Command::Swap {
        replacement: Box::new(replacement),
        carry_state,
        reply,
    })
    .await
}

/// Asks a pipeline's task to take a metric or delta plugin out.
async fn send_remove(
    pipeline: &RunningPipeline,
    name: &str,
    plugin: &str,
) -> Result<wasmeter_pipeline::Retired, SwapError> {
    ask(pipeline, name, |reply| Command::Remove {
        name: plugin.to_string(),
        reply,
    })
    .await
}

/// Sends the command `make` builds around a reply channel, and waits for the reply.
async fn ask<T>(
    pipeline: &RunningPipeline,
    name: &str,
    make: impl FnOnce(oneshot::Sender<Result<T, SwapError>>) -> Command,
) -> Result<T, SwapError> {
    let (reply, rx) = oneshot::channel();
    let stopped = || SwapError::Stopped(name.to_string());
    pipeline
        .commands
        .send(make(reply))
        .await
        .map_err(|_| stopped())?;
    rx.await.map_err(|_| stopped())?
}

fn pipeline_swap(pipeline: &str, swapped: &Swapped) -> PipelineSwap {
    use wasmeter_pipeline::StateCarry;
    PipelineSwap {
        pipeline: pipeline.to_string(),
        pause_us: swapped.pause.as_secs_f64() * 1e6,
        state: match &swapped.state {
            StateCarry::Stateless => "stateless".into(),
            StateCarry::Carried { bytes } => format!("carried ({bytes} bytes)"),
            StateCarry::Empty => "empty".into(),
            StateCarry::Fresh => "fresh (as asked)".into(),
            StateCarry::Lost { reason } => format!("lost: {reason}"),
        },
    }
}

fn report(
    next: &PluginEntry,
    old: Option<&PluginEntry>,
    pipelines: Vec<PipelineSwap>,
) -> SwapReport {
    let meta = next.current.loaded.meta();
    SwapReport {
        plugin: next.name.clone(),
        version: meta.info.version.clone(),
        hash: meta.hash_hex(),
        replaced: old.map(|o| o.current.loaded.meta().info.version.clone()),
        unchanged: false,
        pipelines,
    }
}

fn unchanged(entry: &PluginEntry) -> SwapReport {
    SwapReport {
        unchanged: true,
        ..report(entry, None, Vec::new())
    }
}

/// `path` resolved inside `dir` (symbolic links followed), or why not.
async fn inside(dir: &Path, path: &Path) -> Result<PathBuf, AdminError> {
    let bad =
        |what: &Path, e: std::io::Error| AdminError::BadRequest(format!("{}: {e}", what.display()));
    let dir = tokio::fs::canonicalize(dir)
        .await
        .map_err(|e| bad(dir, e))?;
    let joined = dir.join(path);
    let candidate = tokio::fs::canonicalize(&joined)
        .await
        .map_err(|e| bad(&joined, e))?;
    if !candidate.starts_with(&dir) {
        return Err(AdminError::BadRequest(format!(
            "{} is outside the plugins directory {}",
            path.display(),
            dir.display()
        )));
    }
    Ok(candidate)
}
