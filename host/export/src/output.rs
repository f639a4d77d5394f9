//! One output: its configuration, counters, and the two threads that run it.
//!
//! ```text
//! pipelines --send(Arc<batch>)--> [bounded channel] --> intake thread
//!     (select by the output's series, batch up to `batch_samples` or `flush`,
//!      encode) --> queue: memory up to `memory_bytes`, then the disk buffer
//!     --> sender thread --> database (retries with backoff while it fails)
//! ```
//!
//! The pipelines wait only while the intake thread is `queue_batches` behind,
//! which it is only if encoding or the local disk is slower than they are; a
//! slow or absent database fills the disk buffer instead.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wasmeter_core::sample::Sample;

use crate::buffer::{DiskBuffer, Recovery};
use crate::client::Client;
use crate::queue::{Frame, Queue};
pub use crate::sender::Backoff;
use crate::series::Selection;
use crate::stop::Stop;

/// The wire protocol of an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Prometheus remote_write v1 (protobuf, snappy).
    RemoteWrite,
    /// InfluxDB line protocol over HTTP, millisecond timestamps.
    InfluxLine,
}

/// How an output runs.
#[derive(Debug, Clone)]
pub struct OutputConfig {
    /// Its name (config key), in logs and `/metrics`.
    pub name: String,
    /// Wire protocol.
    pub protocol: Protocol,
    /// Where requests go.
    pub url: String,
    /// Which samples it takes.
    pub selection: Selection,
    /// Labels added to every series that lacks them.
    pub extra_labels: Vec<(String, String)>,
    /// Headers on every request (e.g. `Authorization`).
    pub headers: Vec<(String, String)>,
    /// Samples per request at most.
    pub batch_samples: usize,
    /// A partial batch is sent after this long.
    pub flush: Duration,
    /// Each request's bound.
    pub timeout: Duration,
    /// Waits between tries.
    pub backoff: Backoff,
    /// The disk buffer's directory.
    pub buffer_dir: PathBuf,
    /// The disk buffer's size bound.
    pub buffer_bytes: u64,
    /// Encoded bytes held in memory before the disk buffer is used.
    pub memory_bytes: usize,
    /// Batches the pipelines may be ahead of the intake thread.
    pub queue_batches: usize,
}

/// An output's counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct OutputStats {
    /// Samples the output took (its selectors matched).
    pub selected: AtomicU64,
    /// Samples the database accepted.
    pub sent: AtomicU64,
    /// Requests made.
    pub requests: AtomicU64,
    /// Requests that failed (retried or refused).
    pub failed_requests: AtomicU64,
    /// Tries after a failure.
    pub retries: AtomicU64,
    /// Encoded bytes waiting (memory and disk).
    pub buffered_bytes: AtomicU64,
    /// Of which on disk.
    pub disk_bytes: AtomicU64,
    /// Samples dropped because the disk buffer was full (the oldest go).
    pub dropped_full: AtomicU64,
    /// Samples dropped because the database refused their request (4xx).
    pub dropped_refused: AtomicU64,
    /// Samples dropped because their buffered frame was damaged.
    pub dropped_corrupt: AtomicU64,
    /// Disk buffer I/O errors.
    pub buffer_errors: AtomicU64,
}

/// A pipeline's handle on an output: clone freely.
#[derive(Clone)]
pub struct OutputSender(flume::Sender<Arc<Vec<Sample>>>);

impl OutputSender {
    pub(crate) fn new(tx: flume::Sender<Arc<Vec<Sample>>>) -> Self {
        Self(tx)
    }

    /// Hands a batch over; waits while the intake thread is behind. A batch sent
    /// after the output closed is dropped (only during shutdown).
    pub async fn send(&self, batch: Arc<Vec<Sample>>) {
        let _ = self.0.send_async(batch).await;
    }
}

/// A running output.
pub struct Output {
    name: String,
    tx: flume::Sender<Arc<Vec<Sample>>>,
    stats: Arc<OutputStats>,
    queue: Arc<Queue>,
    intake_stop: Arc<Stop>,
    sender_stop: Arc<Stop>,
    intake: JoinHandle<()>,
    sender: JoinHandle<()>,
}

