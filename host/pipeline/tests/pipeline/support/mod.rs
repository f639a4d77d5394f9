//! A pipeline running with in-process plugins, fed through its real input (file
//! events on a channel) and observed through what it publishes, its counters and
//! its checkpoint file.

pub mod fakes;

use futures_util::future::BoxFuture;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use wasmeter_core::change::TopicChange;
use wasmeter_core::field::FieldValue;
use wasmeter_pipeline::{
    Broker, Command, FlushError, Pipeline, PipelineConfig, PipelinePlugins, PipelineStats,
    PluginRefs, Refused, Replacement, Retired, StateConfig, SwapError, Swapped, Topics,
};
use wasmeter_source::{Checkpoint, Chunk, FileKey, SourceEvent};

/// Plugin states in a checkpoint, by key (`metric:<name>`, ...).
pub type States = BTreeMap<String, Vec<u8>>;

/// Every change published, in order; its flushes can be made to fail.
#[derive(Default)]
pub struct Recorder(Mutex<Vec<TopicChange>>, Mutex<Flushes>);

/// How the recorder answers flushes (and whether a topic is read).
#[derive(Default)]
pub struct Flushes {
    /// Topics it says nobody subscribes to (or watches for).
    pub unread: Vec<String>,
    /// Its watch generation: bumped when someone starts watching for topics.
    pub watch_generation: u64,
    /// The topics it was told are dormant (and not told otherwise since).
    pub dormant: Vec<String>,
    /// The next this many flushes fail as unreachable.
    pub unreachable: usize,
    /// Every flush from now on fails as fenced.
    pub fenced: bool,
    /// Flushes answered.
    pub calls: usize,
    /// The checkpoint copies kept, oldest first.
    pub copies: Vec<Vec<u8>>,
}

impl Broker for Recorder {
    fn publish(&self, change: TopicChange) -> Result<(), Refused> {
        if change.topic.starts_with("feed/refused") {
            return Err(Refused {
                topic: change.topic.to_string(),
                reason: "refused by the test".into(),
            });
        }
        self.0.lock().unwrap().push(change);
        Ok(())
    }

    fn remove_topic(&self, _: &str) {}

    fn is_read(&self, topic: &str) -> bool {
        !self.1.lock().unwrap().unread.iter().any(|t| t == topic)
    }

    fn watch_generation(&self) -> u64 {
        self.1.lock().unwrap().watch_generation
    }

    fn set_dormant(&self, topic: &Arc<str>, dormant: bool) {
        let told = &mut self.1.lock().unwrap().dormant;
        told.retain(|t| **t != **topic);
        if dormant {
            told.push(topic.to_string());
        }
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), FlushError>> {
        let mut f = self.1.lock().unwrap();
        f.calls += 1;
        let result = if f.fenced {
            Err(FlushError::Fenced("p".into()))
        } else if f.unreachable > 0 {
            f.unreachable -= 1;
            Err(FlushError::Unavailable("down for the test".into()))
        } else {
            Ok(())
        };
        Box::pin(async move { result })
    }

    fn keeps_checkpoints(&self) -> bool {
        true
    }

    fn keep_checkpoint(&self, bytes: Vec<u8>) -> BoxFuture<'_, Result<(), FlushError>> {
        let mut f = self.1.lock().unwrap();
        let result = match f.fenced {
            true => Err(FlushError::Fenced("p".into())),
            false => {
                f.copies.push(bytes);
                Ok(())
            }
        };
        Box::pin(async move { result })
    }
}

impl Recorder {
    /// Changes how the next flushes are answered, or reads what they kept.
    pub fn flushes<T>(&self, f: impl FnOnce(&mut Flushes) -> T) -> T {
        f(&mut self.1.lock().unwrap())
    }

    /// The `seq` values published for each `feed/...` topic, in order.
    pub fn feed(&self) -> BTreeMap<String, Vec<u64>> {
        let mut feed: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for change in self.0.lock().unwrap().iter() {
            if !change.topic.starts_with("feed/") {
                continue;
            }
            for (field, value) in &change.delta.changed {
                if let ("seq", FieldValue::Number(n)) = (field.as_str(), value) {
                    feed.entry(change.topic.to_string())
                        .or_default()
                        .push(*n as u64);
                }
            }
        }
        feed
    }

    /// The changes published to `topic`.
    pub fn changes_of(&self, topic: &str) -> Vec<TopicChange> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|c| &*c.topic == topic)
            .cloned()
            .collect()
    }
}

/// `topics` records per chunk, one per topic `feed/t<i>`, all with seq `chunk`.
pub fn chunk_text(chunk: u64, topics: usize) -> String {
    (0..topics)
        .map(|t| format!("feed/t{t},{chunk}\n"))
        .collect()
}

