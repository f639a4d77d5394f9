//! One running pipeline with its sources: started from the spec and the
//! registry, stopped on its own (a config reload) or with the host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use wasmeter_pipeline::{Command, Pipeline, PipelineConfig, PipelinePlugins, PluginRefs};
use wasmeter_source::{FileCheckpoint, FileSource, FileSourceConfig, SystemSource};

use super::Shared;
use super::group_source::{GroupSources, SharedSource, Starting};
use super::pipeline_thread::PipelineThread;
use crate::monitor::PipelineView;
use crate::registry::PluginEntry;
use crate::spec::{HostSpec, PipelineDef, SourceDef};

/// Chunks in flight between a source and its pipeline (back-pressure beyond).
const SOURCE_QUEUE: usize = 16;

/// Swap commands waiting for a pipeline. The supervisor never waits for room:
/// a full queue is refused (and a pipeline that has not answered a command gets
/// no other one, see `ask`).
const COMMAND_QUEUE: usize = 4;

/// How long an aborted pipeline's tasks get to end (an abort lands at the task's
/// next await point; a plugin call yields every epoch tick).
const ABORT_GRACE: Duration = Duration::from_secs(2);

/// Tells pipelines of the same name apart across restarts.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A pipeline task, its sources' tasks (on the pipeline's thread), and the
/// handles to steer and stop them.
pub(crate) struct RunningPipeline {
    /// Unique for the host's lifetime (a restarted pipeline gets a new one).
    pub id: u64,
    /// Its own sources (to unregister their counters when it stops).
    pub sources: Vec<String>,
    /// The sources it reads with the other shards of its pipeline.
    shared_sources: Vec<Arc<SharedSource>>,
    /// Where swap commands go.
    pub commands: mpsc::Sender<Command>,
    /// Its plugin instances, live.
    pub refs: PluginRefs,
    stop: CancellationToken,
    /// The thread its task and its own sources run on.
    thread: PipelineThread,
    aborts: Vec<AbortHandle>,
}

impl RunningPipeline {
    /// Instantiates its plugins, restores the pipeline's checkpoint and starts it
    /// and its sources.
    pub async fn start(
        shared: &Shared,
        spec: &HostSpec,
        plugins: &BTreeMap<String, PluginEntry>,
        name: &str,
        def: &PipelineDef,
    ) -> anyhow::Result<Self> {
        let instances = crate::load::instantiate_pipeline(plugins, &spec.origin, name, def).await?;
        Self::launch(shared, spec, name, def, instances).await
    }

    /// Restores the pipeline's checkpoint into `instances` (created and
    /// initialised beforehand) and starts it and its sources.
    pub async fn launch(
        shared: &Shared,
        spec: &HostSpec,
        name: &str,
        def: &PipelineDef,
        instances: PipelinePlugins,
    ) -> anyhow::Result<Self> {
        let prepared = Prepared::restore(shared, spec, name, def, instances).await?;
        prepared.spawn(shared, spec, &mut GroupSources::default())
    }

    /// [`RunningPipeline::launch`] for pipelines that start together: the shards
    /// of a sharded pipeline that are all among them read each of its file sources
    /// together (`group_source`). The results are in `batch`'s order.
    pub async fn launch_batch(
        shared: &Shared,
        spec: &HostSpec,
        batch: Vec<(String, PipelinePlugins)>,
    ) -> Vec<(String, anyhow::Result<Self>)> {
        let mut restored = Vec::with_capacity(batch.len());
        for (name, instances) in batch {
            let def = &spec.pipelines[&name];
            let prepared = Prepared::restore(shared, spec, &name, def, instances).await;
            restored.push((name, prepared));
        }
        let starting: Vec<Starting<'_>> = restored
            .iter()
            .filter_map(|(_, p)| p.as_ref().ok())
            .map(Prepared::starting)
            .collect();
        let mut groups = GroupSources::start(shared, spec, SOURCE_QUEUE, &starting);
        drop(starting);
        restored
            .into_iter()
            .map(|(name, prepared)| {
                let running = prepared.and_then(|p| p.spawn(shared, spec, &mut groups));
                (name, running)
            })
            .collect()
    }

    /// Whether the pipeline uses the plugin named `plugin` now.
    pub fn uses(&self, plugin: &str) -> bool {
        self.refs.get().iter().any(|r| r.name == plugin)
    }

