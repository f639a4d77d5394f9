//! Counters of a pipeline, read by `/metrics` and tests.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one pipeline.
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Chunks (file chunks and system readings) processed.
    pub chunks: AtomicU64,
    /// Chunks whose collector call failed even record by record.
    pub chunks_failed: AtomicU64,
    /// Records a collector reported as malformed.
    pub record_errors: AtomicU64,
    /// Samples produced (collector and derived).
    pub samples: AtomicU64,
    /// Topic changes published.
    pub changes: AtomicU64,
    /// Delta-plugin failures answered with the exact difference instead.
    pub delta_fallbacks: AtomicU64,
    /// Checkpoints written.
    pub checkpoints: AtomicU64,
    /// Checkpoints that failed to write.
    pub checkpoint_errors: AtomicU64,
}

impl PipelineStats {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
