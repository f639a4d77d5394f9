//! One pipeline: its sources' chunks -> collector -> metric plugins -> topic state
//! -> delta plugin -> broker. One task owns the pipeline and its plugin
//! instances; it ends when every source has stopped and their chunks are drained,
//! after a final checkpoint.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::stream::{BoxStream, SelectAll};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use wasmeter_core::field::FieldValue;
use wasmeter_core::sample::Label;
use wasmeter_core::sample_batch::SampleBatch;
use wasmeter_core::update::{CollectOutput, RecordError};
use wasmeter_plugin::{CallError, unix_now_ms};
use wasmeter_source::{Checkpoint, Chunk, FileCheckpoint, FileKey, SourceEvent, SystemReading};

use crate::background;
use crate::batch::{Batch, Output, admit};
use crate::calls::DeltaCalls;
use crate::commit::Committer;
use crate::control::{self, Command, Replacement, Retired, SwapError, Swapped};
use crate::durable;
use crate::footprint::{Footprints, TopicKind, emits_match};
use crate::gather;
use crate::owners::TopicOwners;
use crate::plugins::{PipelinePlugins, PluginRefs};
use crate::series::SeriesStore;
use crate::shard::{Selected, Shard};
use crate::sizing::{CallSizer, first_records};
use crate::stats::PipelineStats;
use crate::topics::{FlushError, Topics};
use crate::unread::UnreadSeries;

/// Where a pipeline's samples go besides their topics (the metric history, in
/// the host). `record` may wait (a full queue): the pipeline's input then waits.
pub trait SampleSink: Send + Sync + 'static {
    /// Takes a batch of admitted samples, in the order they were produced.
    fn record(&self, samples: SampleBatch) -> futures_util::future::BoxFuture<'_, ()>;
}

/// How a pipeline runs.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineConfig {
    /// The pipeline's name (config key).
    pub name: String,
    /// How often metric plugins get `on-tick`.
    pub tick: Duration,
    /// The checkpoint file (offsets + plugin state); `None`: no checkpoints.
    pub checkpoint: Option<PathBuf>,
    /// How often the checkpoint is written while data flows.
    pub checkpoint_interval: Duration,
    /// Checkpoint bytes per second to write at most: a checkpoint of N bytes is
    /// followed by the next no sooner than N / this seconds (large plugin states
    /// are checkpointed less often; a restart then reads a little more again).
    pub checkpoint_bytes_per_sec: u64,
    /// The topic prefixes the pipeline owns (normalised, see
    /// [`normalize_prefix`](crate::owners::normalize_prefix)); its plugins' topic
    /// updates outside them are refused.
    pub topics: Vec<String>,
    /// Most topics (including sample series) the pipeline may create.
    pub max_topics: usize,
    /// Labels added to every sample the pipeline publishes (unless the sample
    /// has a label of that name), like Prometheus external labels: two feeds of
    /// the same symbols publish distinct series.
    pub labels: Vec<Label>,
    /// Newest messages per topic saved with each checkpoint, so that subscribers
    /// resume across a restart (0: positions and states only).
    pub durable_history: usize,
    /// The same for stream topics (their events).
    pub durable_stream_history: usize,
    /// The shard this pipeline is of a sharded pipeline (`None`: not sharded): it
    /// takes only the records of its keys (see [`crate::shard`]).
    pub shard: Option<Shard>,
}

impl PipelineConfig {
    /// A pipeline named `name` that owns the prefix `name`, checkpoints nowhere,
    /// ticks every second and may create 10,000 topics.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            tick: Duration::from_secs(1),
            checkpoint: None,
            checkpoint_interval: Duration::from_secs(1),
            checkpoint_bytes_per_sec: 4 << 20,
            topics: vec![name.to_string()],
            max_topics: 10_000,
            labels: Vec::new(),
            durable_history: 32,
            durable_stream_history: 1024,
            shard: None,
        }
    }

    /// Who owns the pipeline's topics and series: its name, or a sharded
    /// pipeline's name for each of its shards.
    pub fn owner(&self) -> &str {
        self.shard.as_ref().map_or(&self.name, |s| &s.group)
    }

    /// The topic of the pipeline's record errors: `_wasmeter/errors/<pipeline>`,
    /// `_wasmeter/errors/<pipeline>/<shard>` for a shard.
    fn errors_topic(&self) -> Arc<str> {
        match &self.shard {
            Some(s) => format!("_wasmeter/errors/{}/{}", s.group, s.index).into(),
            None => format!("_wasmeter/errors/{}", self.name).into(),
        }
    }
}

/// Where a collector call's records are in their file, for error messages.
#[derive(Clone, Copy)]
struct Located<'a> {
    path: &'a Path,
    /// The chunk's start in the file.
    chunk_start: u64,
    /// The call's start in the data the collector is given.
    offset: usize,
    /// The shard's records of the chunk, when the data is only those.
    selected: Option<&'a Selected>,
}

impl Located<'_> {
    /// The file position of the byte `at` of the call's data.
    fn position(&self, at: usize) -> u64 {
        let in_data = self.offset + at;
        let in_chunk = self.selected.map_or(in_data, |s| s.chunk_offset(in_data));
        self.chunk_start + in_chunk as u64
    }
}

/// What reaches a pipeline.
#[derive(Debug)]
pub enum Input {
    /// From a file source.
    File(SourceEvent),
    /// From the system source.
    System(SystemReading),
}

/// Every input of a running pipeline, merged.
type Inputs = SelectAll<BoxStream<'static, Input>>;