impl Output {
    /// Opens the disk buffer (replaying what an earlier run left) and starts the
    /// threads. The recovery report says what was found and what was damaged.
    pub fn start(config: OutputConfig) -> std::io::Result<(Output, Recovery)> {
        let stats = Arc::new(OutputStats::default());
        let (disk, recovery) = DiskBuffer::open(&config.buffer_dir, config.buffer_bytes)?;
        stats
            .dropped_corrupt
            .store(recovery.corrupt.samples, Relaxed);
        let queue = Arc::new(Queue::new(disk, config.memory_bytes, stats.clone()));
        let (tx, rx) = flume::bounded(config.queue_batches.max(1));
        let intake_stop = Arc::new(Stop::default());
        let sender_stop = Arc::new(Stop::default());
        let client = Client::new(&request_url(&config), headers(&config), config.timeout);
        let sender = std::thread::Builder::new()
            .name(format!("output-send-{}", config.name))
            .spawn({
                let (name, queue, stop, stats) = (
                    config.name.clone(),
                    queue.clone(),
                    sender_stop.clone(),
                    stats.clone(),
                );
                let backoff = config.backoff;
                move || crate::sender::run(&name, &queue, &client, backoff, &stop, &stats)
            })?;
        let name = config.name.clone();
        let intake = std::thread::Builder::new()
            .name(format!("output-intake-{name}"))
            .spawn({
                let (queue, stop, stats) = (queue.clone(), intake_stop.clone(), stats.clone());
                move || Intake::new(config, queue, stats).run(&rx, &stop)
            })?;
        let output = Output {
            name,
            tx,
            stats,
            queue,
            intake_stop,
            sender_stop,
            intake,
            sender,
        };
        Ok((output, recovery))
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A handle for the pipelines.
    pub fn sender(&self) -> OutputSender {
        OutputSender(self.tx.clone())
    }

    /// Its counters.
    pub fn stats(&self) -> Arc<OutputStats> {
        self.stats.clone()
    }

    /// Stops, after the pipelines stopped: the batches handed over so far are
    /// queued, the sender gets up to `drain` to send them, and what is still
    /// unsent is written to the disk buffer for the next start. Blocking.
    pub fn close(self, drain: Duration) {
        self.intake_stop.set();
        let _ = self.intake.join();
        let deadline = Instant::now() + drain;
        while !self.queue.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.sender_stop.set();
        let _ = self.sender.join();
        if let Err(error) = self.queue.spill() {
            tracing::error!(output = self.name, %error, "output: unsent batches could not be written to the buffer");
        }
    }
}

/// The URL requests go to: line protocol asks for millisecond timestamps.
fn request_url(config: &OutputConfig) -> String {
    match config.protocol {
        Protocol::RemoteWrite => config.url.clone(),
        Protocol::InfluxLine if config.url.contains("precision=") => config.url.clone(),
        Protocol::InfluxLine => {
            let sep = if config.url.contains('?') { '&' } else { '?' };
            format!("{}{sep}precision=ms", config.url)
        }
    }
}

fn headers(config: &OutputConfig) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = match config.protocol {
        Protocol::RemoteWrite => crate::remote_write::HEADERS
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        Protocol::InfluxLine => vec![("Content-Type".into(), crate::line::CONTENT_TYPE.into())],
    };
    h.extend(config.headers.iter().cloned());
    h
}

/// The intake thread's state: batches taken but not yet encoded.
struct Intake {
    config: OutputConfig,
    queue: Arc<Queue>,
    stats: Arc<OutputStats>,
    pending: Vec<(Arc<Vec<Sample>>, Vec<u32>)>,
    pending_samples: usize,
    since: Option<Instant>,
}

impl Intake {
    fn new(config: OutputConfig, queue: Arc<Queue>, stats: Arc<OutputStats>) -> Self {
        Self {
            config,
            queue,
            stats,
            pending: Vec::new(),
            pending_samples: 0,
            since: None,
        }
    }

    fn run(mut self, rx: &flume::Receiver<Arc<Vec<Sample>>>, stop: &Stop) {
        let tick = self
            .config
            .flush
            .clamp(Duration::from_millis(5), Duration::from_millis(100));
        loop {
            match rx.recv_timeout(tick) {
                Ok(batch) => self.take(batch),
                Err(flume::RecvTimeoutError::Timeout) => {}
                Err(flume::RecvTimeoutError::Disconnected) => break,
            }
            if stop.is_set() {
                while let Ok(batch) = rx.try_recv() {
                    self.take(batch);
                }
                break;
            }
            if self.since.is_some_and(|t| t.elapsed() >= self.config.flush) {
                self.flush();
            }
        }
        self.flush();
    }

    fn take(&mut self, batch: Arc<Vec<Sample>>) {
        let picked: Vec<u32> = batch
            .iter()
            .enumerate()
            .filter(|(_, s)| self.config.selection.matches(s))
            .map(|(i, _)| i as u32)
            .collect();
        if picked.is_empty() {
            return;
        }
        self.stats.selected.fetch_add(picked.len() as u64, Relaxed);
        self.pending_samples += picked.len();
        self.pending.push((batch, picked));
        self.since.get_or_insert_with(Instant::now);
        if self.pending_samples >= self.config.batch_samples {
            self.flush();
        }
    }

    /// Encodes what is pending into frames of at most `batch_samples` and queues them.
    fn flush(&mut self) {
        self.since = None;
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        self.pending_samples = 0;
        let all: Vec<&Sample> = pending
            .iter()
            .flat_map(|(batch, picked)| picked.iter().map(|&i| &batch[i as usize]))
            .collect();
        for chunk in all.chunks(self.config.batch_samples.max(1)) {
            let body = match self.config.protocol {
                Protocol::RemoteWrite => {
                    crate::remote_write::encode(chunk, &self.config.extra_labels)
                }
                Protocol::InfluxLine => crate::line::encode(chunk, &self.config.extra_labels),
            };
            let frame = Frame {
                samples: chunk.len() as u32,
                body: Arc::new(body),
            };
            if let Err(error) = self.queue.push(frame) {
                self.stats.buffer_errors.fetch_add(1, Relaxed);
                self.stats
                    .dropped_full
                    .fetch_add(chunk.len() as u64, Relaxed);
                tracing::error!(output = self.config.name, %error, samples = chunk.len(), "output buffer: cannot write; samples dropped");
            }
        }
    }
}
