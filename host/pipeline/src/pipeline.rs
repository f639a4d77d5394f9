//! One pipeline: its sources' chunks -> collector -> metric plugins -> topic state
//! -> delta plugin -> publisher. One task owns the pipeline and its plugin
//! instances; it ends when every source has stopped and their chunks are drained,
//! after a final checkpoint.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::{BoxStream, SelectAll};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use wasmeter_core::change::TopicChange;
use wasmeter_core::field::FieldValue;
use wasmeter_core::sample::Sample;
use wasmeter_core::update::{CollectOutput, RecordError, TopicUpdate};
use wasmeter_plugin::{CallError, unix_now_ms};
use wasmeter_source::{Checkpoint, FileCheckpoint, FileKey, SourceEvent, SystemReading};

use crate::control::{self, Command, Replacement, Retired, SwapError, Swapped};
use crate::plugins::{PipelinePlugins, PluginRefs};
use crate::samples::{series_fields, series_topic};
use crate::series::SeriesStore;
use crate::state::{TopicStore, exact_diff, lock};
use crate::stats::PipelineStats;

/// Where topic changes go (the hub, in the host).
pub trait Publish: Send + Sync + 'static {
    /// Publishes one change.
    fn publish(&self, change: TopicChange);
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
}

/// What reaches a pipeline.
#[derive(Debug)]
pub enum Input {
    /// From a file source.
    File(SourceEvent),
    /// From the system source.
    System(SystemReading),
}

/// A pipeline ready to run.
pub struct Pipeline {
    config: PipelineConfig,
    plugins: PipelinePlugins,
    refs: PluginRefs,
    store: TopicStore,
    publisher: Arc<dyn Publish>,
    stats: Arc<PipelineStats>,
    /// Where the latest value of each sample series goes, if anywhere.
    series: Option<SeriesStore>,
    errors_topic: Arc<str>,
    /// Committed offsets: records before them have been processed and published.
    /// With each: the path, the offset, and the file size last read (for the checkpoint).
    offsets: BTreeMap<FileKey, (PathBuf, u64, u64)>,
    dirty: bool,
}

/// Most record errors logged per chunk; the rest are counted.
const LOGGED_ERRORS_PER_CHUNK: usize = 5;