/// A pipeline ready to run.
pub struct Pipeline {
    config: PipelineConfig,
    plugins: PipelinePlugins,
    refs: PluginRefs,
    topics: Topics,
    stats: Arc<PipelineStats>,
    /// Where the latest value of each sample series goes, if anywhere.
    series: Option<SeriesStore>,
    /// Where samples go besides their topics.
    history: Option<Arc<dyn SampleSink>>,
    /// New values of sample-series topics nobody subscribes to, published each tick.
    unread: UnreadSeries,
    errors_topic: Arc<str>,
    /// Committed offsets: records before them have been processed and published.
    /// With each: the path, the offset, and the file size last read (for the checkpoint).
    offsets: BTreeMap<FileKey, (PathBuf, u64, u64)>,
    dirty: bool,
    /// What each plugin created; ownership and quotas.
    footprints: Footprints,
    /// The part of a chunk not processed because the collector was quarantined,
    /// and the chunks taken with it: processed first, in order, once it is
    /// released or replaced.
    held: VecDeque<Chunk>,
    /// An input taken while gathering chunks that was not one (`Some(None)`:
    /// the inputs ended): handled next.
    deferred: Option<Option<Input>>,
    /// Admitted output of the chunks being processed, published once for them
    /// all (see `gather.rs`).
    pending: Batch,
    /// Ends the pipeline early while its input is paused (shutdown, reload).
    stop: CancellationToken,
    /// The plugin states in the last checkpoint written or restored.
    last_states: BTreeMap<String, Vec<u8>>,
    /// How many records a collector call gets.
    sizer: CallSizer,
    /// No checkpoint before this (large checkpoints are written less often). On
    /// tokio's clock, like the checkpoint interval.
    checkpoint_not_before: tokio::time::Instant,
    /// The last checkpoint, while its file is written (see [`Writing`]).
    writing: Option<Writing>,
    /// When the pipeline first processed something after the checkpoint being
    /// written was taken (Unix ms): the lag it leaves once written.
    dirty_after_capture: Option<u64>,
    /// Restored from a checkpoint that was not final: checkpoint again before
    /// publishing anything (see `durable.rs`).
    restored_unclean: bool,
    /// Set when changes could not be handed to the broker and the pipeline must
    /// end without another checkpoint (stopped while the broker was unreachable,
    /// or another host produces its topics now): the last checkpoint stays, and
    /// whoever runs it next reads again from there.
    halted: bool,
}

/// How often a paused pipeline looks whether its collector was released.
const PAUSE_POLL: Duration = Duration::from_millis(100);

/// The first and the longest wait before flushing again to an unreachable broker.
const FLUSH_RETRY: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// How often a pipeline forgets topics removed elsewhere (expired, evicted).
const FOOTPRINT_RECONCILE: Duration = Duration::from_secs(60);

/// Most record errors logged per chunk; the rest are counted.
const LOGGED_ERRORS_PER_CHUNK: usize = 5;

impl Pipeline {
    /// Builds a pipeline from initialised plugins and restores its checkpoint, if
    /// any: plugin states are imported, and the file offsets are returned for the
    /// file sources to resume from.
    pub async fn restore(
        config: PipelineConfig,
        mut plugins: PipelinePlugins,
        topics: Topics,
    ) -> Result<(Self, Vec<FileCheckpoint>), wasmeter_source::SourceError> {
        let mut resume = Vec::new();
        let mut last_states = BTreeMap::new();
        let mut restored = None;
        let mut restored_unclean = false;
        if let Some(path) = &config.checkpoint {
            let path = path.clone();
            let loaded = tokio::task::spawn_blocking(move || Checkpoint::load(&path))
                .await
                .expect("checkpoint load task")?;
            if let Some(mut checkpoint) = loaded {
                let saved_topics = checkpoint.extra.remove(durable::KEY);
                plugins.import_states(&checkpoint.extra).await;
                tracing::info!(pipeline = %config.name, files = checkpoint.files.len(), "resuming from checkpoint");
                resume = checkpoint.files;
                last_states = checkpoint.extra;
                restored =
                    saved_topics.map(|bytes| durable::restore(&config.name, &bytes, &topics));
                restored_unclean = restored.as_ref().is_some_and(|r| !r.clean);
            }
        }
        let offsets = resume
            .iter()
            .map(|f| (f.file, (f.path.clone(), f.offset, f.size)))
            .collect();
        let errors_topic = config.errors_topic();
        let refs = PluginRefs::default();
        refs.set(plugins.refs());
        let mut footprints = Footprints::new(
            config.owner(),
            config.topics.clone(),
            config.max_topics,
            TopicOwners::default(),
        );
        // The restored topics belong to the plugins that created them.
        let mut unread = UnreadSeries::default();
        if let Some(r) = restored {
            for c in r.creators {
                footprints.restore(&c.creator, &c.topic, c.kind);
            }
            // One that exists meanwhile (created by another pipeline of this
            // host, or restored) is updated as a topic instead.
            let dormant = r.dormant.into_iter();
            for (topic, point) in dormant.filter(|(t, _)| !topics.store().contains(t)) {
                topics.broker().set_dormant(&topic, true);
                unread.keep_dormant(topic, point);
            }
        }
        Ok((
            Self {
                config,
                plugins,
                refs,
                topics,
                stats: Arc::default(),
                series: None,
                history: None,
                unread,
                errors_topic,
                offsets,
                dirty: false,
                footprints,
                held: VecDeque::new(),
                deferred: None,
                pending: Batch::default(),
                stop: CancellationToken::new(),
                last_states,
                checkpoint_not_before: tokio::time::Instant::now(),
                writing: None,
                dirty_after_capture: None,
                restored_unclean,
                halted: false,
                sizer: CallSizer::default(),
            },
            resume,
        ))
    }

    /// The pipeline's counters.
    pub fn stats(&self) -> Arc<PipelineStats> {
        self.stats.clone()
    }

    /// Its plugin instances, with live handles on their health; kept current
    /// across swaps.
    pub fn plugin_refs(&self) -> PluginRefs {
        self.refs.clone()
    }

