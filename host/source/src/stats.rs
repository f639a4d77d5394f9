//! Self-metrics of a source, and the typed events that move them.
//!
//! Every counter changes through one method here that also writes the log line, so the
//! names of what the source reports live in one place.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tracing::{debug, info, warn};

use crate::fingerprint::FileKey;
use crate::progress::CatchUp;

/// Counters of one file source (shared, lock-free; read them with [`SourceStats::snapshot`]).
#[derive(Debug, Default)]
pub struct SourceStats {
    bytes_read: AtomicU64,
    records: AtomicU64,
    chunks: AtomicU64,
    rotations: AtomicU64,
    truncations: AtomicU64,
    oversized_lines: AtomicU64,
    partial_lines_dropped: AtomicU64,
    read_errors: AtomicU64,
    mmap_faults: AtomicU64,
    files_open: AtomicU64,
    open_budget: AtomicU64,
    files_waiting: AtomicU64,
    files_tracked: AtomicU64,
    opens_deferred: AtomicU64,
    idle_closes: AtomicU64,
    files_found_renamed: AtomicU64,
    files_gone: AtomicU64,
    bytes_gone: AtomicU64,
}

/// A point-in-time copy of [`SourceStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Bytes read from files (including partial and skipped lines).
    pub bytes_read: u64,
    /// Records handed on in chunks.
    pub records: u64,
    /// Chunks handed on.
    pub chunks: u64,
    /// Files rotated away (their path now names another file).
    pub rotations: u64,
    /// Files found shorter than what was read (or rewritten), restarted at 0.
    pub truncations: u64,
    /// Lines longer than `max_line_bytes`, skipped.
    pub oversized_lines: u64,
    /// Unterminated last lines of files that were closed or truncated.
    pub partial_lines_dropped: u64,
    /// Failed reads, stats and opens (retried on the next scan).
    pub read_errors: u64,
    /// Mapped copies that hit a concurrent truncation (SIGBUS caught, re-read with pread).
    pub mmap_faults: u64,
    /// Files currently open: descriptors held by the source (gauge, at most
    /// `open_budget`).
    pub files_open: u64,
    /// The most files the source keeps open at once (gauge; `max_open_files`).
    pub open_budget: u64,
    /// Files with bytes to read that wait for a descriptor (gauge).
    pub files_waiting: u64,
    /// Files tailed, open or closed (gauge).
    pub files_tracked: u64,
    /// Opens put off for lack of a descriptor: budget full, or `EMFILE`/`ENFILE` from
    /// the system (the file waits its turn and is retried; nothing is lost).
    pub opens_deferred: u64,
    /// Files closed because no bytes arrived for `idle_close` (reopened when they grow).
    pub idle_closes: u64,
    /// Checkpointed (or closed) files found again under another name in the watched
    /// directories (renamed by a rotation while not tailed); their unread tail is read.
    pub files_found_renamed: u64,
    /// Checkpointed (or closed) files gone for good: neither at their path nor anywhere
    /// in the watched directories.
    pub files_gone: u64,
    /// Bytes known to exist in gone files past their committed offset (lost).
    pub bytes_gone: u64,
}