impl Pipeline {
    /// Builds a pipeline from initialised plugins and restores its checkpoint, if
    /// any: plugin states are imported, and the file offsets are returned for the
    /// file sources to resume from.
    pub async fn restore(
        config: PipelineConfig,
        mut plugins: PipelinePlugins,
        store: TopicStore,
        publisher: Arc<dyn Publish>,
    ) -> Result<(Self, Vec<FileCheckpoint>), wasmeter_source::SourceError> {
        let mut resume = Vec::new();
        if let Some(path) = &config.checkpoint {
            let path = path.clone();
            let loaded = tokio::task::spawn_blocking(move || Checkpoint::load(&path))
                .await
                .expect("checkpoint load task")?;
            if let Some(checkpoint) = loaded {
                plugins.import_states(&checkpoint.extra).await;
                tracing::info!(pipeline = %config.name, files = checkpoint.files.len(), "resuming from checkpoint");
                resume = checkpoint.files;
            }
        }
        let offsets = resume
            .iter()
            .map(|f| (f.file, (f.path.clone(), f.offset, f.size)))
            .collect();
        let errors_topic = format!("_wasmeter/errors/{}", config.name).into();
        let refs = PluginRefs::default();
        refs.set(plugins.refs());
        Ok((
            Self {
                config,
                plugins,
                refs,
                store,
                publisher,
                stats: Arc::default(),
                series: None,
                errors_topic,
                offsets,
                dirty: false,
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

    /// Notes that something processed is not yet in a checkpoint.
    fn mark_dirty(&mut self, bytes: u64) {
        self.dirty = true;
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
        let mut inputs: SelectAll<BoxStream<'static, Input>> = SelectAll::new();
        for rx in files {
            inputs.push(ReceiverStream::new(rx).map(Input::File).boxed());
        }
        if let Some(rx) = system {
            inputs.push(ReceiverStream::new(rx).map(Input::System).boxed());
        }
        let mut tick = tokio::time::interval(self.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut checkpoint = tokio::time::interval(self.config.checkpoint_interval);
        checkpoint.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                input = inputs.next() => match input {
                    Some(Input::File(event)) => self.on_file_event(event).await,
                    Some(Input::System(reading)) => {
                        let source = reading.source.clone();
                        self.on_chunk(&source, &reading.data, None).await;
                    }
                    None => break,
                },
                Some(command) = commands.recv() => self.on_command(command).await,
                _ = tick.tick() => self.on_tick().await,
                _ = checkpoint.tick() => self.checkpoint().await,
            }
        }
        self.dirty = true;
        self.checkpoint().await;
        tracing::info!(pipeline = %self.config.name, "pipeline stopped");
    }

    async fn on_file_event(&mut self, event: SourceEvent) {
        match event {
            SourceEvent::Chunk(chunk) => {
                let source = chunk.path.to_string_lossy().into_owned();
                self.on_chunk(
                    &source,
                    &chunk.data,
                    Some((chunk.path.as_ref(), chunk.start)),
                )
                .await;
                self.offsets.insert(
                    chunk.file,
                    (chunk.path.to_path_buf(), chunk.end, chunk.file_size),
                );
                self.mark_dirty(chunk.end.saturating_sub(chunk.start));
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

    /// Applies a swap or removal, then refreshes the live plugin handles.
    async fn on_command(&mut self, command: Command) {
        match command {
            Command::Swap {
                replacement,
                carry_state,
                reply,
            } => {
                let name = replacement.name().to_string();
                let result = self.swap(*replacement, carry_state).await;
                match &result {
                    Ok(swapped) => {
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
                    tracing::info!(pipeline = %self.config.name, plugin = %name, "plugin removed");
                }
                let _ = reply.send(result);
            }
        }
        self.refs.set(self.plugins.refs());
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
    /// `file` is the path and offset of the chunk, for error messages.
    async fn on_chunk(&mut self, source: &str, data: &[u8], file: Option<(&Path, u64)>) {
        PipelineStats::add(&self.stats.chunks, 1);
        let out = match self.plugins.collector.collect(source, data).await {
            Ok(out) => out,
            Err(error) => self.collect_record_by_record(source, data, error).await,
        };
        self.report_record_errors(source, file, &out.errors);
        self.apply(out.samples, out.updates).await;
    }

    /// After a failed call, isolates the records that fail: each record is collected
    /// on its own, and those that still fail become record errors. A plugin that
    /// fails on everything is quarantined along the way; the rest of the chunk is
    /// then reported as failed.
    async fn collect_record_by_record(
        &mut self,
        source: &str,
        data: &[u8],
        first: CallError,
    ) -> CollectOutput {
        tracing::warn!(pipeline = %self.config.name, %source, error = %first, "collector failed on a chunk; retrying record by record");
        let mut out = CollectOutput::default();
        let mut offset = 0usize;
        for (i, record) in data.split_inclusive(|b| *b == b'\n').enumerate() {
            let at = offset;
            offset += record.len();
            match self.plugins.collector.collect(source, record).await {
                Ok(one) => {
                    out.samples.extend(one.samples);
                    out.updates.extend(one.updates);
                    out.errors.extend(one.errors.into_iter().map(|mut e| {
                        e.line = i as u32 + 1;
                        e.offset = at as u32;
                        e
                    }));
                }
                Err(error) => {
                    let quarantined = matches!(error, CallError::Quarantined { .. });
                    out.errors.push(RecordError {
                        line: i as u32 + 1,
                        offset: at as u32,
                        message: format!("collector failed on this record: {error}"),
                    });
                    if quarantined {
                        PipelineStats::add(&self.stats.chunks_failed, 1);
                        tracing::error!(pipeline = %self.config.name, %source, "collector quarantined; the rest of the chunk is dropped");
                        break;
                    }
                }
            }
        }
        out
    }

    fn report_record_errors(
        &mut self,
        source: &str,
        file: Option<(&Path, u64)>,
        errors: &[RecordError],
    ) {
        if errors.is_empty() {
            return;
        }
        PipelineStats::add(&self.stats.record_errors, errors.len() as u64);
        let locate = |e: &RecordError| match file {
            Some((path, start)) => {
                format!("{}: byte {}", path.display(), start + u64::from(e.offset))
            }
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
        let topic = self.errors_topic.clone();
        self.commit_exact(&topic, fields);
    }

    async fn on_tick(&mut self) {
        let now = unix_now_ms();
        let mut derived = Vec::new();
        for m in &mut self.plugins.metrics {
            match m.on_tick(now).await {
                Ok(samples) => derived.extend(samples),
                Err(error) => tracing::debug!(plugin = m.name(), %error, "on-tick failed"),
            }
        }
        if !derived.is_empty() {
            self.mark_dirty(0);
            self.publish_samples_and_updates(derived, Vec::new()).await;
        }
    }

    /// Feeds samples through the metric plugins, then publishes everything.
    async fn apply(&mut self, mut samples: Vec<Sample>, updates: Vec<TopicUpdate>) {
        if !samples.is_empty() {
            for m in &mut self.plugins.metrics {
                match m.on_samples(&samples).await {
                    Ok(derived) => samples.extend(derived),
                    Err(error) => tracing::debug!(plugin = m.name(), %error, "on-samples failed"),
                }
            }
        }
        self.publish_samples_and_updates(samples, updates).await;
    }

    /// Coalesces the updates of this batch per topic (in order, later values win),
    /// then commits and publishes one change per topic.
    async fn publish_samples_and_updates(
        &mut self,
        samples: Vec<Sample>,
        updates: Vec<TopicUpdate>,
    ) {
        PipelineStats::add(&self.stats.samples, samples.len() as u64);
        if let Some(series) = &self.series {
            series.record(&samples);
        }
        let mut order: Vec<Arc<str>> = Vec::new();
        let mut pending: HashMap<Arc<str>, BTreeMap<String, FieldValue>> = HashMap::new();
        let mut merge = |topic: String, fields: &mut dyn Iterator<Item = (String, FieldValue)>| {
            let topic: Arc<str> = topic.into();
            let slot = pending.entry(topic.clone()).or_insert_with(|| {
                order.push(topic);
                BTreeMap::new()
            });
            slot.extend(fields);
        };
        for u in updates {
            merge(u.topic, &mut u.fields.into_iter());
        }
        for s in &samples {
            merge(series_topic(s), &mut series_fields(s).into_iter());
        }
        for topic in order {
            let fields = pending.remove(&topic).expect("ordered topics are pending");
            self.commit(&topic, fields).await;
        }
    }

    /// Commits new field values of one topic through the delta plugin.
    async fn commit(&mut self, topic: &Arc<str>, fields: BTreeMap<String, FieldValue>) {
        let Some(delta_plugin) = self.plugins.delta.as_mut() else {
            self.commit_exact(topic, fields);
            return;
        };
        let entry = self.store.entry(topic);
        let (previous, current) = {
            let e = lock(&entry);
            (e.state().clone(), e.merged(&fields))
        };
        let delta = match delta_plugin.diff(topic, &previous, &current).await {
            Ok(delta) => delta,
            Err(error) => {
                PipelineStats::add(&self.stats.delta_fallbacks, 1);
                tracing::debug!(plugin = delta_plugin.name(), %error, "delta plugin failed; sending the exact difference");
                exact_diff(&previous, &current)
            }
        };
        let e = lock(&entry);
        // Another pipeline may have changed the topic meanwhile: then the delta was
        // computed against an old state; recompute it exactly against the new one.
        let delta = if Arc::ptr_eq(e.state(), &previous) {
            delta
        } else {
            e.exact_delta(&fields)
        };
        self.commit_locked(topic, e, delta, fields);
    }

    fn commit_exact(&mut self, topic: &Arc<str>, fields: BTreeMap<String, FieldValue>) {
        if publish_fields(&self.store, self.publisher.as_ref(), topic, fields) {
            PipelineStats::add(&self.stats.changes, 1);
        }
    }

    /// Applies `delta` to the locked entry and publishes the change, if any, after
    /// releasing the lock.
    fn commit_locked(
        &self,
        topic: &Arc<str>,
        mut entry: std::sync::MutexGuard<'_, crate::state::TopicEntry>,
        delta: wasmeter_core::delta::Delta,
        fields: BTreeMap<String, FieldValue>,
    ) {
        let change = entry.commit(topic, delta, fields, Instant::now(), unix_now_ms());
        drop(entry);
        if let Some(change) = change {
            self.publish(change);
        }
    }

    fn publish(&self, change: TopicChange) {
        PipelineStats::add(&self.stats.changes, 1);
        self.publisher.publish(change);
    }

    /// Writes offsets and plugin states, if anything was processed since the last one.
    async fn checkpoint(&mut self) {
        let Some(path) = self.config.checkpoint.clone() else {
            return;
        };
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let pending_bytes = PipelineStats::get(&self.stats.uncheckpointed_bytes);
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
            extra: self.plugins.export_states().await,
        };
        let result = tokio::task::spawn_blocking(move || checkpoint.save(&path)).await;
        match result {
            Ok(Ok(())) => {
                PipelineStats::add(&self.stats.checkpoints, 1);
                // The task processes nothing while it checkpoints: all that was
                // pending is in this checkpoint.
                self.stats
                    .uncheckpointed_bytes
                    .fetch_sub(pending_bytes, std::sync::atomic::Ordering::Relaxed);
                self.stats
                    .dirty_since_ms
                    .store(0, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(Err(error)) => {
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

/// A swap that added a plugin instead of replacing one.
fn added(started: Instant) -> Swapped {
    Swapped {
        pause: started.elapsed(),
        state: control::StateCarry::Empty,
        retired: None,
    }
}

/// Sets fields of a topic outside any pipeline (host notices, error summaries):
/// commits them to the topic state and publishes the exact difference, if any.
/// Returns whether something was published.
pub fn publish_fields(
    store: &TopicStore,
    publisher: &dyn Publish,
    topic: &Arc<str>,
    fields: BTreeMap<String, FieldValue>,
) -> bool {
    let entry = store.entry(topic);
    let mut e = lock(&entry);
    let delta = e.exact_delta(&fields);
    let change = e.commit(topic, delta, fields, Instant::now(), unix_now_ms());
    drop(e);
    match change {
        Some(change) => {
            publisher.publish(change);
            true
        }
        None => false,
    }
}

/// Marks fields not updated within `ttl` as stale and tells subscribers, once per field.
pub fn sweep_stale(store: &TopicStore, ttl: Duration, publisher: &dyn Publish) {
    let now = Instant::now();
    let timestamp_ms = unix_now_ms();
    for (topic, entry) in store.entries() {
        let change = lock(&entry).expire(&topic, ttl, now, timestamp_ms);
        if let Some(change) = change {
            publisher.publish(change);
        }
    }
}