    /// Stops its sources at a record boundary and waits until `deadline` for the
    /// pipeline to drain and write its final checkpoint. A pipeline still running
    /// then (a plugin call that does not end) is aborted: its last checkpoint
    /// stays, and a restart resumes from there. Returns whether it drained.
    pub async fn stop(mut self, shared: &Shared, name: &str, deadline: Instant) -> bool {
        self.stop.cancel();
        let drained = self.thread.wait_until(deadline).await;
        let mut ended = drained;
        if !drained {
            tracing::error!(
                pipeline = %name,
                "pipeline did not drain in time (a plugin call may be stuck); aborted: its last checkpoint stays"
            );
            for task in &self.aborts {
                task.abort();
            }
            ended = self.thread.wait_until(Instant::now() + ABORT_GRACE).await;
            if !ended {
                tracing::error!(pipeline = %name, "pipeline still running after its abort; left behind");
            }
        }
        // Its tasks have ended: the thread only drops its runtime.
        if ended && !self.thread.join_until(Instant::now() + ABORT_GRACE).await {
            tracing::error!(pipeline = %name, "the pipeline's thread did not end");
        }
        shared.monitor.remove_pipeline(name, &self.sources);
        for source in self.shared_sources {
            // The last of its shards to stop waits for it.
            if let Some(source) = Arc::into_inner(source) {
                source.stop(shared, deadline).await;
            }
        }
        tracing::info!(pipeline = %name, drained, "pipeline stopped");
        drained
    }
}

/// A pipeline restored from its checkpoint, its tasks not started yet.
struct Prepared {
    name: String,
    def: PipelineDef,
    pipeline: Pipeline,
    resume: Vec<FileCheckpoint>,
    stop: CancellationToken,
}

impl Prepared {
    /// Claims the pipeline's topic prefixes and restores its checkpoint into
    /// `instances`.
    async fn restore(
        shared: &Shared,
        spec: &HostSpec,
        name: &str,
        def: &PipelineDef,
        instances: PipelinePlugins,
    ) -> anyhow::Result<Prepared> {
        let origin = &spec.origin;
        let owner = def.settings.owner();
        shared
            .owners
            .claim_prefixes(owner, &def.settings.topics)
            .with_context(|| format!("{origin}: pipelines.{owner}.topics"))?;
        check_checkpoint_layout(&shared.data_dir, owner, def)?;
        let pipeline_config = PipelineConfig {
            name: name.to_string(),
            checkpoint: Some(checkpoint_path(
                &shared.data_dir,
                &checkpoint_name(name, def),
            )),
            ..def.settings.clone()
        };
        let (pipeline, resume) =
            Pipeline::restore(pipeline_config, instances, shared.topics.for_pipeline(name))
                .await
                .with_context(|| format!("pipelines.{name}: cannot restore the checkpoint"))?;
        let stop = CancellationToken::new();
        let pipeline = pipeline
            .with_series(shared.series.clone())
            .with_owners(shared.owners.clone())
            .with_stop(stop.clone());
        let pipeline = match &shared.history {
            Some(history) => pipeline.with_history(history.clone()),
            None => pipeline,
        };
        Ok(Prepared {
            name: name.to_string(),
            def: def.clone(),
            pipeline,
            resume,
            stop,
        })
    }

