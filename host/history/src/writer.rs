//! The writer: batches of samples from the pipelines, appended to the store on
//! a thread of its own (the store's I/O is blocking). The queue between them is
//! bounded: a pipeline waits while it is full, so a slow disk slows the
//! pipelines' input (the files back up) rather than losing samples or growing
//! memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::mpsc;
use wasmeter_core::sample::{MetricKind, Sample};
use wasmeter_tsdb::{Labels, Store};

use crate::group::by_series;

/// What the writer did, for `/metrics`.
#[derive(Debug, Default)]
pub struct HistoryStats {
    /// Samples stored.
    pub written: AtomicU64,
    /// Samples the store refused (out of order, duplicate timestamp, too old,
    /// too far in the future, over the series limit).
    pub refused: AtomicU64,
    /// Batches that failed as a whole (an I/O error: see the log).
    pub failed_batches: AtomicU64,
}

/// What the writer thread receives.
enum Work {
    /// Samples to append (shared with the outputs, when there are any).
    Batch(Arc<Vec<Sample>>),
    /// Everything before has been sent: commit and stop.
    Stop,
}

/// Appends the pipelines' samples to the store, in order, on its own thread.
pub struct HistoryWriter {
    store: Arc<Store>,
    tx: mpsc::Sender<Work>,
    thread: std::thread::JoinHandle<()>,
    stats: Arc<HistoryStats>,
}

/// A pipeline's handle on the writer.
#[derive(Clone)]
pub struct HistorySender(mpsc::Sender<Work>);

impl HistorySender {
    /// Queues a batch; waits while the writer is `queue` batches behind. A batch
    /// sent after the writer stopped is dropped (only during shutdown). A shared
    /// batch (`Arc`) is not copied.
    pub async fn send(&self, samples: impl Into<Arc<Vec<Sample>>>) {
        let samples = samples.into();
        if samples.is_empty() {
            return;
        }
        let _ = self.0.send(Work::Batch(samples)).await;
    }
}

impl HistoryWriter {
    /// Starts the writer thread on `store`, with room for `queue` batches.
    pub fn start(store: Arc<Store>, queue: usize) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let stats = Arc::new(HistoryStats::default());
        let thread = std::thread::Builder::new()
            .name("history-writer".into())
            .spawn({
                let (store, stats) = (store.clone(), stats.clone());
                move || run(&store, rx, &stats)
            })?;
        Ok(Self {
            store,
            tx,
            thread,
            stats,
        })
    }

    /// A handle for a pipeline.
    pub fn sender(&self) -> HistorySender {
        HistorySender(self.tx.clone())
    }

    /// The store, for queries.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Its counters.
    pub fn stats(&self) -> Arc<HistoryStats> {
        self.stats.clone()
    }

    /// Stops after the batches queued so far are written and committed: call it
    /// once the pipelines have stopped (a batch sent later is not written). Waits
    /// at most `bound`; returns false if the thread was still writing then (it is
    /// left to finish).
    pub async fn close(self, bound: Duration) -> bool {
        let thread = self.thread;
        let stopped = async move {
            if self.tx.send(Work::Stop).await.is_err() {
                return false;
            }
            let joined = tokio::task::spawn_blocking(move || thread.join()).await;
            matches!(joined, Ok(Ok(())))
        };
        tokio::time::timeout(bound, stopped).await.unwrap_or(false)
    }
}

/// How long the writer lets batches gather after the first one wakes it, unless
/// its queue is already half full. Under load pipelines send hundreds of small
/// batches a second (one per chunk); written as they come, each woke the thread
/// and preempted a pipeline on a busy machine. A sample reaches the history at
/// most this much later.
const LINGER: Duration = Duration::from_millis(5);

fn run(store: &Store, mut rx: mpsc::Receiver<Work>, stats: &HistoryStats) {
    while let Some(first) = rx.blocking_recv() {
        if rx.len() < rx.max_capacity() / 2 {
            std::thread::sleep(LINGER);
        }
        let queued = std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok()));
        for work in queued {
            match work {
                Work::Batch(batch) => write(store, &batch, stats),
                Work::Stop => return commit(store),
            }
        }
    }
    commit(store);
}

fn commit(store: &Store) {
    if let Err(error) = store.commit() {
        tracing::error!(%error, "metric history: the last samples could not be committed");
    }
}

/// Appends one batch, a series at a time (each series' samples in order): a
/// series is resolved once per batch, not once per sample.
fn write(store: &Store, batch: &[Sample], stats: &HistoryStats) {
    for group in by_series(batch) {
        let labels = match Labels::new(
            group.name,
            group
                .labels
                .iter()
                .map(|l| (l.name.as_str(), l.value.as_str())),
        ) {
            Ok(labels) => labels,
            Err(error) => {
                stats.refused.fetch_add(group.points.len() as u64, Relaxed);
                tracing::debug!(sample = %group.name, %error, "metric history: samples refused");
                continue;
            }
        };
        let kind = match group.kind {
            MetricKind::Gauge => wasmeter_tsdb::MetricKind::Gauge,
            MetricKind::Counter => wasmeter_tsdb::MetricKind::Counter,
        };
        match store.append_series(&labels, kind, &group.points) {
            Ok(outcome) => {
                stats.refused.fetch_add(outcome.refused(), Relaxed);
                stats.written.fetch_add(outcome.accepted, Relaxed);
            }
            Err(error) => {
                stats.failed_batches.fetch_add(1, Relaxed);
                tracing::error!(%error, "metric history: a batch of samples could not be written");
                return;
            }
        }
    }
}
