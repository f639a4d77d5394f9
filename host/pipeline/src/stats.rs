//! Counters of a pipeline, read by `/metrics` and tests.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one pipeline.
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Chunks (file chunks as their sources sent them, and system readings)
    /// taken for processing.
    pub chunks: AtomicU64,
    /// Chunks whose collector call failed even record by record.
    pub chunks_failed: AtomicU64,
    /// Records a collector reported as malformed.
    pub record_errors: AtomicU64,
    /// Samples produced (collector and derived).
    pub samples: AtomicU64,
    /// Topic changes published.
    pub changes: AtomicU64,
    /// Topic changes the broker refused (a bad name, a kind mismatch, its limit
    /// of topics): committed to the state here but not published.
    pub changes_refused: AtomicU64,
    /// Flushes of published changes that failed because the broker was
    /// unreachable; each is retried, the input waiting meanwhile.
    pub flush_failures: AtomicU64,
    /// 1 while the pipeline waits for an unreachable broker (gauge).
    pub broker_waiting: AtomicU64,
    /// Changes of sample-series topics nobody subscribed to, held and merged
    /// into the next tick's refresh instead of published one by one.
    pub series_changes_held: AtomicU64,
    /// Sample series whose topics are not created because nobody watches for
    /// them; their newest points are kept (gauge).
    pub series_dormant: AtomicU64,
    /// Delta-plugin failures answered with the exact difference instead.
    pub delta_fallbacks: AtomicU64,
    /// Checkpoints written.
    pub checkpoints: AtomicU64,
    /// Checkpoints that failed to write.
    pub checkpoint_errors: AtomicU64,
    /// Bytes of file chunks processed but not yet in a written checkpoint (gauge).
    pub uncheckpointed_bytes: AtomicU64,
    /// Plugin swaps applied (hot reloads, admin swaps, rollbacks, additions).
    pub swaps: AtomicU64,
    /// The longest time the pipeline's task spent on one swap, in nanoseconds.
    pub swap_pause_max_nanos: AtomicU64,
    /// Unix milliseconds of the oldest change not yet in a written checkpoint; 0
    /// when everything processed is checkpointed.
    pub dirty_since_ms: AtomicU64,
    /// Items of plugin output refused (topics the pipeline does not own, series of
    /// another pipeline, quotas).
    pub refused_outputs: AtomicU64,
    /// 1 while the collector is quarantined and the input waits in the files (gauge).
    pub input_paused: AtomicU64,
    /// Checkpoints skipped because a plugin's state could not be exported (the
    /// previous checkpoint stays; offsets and states always match).
    pub checkpoints_skipped: AtomicU64,
}

impl PipelineStats {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Seconds the oldest not-yet-checkpointed change has waited, at `now_ms`
    /// (0 when everything processed is checkpointed).
    pub fn checkpoint_lag_seconds(&self, now_ms: i64) -> f64 {
        match self.dirty_since_ms.load(Ordering::Relaxed) {
            0 => 0.0,
            since => (now_ms.max(0) as u64).saturating_sub(since) as f64 / 1000.0,
        }
    }

    /// Records one swap's pause.
    pub fn record_swap(&self, pause: std::time::Duration) {
        Self::add(&self.swaps, 1);
        self.swap_pause_max_nanos
            .fetch_max(pause.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