/// What every topic should have received after chunks `0..chunks`.
pub fn expected_feed(chunks: u64, topics: usize) -> BTreeMap<String, Vec<u64>> {
    (0..topics)
        .map(|t| (format!("feed/t{t}"), (0..chunks).collect()))
        .collect()
}

/// Checks what each topic published against every value it was written, in
/// order (`expected`, e.g. [`expected_feed`]): the chunks the pipeline took
/// together publish a topic once, with its later value, so a topic publishes
/// a part of its values, never one twice or out of order, and always the last.
pub fn assert_published_in_order(
    published: &BTreeMap<String, Vec<u64>>,
    expected: &BTreeMap<String, Vec<u64>>,
) {
    assert_eq!(
        published.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the topics published"
    );
    for (topic, values) in published {
        let all = &expected[topic];
        assert_eq!(values.last(), all.last(), "{topic}: the last value");
        let mut rest = all.iter();
        for v in values {
            assert!(
                rest.any(|e| e == v),
                "{topic}: {values:?} is not a part of {all:?} in order"
            );
        }
    }
}

/// One file, read chunk by chunk: builds its events with offsets that add up.
pub struct Feed {
    key: FileKey,
    path: Arc<Path>,
    offset: u64,
}

impl Feed {
    /// A file at `path`, read from its start.
    pub fn new(path: &Path) -> Self {
        Self::with_inode(path, 42)
    }

    /// A file at `path` with inode number `ino` (files told apart by it).
    pub fn with_inode(path: &Path, ino: u64) -> Self {
        // File keys come from the file source, or from a checkpoint.
        let stored = tempfile::NamedTempFile::new().unwrap();
        let version_1 = format!(
            r#"{{"version": 1, "files": [{{"file": {{"dev": 1, "ino": {ino},
            "fingerprint": "00000000000000ab"}}, "path": "/data/feed.csv", "offset": 0}}]}}"#
        );
        std::fs::write(stored.path(), version_1).unwrap();
        let key = Checkpoint::load(stored.path()).unwrap().unwrap().files[0].file;
        Self {
            key,
            path: path.into(),
            offset: 0,
        }
    }

    /// The event announcing the file.
    pub fn opened(&self) -> SourceEvent {
        SourceEvent::Opened {
            file: self.key,
            path: self.path.clone(),
            offset: self.offset,
        }
    }

    /// The next chunk of the file: `text`, whole lines.
    pub fn chunk(&mut self, text: &str) -> SourceEvent {
        let start = self.offset;
        self.offset += text.len() as u64;
        SourceEvent::Chunk(Chunk {
            file: self.key,
            path: self.path.clone(),
            start,
            end: self.offset,
            data: Bytes::copy_from_slice(text.as_bytes()),
            file_size: self.offset,
        })
    }

    /// Bytes handed out so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

/// A running pipeline named `p` that owns `feed/`, with its channels.
pub struct Running {
    /// What it published.
    pub published: Arc<Recorder>,
    /// Its counters.
    pub stats: Arc<PipelineStats>,
    /// Its plugins, as the host sees them.
    pub refs: PluginRefs,
    /// Its file input (capacity 2: a paused pipeline holds its producer back).
    pub files: Option<mpsc::Sender<SourceEvent>>,
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
    /// Its checkpoint file.
    pub checkpoint: PathBuf,
    _dir: tempfile::TempDir,
}

/// The test pipeline's configuration, checkpointing into `dir`.
pub fn config(dir: &Path) -> PipelineConfig {
    PipelineConfig {
        topics: vec!["feed".into()],
        checkpoint: Some(dir.join("checkpoint")),
        ..PipelineConfig::new("p")
    }
}

impl Running {
    /// Starts a pipeline with `plugins`; `adjust` changes its configuration.
    pub async fn start(plugins: PipelinePlugins, adjust: impl FnOnce(&mut PipelineConfig)) -> Self {
        Self::start_with(plugins, adjust, |p| p).await
    }