    /// Records the latest value of every sample series it publishes into `series`.
    pub fn with_series(mut self, series: SeriesStore) -> Self {
        self.series = Some(series);
        self
    }

    /// Hands every batch of samples to `sink` after its topics are published.
    pub fn with_history(mut self, sink: Arc<dyn SampleSink>) -> Self {
        self.history = Some(sink);
        self
    }

    /// Shares sample-series ownership with the host's other pipelines (alone, a
    /// pipeline owns every series it publishes).
    pub fn with_owners(mut self, owners: TopicOwners) -> Self {
        let restored: Vec<_> = self
            .footprints
            .topics()
            .map(|(topic, creator, kind)| (topic.clone(), creator.clone(), kind))
            .collect();
        self.footprints = Footprints::new(
            self.config.owner(),
            self.config.topics.clone(),
            self.config.max_topics,
            owners,
        );
        // The topics restored from the checkpoint, claimed under the shared owners.
        for (topic, creator, kind) in restored {
            self.footprints.restore(&creator, &topic, kind);
        }
        self
    }

    /// Lets `stop` end the pipeline while its input is paused (a quarantined
    /// collector): it then writes its checkpoint and returns, leaving the unread
    /// input in the files. Without a pause the pipeline ends when its sources do.
    pub fn with_stop(mut self, stop: CancellationToken) -> Self {
        self.stop = stop;
        self
    }

    /// True while the collector is quarantined: input is left unread (in the
    /// channel, then in the files) until it is released or replaced.
    fn input_paused(&self) -> bool {
        self.plugins.collector.health_handle().quarantined()
    }

