//! The writer: batches of samples from the pipelines, appended to the store on
//! a thread of its own (the store's I/O is blocking). The queue between them is
//! bounded: a pipeline waits while it is full, so a slow disk slows the
//! pipelines' input (the files back up) rather than losing samples or growing
//! memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::mpsc;
use wasmeter_core::sample_batch::SampleBatch;
use wasmeter_tsdb::{Sample as Point, SeriesRef, Store};

use crate::refs::{SeriesRefs, Unresolved};

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
    /// Samples to append.
    Batch(SampleBatch),
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
    /// sent after the writer stopped is dropped (only during shutdown).
    pub async fn send(&self, samples: SampleBatch) {
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
    let mut state = WriterState::default();
    while let Some(first) = rx.blocking_recv() {
        if rx.len() < rx.max_capacity() / 2 {
            std::thread::sleep(LINGER);
        }
        let queued = std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok()));
        for work in queued {
            match work {
                Work::Batch(batch) => write(store, &batch, stats, &mut state),
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

/// What the writer thread keeps between batches.
#[derive(Default)]
struct WriterState {
    refs: SeriesRefs,
    /// The batch's series' references (`None`: refused), reused between batches.
    series: Vec<Option<SeriesRef>>,
    /// The batch's points by series reference, reused between batches.
    points: Vec<(SeriesRef, Point)>,
}

/// Appends one batch: each of its series resolved once (from the references
/// kept across batches), then its points appended under one lock of the store.
fn write(store: &Store, batch: &SampleBatch, stats: &HistoryStats, state: &mut WriterState) {
    // A second attempt only if the store dropped a series it had (retention):
    // its reference is stale, so every series is resolved again.
    for attempt in 0..2 {
        state.series.clear();
        for series in batch.series() {
            match state.refs.resolve(store, &series.key, series.kind) {
                Ok(r) => state.series.push(Some(r)),
                Err(Unresolved::Refused(error)) => {
                    state.series.push(None);
                    tracing::debug!(sample = %series.key.name(), %error, "metric history: samples refused");
                }
                Err(Unresolved::Failed(error)) => return failed(stats, &error),
            }
        }
        state.points.clear();
        let mut refused = 0;
        for p in batch.points() {
            match state.series[p.series as usize] {
                Some(r) => state.points.push((r, Point::new(p.timestamp_ms, p.value))),
                None => refused += 1,
            }
        }
        match store.append_refs(&state.points) {
            Ok(outcome) => {
                stats
                    .refused
                    .fetch_add(refused + outcome.refused(), Relaxed);
                stats.written.fetch_add(outcome.accepted, Relaxed);
                return;
            }
            Err(wasmeter_tsdb::Error::UnknownSeries(_)) if attempt == 0 => state.refs.clear(),
            Err(error) => return failed(stats, &error),
        }
    }
}

fn failed(stats: &HistoryStats, error: &wasmeter_tsdb::Error) {
    stats.failed_batches.fetch_add(1, Relaxed);
    tracing::error!(%error, "metric history: a batch of samples could not be written");
}
