//! The file sources that the shards of one pipeline read together.
//!
//! Every shard of a sharded pipeline processes only its keys but must see every
//! record of the pipeline's files. Started together (the host's start, a config
//! reload that starts the whole pipeline), its shards read each file source once:
//! one [`FileSource`] thread reads and frames every append and hands each shard
//! the chunks, from that shard's own checkpointed offsets. Routed by the shards'
//! key, a chunk none of whose records are a shard's is held back from it and
//! sent joined to its next one (within [`wasmeter_source::HOLD_FOR`]), so that
//! a shard is woken for its own records. A shard started
//! alone (another host gave it up, or its shards' checkpoints name different
//! files) reads the files through a source of its own, as each shard did before.
//! A shard that stops alone leaves the source to the others; the last one to
//! stop waits for it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wasmeter_pipeline::Shard;
use wasmeter_source::{FileCheckpoint, FileSource, FileSourceConfig, Reader, SourceEvent};

use super::Shared;
use crate::spec::{HostSpec, SourceDef};

/// How long a shared source gets to end once its last shard stopped, past the
/// stop's deadline (it ends at its next wait).
const SOURCE_GRACE: Duration = Duration::from_secs(2);

/// A file source read by the shards of one pipeline.
pub(crate) struct SharedSource {
    /// Its name (the source's, without a shard's suffix): its counters' name.
    pub name: String,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl SharedSource {
    /// Stops it (its shards have) and waits for its thread, at most until
    /// `deadline` plus a grace; forgets its counters.
    pub async fn stop(self, shared: &Shared, deadline: Instant) {
        self.cancel.cancel();
        if tokio::time::timeout_at(deadline + SOURCE_GRACE, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::error!(source = %self.name, "shared file source still running after its last shard stopped; left behind");
        }
        shared.monitor.remove_source(&self.name);
    }
}

impl Drop for SharedSource {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A shard's end of a shared source.
pub(crate) struct ShardInput {
    /// Its events.
    pub rx: mpsc::Receiver<SourceEvent>,
    /// The source, held by each of its shards.
    pub source: Arc<SharedSource>,
}

/// A pipeline about to start, as far as sharing its sources goes.
pub(crate) struct Starting<'a> {
    /// Its definition's file sources, by their names in the spec.
    pub sources: &'a [String],
    /// Which shard it is, if it is one.
    pub shard: Option<&'a Shard>,
    /// The offsets of its checkpoint.
    pub resume: &'a [FileCheckpoint],
    /// Fires when it stops.
    pub stop: &'a CancellationToken,
}

/// A shared source and each of its shards' receivers, until the shard takes it.
type Started = (Arc<SharedSource>, Vec<Option<mpsc::Receiver<SourceEvent>>>);

/// The shared sources of a batch of pipelines started together, with each
/// shard's input until the shard takes it.
#[derive(Default)]
pub(crate) struct GroupSources {
    /// By `(group, source)`.
    inputs: HashMap<(String, String), Started>,
}

impl GroupSources {
    /// Starts one source per file source of each sharded pipeline whose shards
    /// are all in `batch` and whose checkpoints name the same files. A source
    /// that cannot be made is left to each shard (which reports the error).
    pub fn start(
        shared: &Shared,
        spec: &HostSpec,
        queue: usize,
        batch: &[Starting<'_>],
    ) -> GroupSources {
        let mut groups: BTreeMap<&str, Vec<&Starting<'_>>> = BTreeMap::new();
        for starting in batch {
            if let Some(shard) = starting.shard {
                groups.entry(&shard.group).or_default().push(starting);
            }
        }
        let mut sources = GroupSources::default();
        for (group, mut shards) in groups {
            shards.sort_by_key(|s| s.shard.map(|shard| shard.index));
            let Some(first) = shards[0].shard else {
                continue;
            };
            // The shards of one pipeline, all started, with one key: the route
            // of the first is every shard's.
            let complete = shards.len() == first.count as usize
                && shards.iter().enumerate().all(|(i, s)| {
                    s.shard.is_some_and(|shard| {
                        shard.index as usize == i
                            && shard.count == first.count
                            && shard.key == first.key
                    })
                });
            if !complete {
                continue;
            }
            for defined in shards[0].sources {
                let Some(SourceDef::File(config)) = spec.sources.get(defined) else {
                    continue;
                };
                let config = FileSourceConfig {
                    name: defined.clone(),
                    ..config.clone()
                };
                if let Some(started) = start_one(shared, config, queue, first, &shards) {
                    sources
                        .inputs
                        .insert((group.to_string(), defined.clone()), started);
                }
            }
        }
        sources
    }

    /// Shard `index` of `group`'s input from the shared source `defined`, if
    /// there is one.
    pub fn take(&mut self, group: &str, index: u32, defined: &str) -> Option<ShardInput> {
        let (source, receivers) = self
            .inputs
            .get_mut(&(group.to_string(), defined.to_string()))?;
        let rx = receivers.get_mut(index as usize)?.take()?;
        Some(ShardInput {
            rx,
            source: source.clone(),
        })
    }
}

/// One source read by `shards` (every shard of a group, in order; `first` is
/// shard 0, whose key routes each chunk to the shards it has records for), or
/// `None` if their checkpoints differ or it cannot be made.
fn start_one(
    shared: &Shared,
    config: FileSourceConfig,
    queue: usize,
    first: &Shard,
    shards: &[&Starting<'_>],
) -> Option<Started> {
    let resumes: Vec<Vec<FileCheckpoint>> = shards.iter().map(|s| s.resume.to_vec()).collect();
    let name = config.name.clone();
    let source = match FileSource::shared(config, &resumes) {
        Ok(Some(source)) => {
            let shard = first.clone();
            source.with_route(Arc::new(move |records, owners| {
                shard.mark_owners(records, owners)
            }))
        }
        Ok(None) => {
            tracing::info!(source = %name, "the shards' checkpoints name different files: each shard reads the files itself");
            return None;
        }
        Err(_) => return None,
    };
    shared.monitor.add_source(&name, source.stats());
    let (readers, receivers): (Vec<Reader>, Vec<_>) = shards
        .iter()
        .map(|s| {
            let (tx, rx) = mpsc::channel(queue);
            let stop = s.stop.clone();
            (Reader { tx, stop }, Some(rx))
        })
        .unzip();
    let cancel = CancellationToken::new();
    let tasks = TaskTracker::new();
    let (run_cancel, run_name) = (cancel.clone(), name.clone());
    tasks.spawn(async move {
        if let Err(error) = source.run_readers(readers, run_cancel).await {
            tracing::error!(source = %run_name, %error, "file source failed");
        }
    });
    tasks.close();
    let source = SharedSource {
        name,
        cancel,
        tasks,
    };
    Some((Arc::new(source), receivers))
}