    /// Notes that something processed is not yet in a checkpoint.
    fn mark_dirty(&mut self, bytes: u64) {
        self.dirty = true;
        if self.writing.is_some() && self.dirty_after_capture.is_none() {
            self.dirty_after_capture = Some(unix_now_ms().max(1) as u64);
        }
        PipelineStats::add(&self.stats.uncheckpointed_bytes, bytes);
        let _ = self.stats.dirty_since_ms.compare_exchange(
            0,
            unix_now_ms().max(1) as u64,
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Processes inputs until every sender is gone, then writes a final checkpoint.
    /// Commands (plugin swaps) are applied between two inputs.
    pub async fn run(
        mut self,
        files: Vec<mpsc::Receiver<SourceEvent>>,
        system: Option<mpsc::Receiver<SystemReading>>,
        mut commands: mpsc::Receiver<Command>,
    ) {
        let mut inputs: Inputs = SelectAll::new();
        for rx in files {
            inputs.push(ReceiverStream::new(rx).map(Input::File).boxed());
        }
        if let Some(rx) = system {
            inputs.push(ReceiverStream::new(rx).map(Input::System).boxed());
        }
        let mut tick = tokio::time::interval(self.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Due one interval after the start, like every later one (an interval's
        // first tick is at once): what is read at the start waits for it too.
        // The shards of a pipeline take theirs in turn, spread over the
        // interval: each pauses its shard while it takes its topics, and
        // shards that paused together paused every topic of the pipeline at once.
        let every = self.config.checkpoint_interval;
        let turn = self
            .config
            .shard
            .as_ref()
            .map_or(Duration::ZERO, |s| every * s.index / s.count.max(1));
        let mut checkpoint =
            tokio::time::interval_at(tokio::time::Instant::now() + every + turn, every);
        checkpoint.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reconcile = tokio::time::interval(FOOTPRINT_RECONCILE);
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if self.restored_unclean {
            // Before anything new is published: a crash from here on restores
            // from a save whose seqs skip past those this run will publish.
            self.checkpoint(When::Now).await;
        }
        let mut was_paused = false;
        while !self.halted {
            if self
                .writing
                .as_ref()
                .is_some_and(|w| w.writer.is_finished())
            {
                self.finish_checkpoint().await;
            }
            let paused = self.input_paused();
            if paused != was_paused {
                self.note_pause(paused);
                was_paused = paused;
            }
            if !paused && let Some(chunk) = self.held.pop_front() {
                self.on_chunks(vec![chunk]).await;
                continue;
            }
            if !paused && let Some(deferred) = self.deferred.take() {
                match deferred {
                    Some(input) => self.on_input(input, &mut inputs).await,
                    None => break,
                }
                continue;
            }
            tokio::select! {
                input = inputs.next(), if !paused => match input {
                    Some(input) => self.on_input(input, &mut inputs).await,
                    None => break,
                },
                _ = self.stop.cancelled(), if paused => break,
                _ = tokio::time::sleep(PAUSE_POLL), if paused => {}
                Some(command) = commands.recv() => self.on_command(command).await,
                _ = tick.tick() => self.on_tick().await,
                _ = checkpoint.tick() => self.checkpoint(When::Due).await,
                _ = reconcile.tick() => self.reconcile_footprints(),
            }
        }
        self.finish_checkpoint().await;
        if !self.halted {
            self.dirty = true;
            self.checkpoint(When::Final).await;
        }
        if was_paused {
            self.note_pause(false);
        }
        tracing::info!(pipeline = %self.config.name, "pipeline stopped");
    }

    /// Waits until the broker accepted every change published so far, retrying
    /// while it is unreachable: the input waits meanwhile (in the channel, then
    /// in the files), so nothing is lost and nothing is read ahead. False when
    /// the pipeline must end without another checkpoint (`halted`):
    /// it was stopped while waiting, or another host produces its topics now.
    async fn flush(&mut self) -> bool {
        let mut wait = FLUSH_RETRY.0;
        let mut waiting = false;
        let flushed = loop {
            match self.topics.flush().await {
                Ok(()) => break true,
                Err(error @ FlushError::Fenced(_)) => {
                    tracing::error!(pipeline = %self.config.name, %error, "pipeline ends; its unsent changes are dropped");
                    break false;
                }
                Err(error @ FlushError::Unavailable(_)) => {
                    PipelineStats::add(&self.stats.flush_failures, 1);
                    if !waiting {
                        waiting = true;
                        self.set_broker_waiting(true);
                        tracing::warn!(pipeline = %self.config.name, %error, "input waits until the broker takes the pipeline's changes");
                    }
                    tokio::select! {
                        _ = self.stop.cancelled() => {
                            tracing::warn!(pipeline = %self.config.name, "stopped while the broker was unreachable; the records since the last checkpoint are read again at the next start");
                            break false;
                        }
                        _ = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(FLUSH_RETRY.1);
                }
            }
        };
        if waiting {
            self.set_broker_waiting(false);
            if flushed {
                tracing::info!(pipeline = %self.config.name, "the broker took the pipeline's changes; input resumes");
            }
        }
        self.halted |= !flushed;
        flushed
    }

    fn set_broker_waiting(&self, waiting: bool) {
        self.stats
            .broker_waiting
            .store(u64::from(waiting), std::sync::atomic::Ordering::Relaxed);
    }

    fn note_pause(&self, paused: bool) {
        self.stats
            .input_paused
            .store(u64::from(paused), std::sync::atomic::Ordering::Relaxed);
        if paused {
            tracing::error!(pipeline = %self.config.name, collector = self.plugins.collector.name(), "collector quarantined: input paused; unread records wait in the files until it is released, swapped or rolled back");
        } else {
            tracing::info!(pipeline = %self.config.name, "input resumed");
        }
    }

    /// Forgets topics that no longer exist (expired or evicted), so they stop
    /// counting toward quotas.
    fn reconcile_footprints(&mut self) {
        if let Some(idle) = self.topics.store().idle() {
            for topic in self.unread.expire(idle) {
                self.topics.broker().set_dormant(&topic, false);
            }
        }
        let (store, unread) = (self.topics.store(), &self.unread);
        // `contains`, not `get`: looking a topic up would count as using it,
        // and no topic would ever go idle.
        let gone = self
            .footprints
            .forget_where(|topic| !store.contains(topic) && !unread.is_dormant(topic));
        if gone > 0 {
            tracing::debug!(pipeline = %self.config.name, topics = gone, "forgot removed topics");
        }
    }

    /// Handles one input; a chunk together with those already queued behind it.
    async fn on_input(&mut self, input: Input, inputs: &mut Inputs) {
        match input {
            Input::File(event) => self.on_file_event(event, inputs).await,
            Input::System(reading) => {
                PipelineStats::add(&self.stats.chunks, 1);
                let source = reading.source.clone();
                self.on_chunk(&source, &reading.data, None).await;
                self.publish_pending().await;
                self.flush().await;
            }
        }
    }

    /// `first` and the chunks queued behind it, up to the group's bounds; the
    /// first other input is kept for next (see `gather.rs`).
    fn gather(&mut self, first: Chunk, inputs: &mut Inputs) -> Vec<Chunk> {
        let mut bytes = first.data.len();
        let mut taken = 1;
        let mut group = vec![first];
        while taken < gather::MAX_CHUNKS && bytes < gather::MAX_BYTES {
            match inputs.next().now_or_never() {
                Some(Some(Input::File(SourceEvent::Chunk(chunk)))) => {
                    bytes += chunk.data.len();
                    taken += 1;
                    gather::push(&mut group, chunk);
                }
                Some(other) => {
                    self.deferred = Some(other);
                    break;
                }
                None => break,
            }
        }
        PipelineStats::add(&self.stats.chunks, taken as u64);
        group
    }

    async fn on_file_event(&mut self, event: SourceEvent, inputs: &mut Inputs) {
        match event {
            SourceEvent::Chunk(chunk) => {
                let group = self.gather(chunk, inputs);
                self.on_chunks(group).await;
            }
            SourceEvent::Opened { file, path, offset } => {
                let size = self.offsets.get(&file).map_or(offset, |e| e.2.max(offset));
                self.offsets
                    .insert(file, (path.to_path_buf(), offset, size));
            }
            SourceEvent::Truncated { file, path } => {
                tracing::warn!(pipeline = %self.config.name, path = %path.display(), "file truncated; reading it again from the start");
                self.offsets.insert(file, (path.to_path_buf(), 0, 0));
                self.mark_dirty(0);
            }
            SourceEvent::Rotated { old, path } => {
                tracing::info!(pipeline = %self.config.name, path = %path.display(), ?old, "file rotated");
            }
            SourceEvent::Closed { file } => {
                self.offsets.remove(&file);
                self.mark_dirty(0);
            }
        }
    }

    /// Processes file chunks in order, publishes their output once and commits
    /// their offsets. If the collector is quarantined, the unprocessed rest of
    /// a chunk and the chunks after it are held.
    async fn on_chunks(&mut self, group: Vec<Chunk>) {
        let mut processed = Vec::with_capacity(group.len());
        let mut unprocessed = Vec::new();
        let mut rest = group.into_iter();
        for chunk in rest.by_ref() {
            if self.input_paused() {
                unprocessed.push(chunk);
                break;
            }
            let done = self.process_chunk(&chunk).await;
            let whole = done >= chunk.data.len();
            processed.push((chunk, done));
            if !whole {
                break;
            }
        }
        unprocessed.extend(rest);
        self.publish_pending().await;
        if !self.flush().await {
            // Not accepted by the broker: the offsets stay where they were.
            return;
        }
        let mut cut = Vec::new();
        for (chunk, done) in processed {
            let (committed, rest) = split_at_processed(chunk, done);
            self.offsets.insert(
                committed.file,
                (
                    committed.path.to_path_buf(),
                    committed.end,
                    committed.file_size,
                ),
            );
            self.mark_dirty(committed.end.saturating_sub(committed.start));
            if let Some(rest) = rest {
                tracing::warn!(pipeline = %self.config.name, path = %rest.path.display(), from = rest.start, bytes = rest.data.len(), "collector quarantined mid-chunk; the rest of the chunk waits");
                cut.push(rest);
            }
        }
        // In order: what was cut short, what was not started, then what was
        // held already (chunks that came after these).
        let later = std::mem::take(&mut self.held);
        self.held = cut.into_iter().chain(unprocessed).chain(later).collect();
    }

    /// Collects one file chunk (the shard's records of it); returns the bytes of
    /// its data processed.
    async fn process_chunk(&mut self, chunk: &Chunk) -> usize {
        let source = chunk.path.to_string_lossy().into_owned();
        let selected = self.config.shard.as_ref().map(|s| s.select(&chunk.data));
        let data = selected.as_ref().map_or(&chunk.data[..], |s| &s.data[..]);
        let done = self
            .on_chunk(
                &source,
                data,
                Some((chunk.path.as_ref(), chunk.start, selected.as_ref())),
            )
            .await;
        selected.map_or(done, |s| s.chunk_end(done))
    }

    /// Applies a swap or removal, then refreshes the live plugin handles.
    async fn on_command(&mut self, command: Command) {
        match command {
            Command::Swap {
                replacement,
                carry_state,
                reply,
            } => {
                let name = replacement.name().to_string();
                let emits = replacement.emits().to_vec();
                let result = self.swap(*replacement, carry_state).await;
                match &result {
                    Ok(swapped) => {
                        self.remove_topics_not_emitted(&name, &emits);
                        self.stats.record_swap(swapped.pause);
                        // The checkpoint must hold the new version's state.
                        self.mark_dirty(0);
                        tracing::info!(pipeline = %self.config.name, plugin = %name, pause_us = swapped.pause.as_micros() as u64, state = ?swapped.state, "plugin swapped");
                    }
                    Err(error) => {
                        tracing::warn!(pipeline = %self.config.name, plugin = %name, %error, "swap refused")
                    }
                }
                let _ = reply.send(result);
            }
            Command::Remove { name, reply } => {
                let result = self.remove(&name);
                if result.is_ok() {
                    self.remove_topics_of(&name, |_, _| false);
                    tracing::info!(pipeline = %self.config.name, plugin = %name, "plugin removed");
                }
                let _ = reply.send(result);
            }
        }
        self.refs.set(self.plugins.refs());
    }

    /// Removes the topics the plugin `name` created that its new version does not
    /// declare in `emits` (metric names, or topic patterns for topic updates). A
    /// version that declares nothing keeps them all.
    fn remove_topics_not_emitted(&mut self, name: &str, emits: &[String]) {
        if emits.is_empty() {
            return;
        }
        self.remove_topics_of(name, |topic, kind| match kind {
            TopicKind::Topic | TopicKind::Stream => emits_match(emits, topic),
            TopicKind::Series => topic
                .split('/')
                .nth(1)
                .is_some_and(|metric| emits_match(emits, metric)),
        });
    }

    /// Removes the topics `name` created that `keep` rejects, from the topic
    /// state and so from the hub (subscribers get `removed`).
    fn remove_topics_of(&mut self, name: &str, keep: impl Fn(&str, TopicKind) -> bool) {
        let gone = self.footprints.forget(name, keep);
        if gone.is_empty() {
            return;
        }
        let removed: HashSet<&str> = gone.iter().map(|t| &**t).collect();
        for topic in self.unread.retain(|topic| !removed.contains(topic)) {
            self.topics.broker().set_dormant(&topic, false);
        }
        for topic in &gone {
            self.topics.remove(topic);
        }
        self.topics.store().run_pending_tasks();
        tracing::info!(pipeline = %self.config.name, plugin = %name, topics = gone.len(), "removed the plugin's topics");
    }

    async fn swap(
        &mut self,
        replacement: Replacement,
        carry_state: bool,
    ) -> Result<Swapped, SwapError> {
        let started = Instant::now();
        let plugins = &mut self.plugins;
        let not_found = |replacement: &Replacement| SwapError::NotFound {
            pipeline: self.config.name.clone(),
            kind: replacement.kind(),
            name: replacement.name().to_string(),
        };
        match replacement {
            Replacement::Collector(new) => {
                if plugins.collector.name() != new.name() {
                    return Err(not_found(&Replacement::Collector(new)));
                }
                control::replace(&mut plugins.collector, new, carry_state, started).await
            }
            Replacement::Metric(new) => {
                match plugins.metrics.iter_mut().find(|m| m.name() == new.name()) {
                    Some(slot) => control::replace(slot, new, carry_state, started).await,
                    None => {
                        plugins.metrics.push(new);
                        Ok(added(started))
                    }
                }
            }
            Replacement::Delta(new) => match &mut plugins.delta {
                Some(slot) if slot.name() == new.name() => {
                    control::replace(slot, new, carry_state, started).await
                }
                Some(slot) => Err(SwapError::DeltaTaken {
                    pipeline: self.config.name.clone(),
                    existing: slot.name().to_string(),
                }),
                None => {
                    plugins.delta = Some(new);
                    Ok(added(started))
                }
            },
        }
    }

    fn remove(&mut self, name: &str) -> Result<Retired, SwapError> {
        let plugins = &mut self.plugins;
        if plugins.collector.name() == name {
            return Err(SwapError::CollectorNeeded {
                pipeline: self.config.name.clone(),
                name: name.to_string(),
            });
        }
        if let Some(at) = plugins.metrics.iter().position(|m| m.name() == name) {
            return Ok(Retired::new(plugins.metrics.remove(at)));
        }
        match plugins.delta.take_if(|d| d.name() == name) {
            Some(delta) => Ok(Retired::new(delta)),
            None => Err(SwapError::NotFound {
                pipeline: self.config.name.clone(),
                kind: wasmeter_core::plugin::PluginKind::Metric,
                name: name.to_string(),
            }),
        }
    }

    /// Runs the collector over a chunk of whole records and publishes the result.
    /// `file` is the path and offset of the chunk, for error messages; a file's
    /// chunk goes to the collector in calls sized to its limits (see
    /// [`CallSizer`]), another source's reading whole. Returns how many bytes of
    /// `data` were processed: all of them, unless the collector was quarantined on
    /// the way.
    async fn on_chunk(
        &mut self,
        source: &str,
        data: &[u8],
        file: Option<(&Path, u64, Option<&Selected>)>,
    ) -> usize {
        let Some((path, chunk_start, selected)) = file else {
            let records = usize::from(!data.is_empty());
            return self.collect_call(source, data, records, None).await;
        };
        let mut done = 0;
        while done < data.len() {
            let n = self.sizer.records_per_call(self.plugins.collector.limits());
            let (len, records) = first_records(&data[done..], n);
            let piece = &data[done..done + len];
            let at = Located {
                path,
                chunk_start,
                offset: done,
                selected,
            };
            let processed = self.collect_call(source, piece, records, Some(at)).await;
            done += processed;
            if processed < len {
                break;
            }
        }
        done
    }

    /// One collector call over `data` (`records` records), falling back to one
    /// call per record if it fails; publishes the output. Returns the bytes
    /// processed.
    async fn collect_call(
        &mut self,
        source: &str,
        data: &[u8],
        records: usize,
        file: Option<Located<'_>>,
    ) -> usize {
        let started = Instant::now();
        let (out, done) = match self.plugins.collector.collect(source, data).await {
            Ok(out) => {
                let took = started.elapsed();
                let writes = out.updates.len().max(out.events.len());
                let samples = out.samples.len() + out.points.len();
                self.sizer.observe(records, samples, writes, took);
                (out, data.len())
            }
            Err(error) => {
                if matches!(error, CallError::InvalidOutput(_)) {
                    self.sizer.refused(records, self.plugins.collector.limits());
                }
                self.collect_record_by_record(source, data, error).await
            }
        };
        self.report_record_errors(source, file, &out.errors);
        self.apply(Output {
            samples: out.samples,
            points: out.points,
            updates: out.updates,
            events: out.events,
        })
        .await;
        done
    }

    /// After a failed call, isolates the records that fail: each record is collected
    /// on its own, and those that still fail become record errors. A plugin that
    /// fails on everything is quarantined along the way; the records from there on
    /// are left unprocessed (returns the output and the bytes processed).
    async fn collect_record_by_record(
        &mut self,
        source: &str,
        data: &[u8],
        first: CallError,
    ) -> (CollectOutput, usize) {
        let mut out = CollectOutput::default();
        if matches!(first, CallError::Quarantined { .. }) {
            return (out, 0);
        }
        tracing::warn!(pipeline = %self.config.name, %source, error = %first, "collector failed on a chunk; retrying record by record");
        let mut offset = 0usize;
        for (i, record) in data.split_inclusive(|b| *b == b'\n').enumerate() {
            let at = offset;
            if self.input_paused() {
                PipelineStats::add(&self.stats.chunks_failed, 1);
                return (out, at);
            }
            offset += record.len();
            match self.plugins.collector.collect(source, record).await {
                Ok(one) => {
                    out.samples.extend(one.samples);
                    out.points.extend(&one.points);
                    out.updates.extend(one.updates);
                    out.events.extend(one.events);
                    out.errors.extend(one.errors.into_iter().map(|mut e| {
                        e.line = i as u32 + 1;
                        e.offset = at as u32;
                        e
                    }));
                }
                Err(CallError::Quarantined { .. }) => {
                    PipelineStats::add(&self.stats.chunks_failed, 1);
                    return (out, at);
                }
                Err(error) => {
                    out.errors.push(RecordError {
                        line: i as u32 + 1,
                        offset: at as u32,
                        message: format!("collector failed on this record: {error}"),
                    });
                }
            }
        }
        (out, data.len())
    }

    fn report_record_errors(
        &mut self,
        source: &str,
        file: Option<Located<'_>>,
        errors: &[RecordError],
    ) {
        if errors.is_empty() {
            return;
        }
        PipelineStats::add(&self.stats.record_errors, errors.len() as u64);
        let locate = |e: &RecordError| match file {
            Some(at) => format!(
                "{}: byte {}",
                at.path.display(),
                at.position(e.offset as usize)
            ),
            None => format!("{source}: line {}", e.line),
        };
        for e in errors.iter().take(LOGGED_ERRORS_PER_CHUNK) {
            tracing::warn!(pipeline = %self.config.name, at = %locate(e), "malformed record: {}", e.message);
        }
        if errors.len() > LOGGED_ERRORS_PER_CHUNK {
            tracing::warn!(pipeline = %self.config.name, %source, "{} more malformed records in this chunk", errors.len() - LOGGED_ERRORS_PER_CHUNK);
        }
        let last = errors.last().expect("not empty");
        let total = PipelineStats::get(&self.stats.record_errors);
        let fields = BTreeMap::from([
            (
                "message".to_string(),
                FieldValue::Text(last.message.clone()),
            ),
            ("at".to_string(), FieldValue::Text(locate(last))),
            ("count".to_string(), FieldValue::Number(total as f64)),
        ]);
        self.committer().commit_exact(&self.errors_topic, fields);
    }

    async fn on_tick(&mut self) {
        let now = unix_now_ms();
        let held = self.commit_held_series();
        let mut batch = Batch::default();
        for m in &mut self.plugins.metrics {
            match m.on_tick(now).await {
                Ok(samples) => admit(
                    &mut self.footprints,
                    &self.stats,
                    &self.config.labels,
                    m.as_mut(),
                    Output::points(samples),
                    &mut batch,
                ),
                Err(error) => tracing::debug!(plugin = m.name(), %error, "on-tick failed"),
            }
        }
        let published = !batch.is_empty();
        if published {
            self.mark_dirty(0);
            self.publish_batch(batch).await;
        }
        if held || published {
            self.flush().await;
        }
    }

    /// Admits the collector's output and feeds its samples through the metric
    /// plugins (each sees the admitted samples of those before it); all of it is
    /// published with the rest of the chunks being processed (`publish_pending`),
    /// or at once if what waits has grown large.
    async fn apply(&mut self, output: Output) {
        let mut batch = Batch::default();
        admit(
            &mut self.footprints,
            &self.stats,
            &self.config.labels,
            self.plugins.collector.as_mut(),
            output,
            &mut batch,
        );
        if !batch.samples.is_empty() {
            // Each metric plugin takes the batch's samples so far: the
            // collector's and those the plugins before it derived.
            for m in &mut self.plugins.metrics {
                match m.on_samples(&batch.samples).await {
                    Ok(derived) => admit(
                        &mut self.footprints,
                        &self.stats,
                        &self.config.labels,
                        m.as_mut(),
                        Output::points(derived),
                        &mut batch,
                    ),
                    Err(error) => tracing::debug!(plugin = m.name(), %error, "on-samples failed"),
                }
            }
        }
        self.pending.append(batch);
        if self.pending.items() >= gather::PUBLISH_AT_ITEMS {
            self.publish_pending().await;
        }
    }

    /// Publishes what the chunks processed since the last call admitted.
    async fn publish_pending(&mut self) {
        if self.pending.items() > 0 {
            let batch = std::mem::take(&mut self.pending);
            self.publish_batch(batch).await;
        }
    }

    /// Commits and publishes one change per topic of the batch (coalesced in
    /// order, later values win).
    async fn publish_batch(&mut self, mut batch: Batch) {
        PipelineStats::add(&self.stats.samples, batch.samples.len() as u64);
        if let Some(series) = &self.series {
            series.record(&batch.samples);
        }
        let committer = Committer {
            topics: &self.topics,
            stats: &self.stats,
        };
        let samples = std::mem::take(&mut batch.samples);
        let delta = self.plugins.delta.as_deref_mut();
        committer
            .commit_batch(
                delta.map(|d| d as &mut dyn DeltaCalls),
                batch,
                &mut self.unread,
            )
            .await;
        if let Some(history) = &self.history {
            history.record(samples).await;
        }
    }

    fn committer(&self) -> Committer<'_> {
        Committer {
            topics: &self.topics,
            stats: &self.stats,
        }
    }

    /// Publishes what is held for unread series topics and creates the dormant
    /// ones someone watches for now (each tick, and before a checkpoint saves
    /// the topics). True if it committed anything.
    fn commit_held_series(&mut self) -> bool {
        self.unread.tick(Instant::now());
        let committed = Committer {
            topics: &self.topics,
            stats: &self.stats,
        }
        .commit_held(&mut self.unread);
        let dormant = self.unread.dormant_count() as u64;
        self.stats.series_dormant.store(dormant, Ordering::Relaxed);
        committed
    }

    /// Writes offsets and plugin states, if anything was processed since the last
    /// one and the last checkpoint's size allows another; now or at the end
    /// regardless (see [`When`]).
    async fn checkpoint(&mut self, when: When) {
        // One at a time: a due checkpoint waits until the last one is written;
        // any other first finishes it.
        if let Some(writing) = &self.writing {
            if when == When::Due && !writing.writer.is_finished() {
                return;
            }
            self.finish_checkpoint().await;
            if self.halted {
                return;
            }
        }
        let force = when != When::Due;
        let Some(path) = self.config.checkpoint.clone() else {
            return;
        };
        // The final checkpoint is always written: it says the topics saved with
        // it are all that was published.
        if !force && (!self.dirty || tokio::time::Instant::now() < self.checkpoint_not_before) {
            return;
        }
        // The topics saved below hold every value, and offsets are saved only
        // for records whose changes the broker accepted.
        self.commit_held_series();
        if !self.flush().await {
            return;
        }
        let pending_bytes = PipelineStats::get(&self.stats.uncheckpointed_bytes);
        let states = match self.plugins.export_states(&self.last_states).await {
            Ok(states) => states,
            Err(error) => {
                // The previous checkpoint stays: its offsets match its states.
                PipelineStats::add(&self.stats.checkpoints_skipped, 1);
                tracing::warn!(pipeline = %self.config.name, %error, "checkpoint skipped");
                return;
            }
        };
        self.dirty = false;
        let checkpoint = Checkpoint {
            files: self
                .offsets
                .iter()
                .map(|(file, (path, offset, size))| FileCheckpoint {
                    file: *file,
                    path: path.clone(),
                    offset: *offset,
                    size: *size,
                })
                .collect(),
            extra: states,
        };
        let written = tokio::time::Instant::now();
        let copy = self.topics.broker().keeps_checkpoints();
        // Taken as they are now: made whole and encoded by the writer, piece by
        // piece (with tens of thousands of topics that is tens of MiB, never
        // held whole, and tens of milliseconds the pipeline no longer waits).
        let taken = durable::take(
            &self.footprints,
            &self.errors_topic,
            self.topics.broker(),
            (self.unread.dormant_count(), |topic| {
                self.unread.dormant_point(topic)
            }),
            (
                self.config.durable_history,
                self.config.durable_stream_history,
            ),
            when == When::Final,
        );
        // Encoded and written at a lower priority than the workers: on a small
        // machine the writer otherwise takes a core the workers wait for.
        let writer = tokio::task::spawn_blocking(move || {
            background::at_low_priority("checkpoint", move || save(checkpoint, &path, taken, copy))
        });
        // Taken: the pipeline goes on while the file is written and synced (tens
        // of milliseconds for a few MiB, which it spent waiting before). Only the
        // first and the last checkpoint wait for it.
        self.writing = Some(Writing {
            writer,
            copy,
            pending_bytes,
            written,
        });
        if force {
            self.finish_checkpoint().await;
        }
    }

    /// Waits until the checkpoint being written is, and records the outcome:
    /// the states it holds, the pacing of the next one, what is left
    /// uncheckpointed; a failed one leaves the pipeline dirty, so that the next
    /// one is written.
    async fn finish_checkpoint(&mut self) {
        let Some(Writing {
            writer,
            copy,
            pending_bytes,
            written,
        }) = self.writing.take()
        else {
            return;
        };
        let after_capture = self.dirty_after_capture.take();
        let result = writer.await;
        let result = match result {
            Ok((Ok((size, bytes)), states)) => {
                let kept = match copy {
                    true => self.topics.broker().keep_checkpoint(bytes).await,
                    false => Ok(()),
                };
                if let Err(error) = kept {
                    // Offsets and states stay as in the copy the broker kept.
                    PipelineStats::add(&self.stats.checkpoint_errors, 1);
                    self.dirty = true;
                    tracing::error!(pipeline = %self.config.name, %error, "checkpoint not kept by the broker");
                    self.halted |= matches!(error, FlushError::Fenced(_));
                    return;
                }
                Ok((Ok(size), states))
            }
            Ok((Err(error), states)) => Ok((Err(error), states)),
            Err(error) => Err(error),
        };
        if let Ok((Ok(size), _)) = &result {
            let budget = self.config.checkpoint_bytes_per_sec.max(1);
            self.checkpoint_not_before =
                written + Duration::from_secs_f64(*size as f64 / budget as f64);
        }
        match result {
            Ok((Ok(_), states)) => {
                self.last_states = states;
                PipelineStats::add(&self.stats.checkpoints, 1);
                // What was processed up to the checkpoint is in it; what came
                // after is left.
                self.stats
                    .uncheckpointed_bytes
                    .fetch_sub(pending_bytes, std::sync::atomic::Ordering::Relaxed);
                self.stats.dirty_since_ms.store(
                    after_capture.unwrap_or(0),
                    std::sync::atomic::Ordering::Relaxed,
                );
            }
            Ok((Err(error), _)) => {
                PipelineStats::add(&self.stats.checkpoint_errors, 1);
                self.dirty = true;
                tracing::error!(pipeline = %self.config.name, %error, "checkpoint failed");
            }
            Err(error) => {
                self.dirty = true;
                tracing::error!(pipeline = %self.config.name, %error, "checkpoint task failed");
            }
        }
    }
}

/// A checkpoint taken and being written: its file (and, when the broker keeps a
/// copy for other hosts, the copy) is made on a blocking thread while the
/// pipeline goes on. The next checkpoint waits for it.
struct Writing {
    /// Writes the file; gives its size and bytes (the bytes only for a copy),
    /// and the plugin states it holds.
    writer: JoinHandle<(Written, BTreeMap<String, Vec<u8>>)>,
    /// The broker keeps a copy of the file.
    copy: bool,
    /// Bytes processed up to the checkpoint.
    pending_bytes: u64,
    /// When it was taken (on tokio's clock): paces the next one.
    written: tokio::time::Instant,
}

/// A checkpoint file's size and, when the broker keeps a copy, its bytes.
type Written = Result<(u64, Vec<u8>), wasmeter_source::SourceError>;

/// Encodes and writes a checkpoint taken (the file's bytes too when the broker
/// keeps a copy for other hosts); gives them with the plugin states it holds.
fn save(
    checkpoint: Checkpoint,
    path: &Path,
    taken: durable::Taken,
    copy: bool,
) -> (Written, BTreeMap<String, Vec<u8>>) {
    let result = checkpoint
        .save_streamed(path, durable::KEY, |value| taken.write(value))
        .and_then(|size| match copy {
            false => Ok((size, Vec::new())),
            true => std::fs::read(path)
                .map(|bytes| (size, bytes))
                .map_err(|source| wasmeter_source::SourceError::Io {
                    op: "read checkpoint",
                    path: path.to_path_buf(),
                    source,
                }),
        });
    (result, checkpoint.extra)
}

/// When a checkpoint is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    /// On the checkpoint interval, if anything was processed and pacing allows.
    Due,
    /// Now, whatever was processed.
    Now,
    /// The last one, after everything was processed and published: the topics
    /// saved with it are complete (a restore from it needs to skip no seqs).
    Final,
}

/// Splits a chunk after `done` processed bytes of its data: the part to commit,
/// and the rest, if any, to process later.
fn split_at_processed(chunk: Chunk, done: usize) -> (Chunk, Option<Chunk>) {
    if done >= chunk.data.len() {
        return (chunk, None);
    }
    // Skipped oversized lines sit before the data: the data ends at `end`.
    let at = chunk.end - (chunk.data.len() - done) as u64;
    let committed = Chunk {
        end: at,
        data: chunk.data.slice(..done),
        ..chunk.clone()
    };
    let held = Chunk {
        start: at,
        data: chunk.data.slice(done..),
        ..chunk
    };
    (committed, Some(held))
}

/// A swap that added a plugin instead of replacing one.
fn added(started: Instant) -> Swapped {
    Swapped {
        pause: started.elapsed(),
        state: control::StateCarry::Empty,
        retired: None,
    }
}