    /// What sharing its sources needs to know.
    fn starting(&self) -> Starting<'_> {
        Starting {
            sources: &self.def.sources,
            shard: self.def.settings.shard.as_ref(),
            resume: &self.resume,
            stop: &self.stop,
        }
    }

    /// Starts the pipeline and its sources: a shard's input from a source
    /// `groups` holds for its group, any other source of its own.
    fn spawn(
        self,
        shared: &Shared,
        spec: &HostSpec,
        groups: &mut GroupSources,
    ) -> anyhow::Result<RunningPipeline> {
        let Prepared {
            name,
            def,
            pipeline,
            resume,
            stop,
        } = self;
        let origin = &spec.origin;
        let refs = pipeline.plugin_refs();
        let mut files = Vec::new();
        let mut system = None;
        let mut sources = Vec::new();
        let mut shared_sources = Vec::new();
        let mut own = Vec::new();
        for defined in &def.sources {
            if let Some(shard) = &def.settings.shard
                && let Some(input) = groups.take(&shard.group, shard.index, defined)
            {
                files.push(input.rx);
                shared_sources.push(input.source);
                continue;
            }
            // A shard started alone reads the files itself: its own source,
            // counted apart.
            let source_name = match &def.settings.shard {
                Some(shard) => format!("{defined}#{}", shard.index),
                None => defined.clone(),
            };
            match &spec.sources[defined] {
                SourceDef::File(config) => {
                    let config = FileSourceConfig {
                        name: source_name.clone(),
                        ..config.clone()
                    };
                    let source = FileSource::new(config, resume.clone())
                        .with_context(|| format!("{origin}: sources.{source_name}"))?;
                    own.push((source_name, source));
                }
                SourceDef::System { interval } => {
                    sources.push(source_name);
                    system = Some(SystemSource {
                        interval: *interval,
                        ..SystemSource::default()
                    });
                }
            }
        }
        // Every source is made: nothing starts before all could be.
        let thread = PipelineThread::start(&name)
            .with_context(|| format!("{origin}: pipelines.{name}: cannot start its thread"))?;
        let mut aborts = Vec::new();
        for (source_name, source) in own {
            shared.monitor.add_source(&source_name, source.stats());
            sources.push(source_name);
            let (tx, rx) = mpsc::channel(SOURCE_QUEUE);
            // Read on the pipeline's thread: see `pipeline_thread`.
            aborts.push(thread.spawn(source.run_here(tx, stop.clone())));
            files.push(rx);
        }
        let system = system.map(|source| {
            let (tx, rx) = mpsc::channel(SOURCE_QUEUE);
            aborts.push(thread.spawn(source.run(tx, stop.clone())));
            rx
        });
        shared.monitor.add_pipeline(PipelineView {
            name: name.clone(),
            stats: pipeline.stats(),
            plugins: refs.clone(),
        });
        let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        aborts.push(thread.spawn(pipeline.run(files, system, commands_rx)));
        thread.close();
        tracing::info!(pipeline = %name, shared_sources = shared_sources.len(), "pipeline started");
        Ok(RunningPipeline {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            sources,
            shared_sources,
            commands,
            refs,
            stop,
            thread,
            aborts,
        })
    }
}

/// Refuses to start a pipeline whose checkpoints were written with another
/// number of shards: each shard's plugin state holds only its keys and its
/// offsets only its records, so they cannot be carried over to another layout.
/// (A shard's checkpoint is `<pipeline>#<index>of<count>.checkpoint`.)
fn check_checkpoint_layout(data_dir: &Path, owner: &str, def: &PipelineDef) -> anyhow::Result<()> {
    let count = def.settings.shard.as_ref().map_or(1, |s| s.count);
    let dir = data_dir.join("checkpoints");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = file
            .strip_suffix(".checkpoint")
            .or_else(|| file.strip_suffix(".json"))
        else {
            continue;
        };
        let written_for = match stem.strip_prefix(owner) {
            Some("") => 1,
            Some(rest) => match rest.strip_prefix('#').and_then(|r| r.split_once("of")) {
                Some((_, n)) => n.parse::<u32>().unwrap_or(0),
                None => continue,
            },
            None => continue,
        };
        if written_for != count {
            found.push(file);
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    found.sort();
    anyhow::bail!(
        "pipelines.{owner}.shards: the checkpoints in {} ({}) were written with another number \
         of shards than {count}; a shard's plugin state and offsets cover only its own keys and \
         cannot be split or merged. Set `shards` back, or remove those files to read the files \
         again from the start",
        dir.display(),
        found.join(", ")
    )
}

/// Where pipeline `name` keeps its checkpoint.
pub(super) fn checkpoint_file(data_dir: &Path, name: &str, def: &PipelineDef) -> PathBuf {
    checkpoint_path(data_dir, &checkpoint_name(name, def))
}

/// The name of a pipeline's checkpoint file: its own, or for a shard
/// `<pipeline>#<index>of<count>`, so that a change of layout is seen.
fn checkpoint_name(name: &str, def: &PipelineDef) -> String {
    match &def.settings.shard {
        Some(s) => format!("{}#{}of{}", s.group, s.index, s.count),
        None => name.to_string(),
    }
}

/// `<data_dir>/checkpoints/<pipeline>.checkpoint` (binary). A checkpoint of an
/// older host, `<pipeline>.json`, is renamed to it first, so an upgraded host
/// resumes where the old one stopped (the format is read either way).
fn checkpoint_path(data_dir: &Path, pipeline: &str) -> PathBuf {
    let dir = data_dir.join("checkpoints");
    let path = dir.join(format!("{pipeline}.checkpoint"));
    let old = dir.join(format!("{pipeline}.json"));
    if !path.exists() && old.exists() {
        match std::fs::rename(&old, &path) {
            Ok(()) => {
                tracing::info!(from = %old.display(), to = %path.display(), "checkpoint renamed")
            }
            Err(error) => {
                tracing::warn!(path = %old.display(), %error, "cannot rename the old checkpoint")
            }
        }
    }
    path
}