impl SourceStats {
    /// Reads all counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            bytes_read: self.bytes_read.load(Relaxed),
            records: self.records.load(Relaxed),
            chunks: self.chunks.load(Relaxed),
            rotations: self.rotations.load(Relaxed),
            truncations: self.truncations.load(Relaxed),
            oversized_lines: self.oversized_lines.load(Relaxed),
            partial_lines_dropped: self.partial_lines_dropped.load(Relaxed),
            read_errors: self.read_errors.load(Relaxed),
            mmap_faults: self.mmap_faults.load(Relaxed),
            files_open: self.files_open.load(Relaxed),
            open_budget: self.open_budget.load(Relaxed),
            files_waiting: self.files_waiting.load(Relaxed),
            files_tracked: self.files_tracked.load(Relaxed),
            opens_deferred: self.opens_deferred.load(Relaxed),
            idle_closes: self.idle_closes.load(Relaxed),
            files_found_renamed: self.files_found_renamed.load(Relaxed),
            files_gone: self.files_gone.load(Relaxed),
            bytes_gone: self.bytes_gone.load(Relaxed),
        }
    }

    pub(crate) fn bytes_read_total(&self) -> u64 {
        self.bytes_read.load(Relaxed)
    }

    pub(crate) fn bytes_read(&self, n: usize) {
        self.bytes_read.fetch_add(n as u64, Relaxed);
    }

    pub(crate) fn chunk(&self, records: u64) {
        self.chunks.fetch_add(1, Relaxed);
        self.records.fetch_add(records, Relaxed);
    }

    pub(crate) fn file_opened(&self) {
        self.files_open.fetch_add(1, Relaxed);
    }

    pub(crate) fn file_released(&self) {
        self.files_open.fetch_sub(1, Relaxed);
    }

    pub(crate) fn open_files(&self) -> usize {
        self.files_open.load(Relaxed) as usize
    }

    pub(crate) fn set_open_budget(&self, n: usize) {
        self.open_budget.store(n as u64, Relaxed);
    }

    pub(crate) fn set_queue(&self, waiting: usize, tracked: usize) {
        self.files_waiting.store(waiting as u64, Relaxed);
        self.files_tracked.store(tracked as u64, Relaxed);
    }

    pub(crate) fn open_deferred(&self, source: &str, path: &Path, err: Option<&std::io::Error>) {
        let n = self.opens_deferred.fetch_add(1, Relaxed);
        match err {
            // The system is out of descriptors: worth a warning (rate-limited by count).
            Some(e) if n.is_power_of_two() => {
                warn!(source, path = %path.display(), error = %e, deferred = n + 1,
                    "cannot open file now; it waits for a descriptor and is retried")
            }
            _ => debug!(source, path = %path.display(), "file waits for a descriptor"),
        }
    }

    pub(crate) fn idle_closed(&self, source: &str, path: &Path) {
        self.idle_closes.fetch_add(1, Relaxed);
        debug!(source, path = %path.display(), "idle file closed; reopened when it grows");
    }

    pub(crate) fn found_renamed(&self, source: &str, path: &Path, now_at: &Path, unread: u64) {
        self.files_found_renamed.fetch_add(1, Relaxed);
        info!(source, path = %path.display(), now_at = %now_at.display(), unread,
            "file renamed while not tailed; reading its unread tail first");
    }

    pub(crate) fn gone(&self, source: &str, path: &Path, file: FileKey, unread: u64) {
        self.files_gone.fetch_add(1, Relaxed);
        self.bytes_gone.fetch_add(unread, Relaxed);
        warn!(source, path = %path.display(), %file, unread_bytes = unread,
            "file gone before it was read to its end (not found in the watched directories); its unread bytes are lost");
    }

    pub(crate) fn tailing(&self, source: &str, path: &Path, file: FileKey, offset: u64) {
        info!(source, path = %path.display(), %file, offset, "tailing file");
    }

    pub(crate) fn file_closed(&self, source: &str, path: &Path, file: Option<FileKey>) {
        debug!(source, path = %path.display(), file = ?file, "file closed");
    }

    pub(crate) fn rotated(&self, source: &str, path: &Path, old: FileKey) {
        self.rotations.fetch_add(1, Relaxed);
        info!(source, path = %path.display(), %old, "file rotated; old file read to its end");
    }

    pub(crate) fn truncated(&self, source: &str, path: &Path, file: FileKey, size: u64, read: u64) {
        self.truncations.fetch_add(1, Relaxed);
        warn!(source, path = %path.display(), %file, size, read, "file truncated or rewritten; restarting at 0");
    }

    pub(crate) fn oversized_line(&self, source: &str, path: &Path, offset: u64, max: usize) {
        self.oversized_lines.fetch_add(1, Relaxed);
        warn!(source, path = %path.display(), offset, max_line_bytes = max, "line too long, skipped");
    }

    pub(crate) fn partial_dropped(&self, source: &str, path: &Path, offset: u64, bytes: u64) {
        self.partial_lines_dropped.fetch_add(1, Relaxed);
        warn!(source, path = %path.display(), offset, bytes, "unterminated last line dropped");
    }

    pub(crate) fn read_error(&self, source: &str, op: &str, path: &Path, err: &std::io::Error) {
        self.read_errors.fetch_add(1, Relaxed);
        warn!(source, path = %path.display(), op, error = %err, "file read failed; retrying on next scan");
    }

    pub(crate) fn catch_up(&self, source: &str, path: &Path, event: CatchUp) {
        const MIB: f64 = (1 << 20) as f64;
        match event {
            CatchUp::Started { backlog_bytes } => {
                info!(source, path = %path.display(), backlog_bytes, "catching up on a large backlog")
            }
            CatchUp::Progress {
                done_bytes,
                total_bytes,
                bytes_per_sec,
            } => info!(
                source,
                path = %path.display(),
                done_bytes,
                total_bytes,
                percent = format_args!("{:.1}", done_bytes as f64 * 100.0 / total_bytes.max(1) as f64),
                mib_per_sec = format_args!("{:.1}", bytes_per_sec / MIB),
                "catching up"
            ),
            CatchUp::Finished { bytes, secs } => info!(
                source,
                path = %path.display(),
                bytes,
                secs = format_args!("{secs:.1}"),
                mib_per_sec = format_args!("{:.1}", bytes as f64 / MIB / secs.max(1e-3)),
                "caught up"
            ),
        }
    }

    pub(crate) fn mmap_fault(&self, source: &str, path: &Path, offset: u64) {
        self.mmap_faults.fetch_add(1, Relaxed);
        warn!(source, path = %path.display(), offset, "file shrank under the memory map; re-reading with pread");
    }
}