    /// [`Running::start`], with `attach` adding to the pipeline before it runs
    /// (a series store, a sample sink).
    pub async fn start_with(
        plugins: PipelinePlugins,
        adjust: impl FnOnce(&mut PipelineConfig),
        attach: impl FnOnce(Pipeline) -> Pipeline,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path());
        adjust(&mut config);
        let checkpoint = config.checkpoint.clone().unwrap();
        let published = Arc::new(Recorder::default());
        let topics = Topics::new(&StateConfig::default(), published.clone());
        let (pipeline, resume) = Pipeline::restore(config, plugins, topics).await.unwrap();
        assert!(resume.is_empty());
        let pipeline = attach(pipeline);
        let stats = pipeline.stats();
        let refs = pipeline.plugin_refs();
        let (files, files_rx) = mpsc::channel(2);
        let (commands, commands_rx) = mpsc::channel(4);
        let task = tokio::spawn(pipeline.run(vec![files_rx], None, commands_rx));
        Self {
            published,
            stats,
            refs,
            files: Some(files),
            commands,
            task,
            checkpoint,
            _dir: dir,
        }
    }

    /// Sends one file event.
    pub async fn send(&self, event: SourceEvent) {
        self.files
            .as_ref()
            .expect("input open")
            .send(event)
            .await
            .expect("pipeline running");
    }

    /// Sends a chunk and waits until the pipeline took it: chunks sent this way
    /// are each processed on their own, not together with the next.
    pub async fn send_alone(&self, chunk: SourceEvent) {
        let taken = get(&self.stats.chunks);
        self.send(chunk).await;
        wait_until("the chunk is taken", || get(&self.stats.chunks) > taken).await;
    }

    /// Takes the input, to hand it to a producer task.
    pub fn take_input(&mut self) -> mpsc::Sender<SourceEvent> {
        self.files.take().expect("input open")
    }

    /// Swaps a plugin in.
    pub async fn swap(
        &self,
        replacement: Replacement,
        carry_state: bool,
    ) -> Result<Swapped, SwapError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Swap {
                replacement: Box::new(replacement),
                carry_state,
                reply,
            })
            .await
            .expect("pipeline running");
        rx.await.expect("a reply")
    }

    /// Removes a plugin.
    pub async fn remove(&self, name: &str) -> Result<Retired, SwapError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Remove {
                name: name.into(),
                reply,
            })
            .await
            .expect("pipeline running");
        rx.await.expect("a reply")
    }

    /// The checkpoint on disk: the file's committed offset (None: no checkpoint
    /// or no file in it) and the plugin states.
    pub fn checkpoint(&self) -> Option<(Option<u64>, States)> {
        Checkpoint::load(&self.checkpoint)
            .unwrap()
            .map(|c| (c.files.first().map(|f| f.offset), c.extra))
    }

    /// The committed offset in the checkpoint on disk.
    pub fn checkpointed_offset(&self) -> Option<u64> {
        self.checkpoint().and_then(|(offset, _)| offset)
    }

    /// Closes the input and waits for the pipeline's final checkpoint.
    pub async fn finish(mut self) -> Finished {
        self.files = None;
        drop(self.commands);
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("the pipeline ends once its input is closed")
            .expect("the pipeline task");
        Finished {
            published: self.published,
            stats: self.stats,
            checkpoint: Checkpoint::load(&self.checkpoint).unwrap(),
            _dir: self._dir,
        }
    }
}

/// A pipeline that has ended.
pub struct Finished {
    /// What it published.
    pub published: Arc<Recorder>,
    /// Its counters.
    pub stats: Arc<PipelineStats>,
    /// Its final checkpoint.
    pub checkpoint: Option<Checkpoint>,
    _dir: tempfile::TempDir,
}

/// Reads a counter.
pub fn get(counter: &AtomicU64) -> u64 {
    PipelineStats::get(counter)
}

/// Waits (at most a minute, on whichever clock runs) until `done` holds.
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting until {what}");
}

/// A task feeding a file's chunks to a pipeline, one every `PACE` of (simulated)
/// time, like a file being written while the pipeline reads it.
pub struct Producer {
    /// Chunks handed to the pipeline's input so far.
    pub sent: Arc<AtomicU64>,
    task: JoinHandle<Feed>,
}

/// Time between two chunks of a [`Producer`].
pub const PACE: Duration = Duration::from_millis(10);

impl Producer {
    /// Announces `feed`'s file on `input`, then sends `chunks` one by one.
    pub fn start(input: mpsc::Sender<SourceEvent>, mut feed: Feed, chunks: Vec<String>) -> Self {
        let sent = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let sent = sent.clone();
            async move {
                input.send(feed.opened()).await.expect("pipeline running");
                for text in chunks {
                    input
                        .send(feed.chunk(&text))
                        .await
                        .expect("pipeline running");
                    sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tokio::time::sleep(PACE).await;
                }
                feed
            }
        });
        Self { sent, task }
    }

    /// Waits until every chunk was sent; returns the file (its final offset).
    pub async fn done(self) -> Feed {
        tokio::time::timeout(Duration::from_secs(600), self.task)
            .await
            .expect("the producer sends everything")
            .expect("the producer task")
    }
}
