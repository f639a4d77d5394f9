//! The store: opening and recovery, the write path, commits and checkpoints,
//! retention, and the read path.
//!
//! This file holds the public types and the store's shared state; the
//! methods are split by job:
//! - `open`: `Store::open`; `recover`: what open rebuilds and drops
//!   (partition files, checkpoint, log replay, leftover temporary files);
//! - `write`: series creation and the append path, chunk cuts, closing
//!   partitions;
//! - `commit`: group commit, `wait_durable`, `close`, the committer thread,
//!   checkpoints;
//! - `maintain`: retention by age and size, dropping dead series;
//! - `read`: `query`, `query_range(_with)` and their evaluation;
//!   `meta`: `select`, label names and values, `kind`, `stats`.
//!
//! # Concurrency
//! `Store` is `Send + Sync`. Writes (`append_*`, `commit`, `close`) are
//! serialised by one writer mutex (a checkpoint holds it only to roll the log
//! and copy the head, not while its file is written); queries take short read locks on the
//! catalog, the head and the partition index, copy what they need (open
//! chunks, chunk locations) and decode without holding any lock. Locks are
//! always taken in the order catalog -> head -> partitions, and no fsync is
//! made while a lock that readers take is held: readers never wait for an fsync.
//!
//! # Threads
//! With `Options::commit_interval` set (the default, 1 s) the store owns one
//! committer thread that calls [`Store::commit`] at that interval; `close()`
//! or dropping the store stops and joins it. With `None`, the caller commits.

mod commit;
mod maintain;
mod meta;
mod open;
mod read;
mod recover;
mod write;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::catalog::Catalog;
use crate::head::Head;
use crate::options::Options;
use crate::partition::Partition;
use crate::tier::Tier;
use crate::wal::Wal;

/// Name of the lock file in the store's directory.
const LOCK_FILE: &str = "LOCK";
/// Samples appended per head-lock hold, so queries are never kept waiting long.
const LOCK_BATCH: usize = 4096;
/// The log buffer is written out (without fsync) past this size.
const WAL_WRITE_OUT: usize = 8 << 20;

/// One sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Unix time in milliseconds.
    pub timestamp_ms: i64,
    /// The value (must be finite).
    pub value: f64,
}

impl Sample {
    /// A sample.
    pub fn new(timestamp_ms: i64, value: f64) -> Self {
        Sample {
            timestamp_ms,
            value,
        }
    }
}

/// A handle to a series, from [`Store::series_ref`], for the fast write path
/// [`Store::append_refs`]. Valid for the lifetime of the store that issued it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeriesRef(u32);

impl SeriesRef {
    /// The series' id in the catalog.
    pub fn id(self) -> u32 {
        self.0
    }
}

/// What an append did: samples accepted and samples refused, by reason.
/// Refusals are counted, never errors, as in Prometheus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Write sequence number of this append; durable once
    /// [`Store::wait_durable`] with it returns `true`.
    pub seq: u64,
    /// Samples stored.
    pub accepted: u64,
    /// Samples older than the newest of their series.
    pub out_of_order: u64,
    /// Samples with the same timestamp as the newest of their series.
    pub duplicate: u64,
    /// Samples older than the partitions still open for writing.
    pub too_old: u64,
    /// Samples more than `Options::max_future_ms` ahead of the wall clock.
    pub too_new: u64,
    /// NaN or infinite values.
    pub non_finite: u64,
    /// Samples of a new series refused because of `Options::max_series`.
    pub series_limit: u64,
    /// Series created by this append.
    pub new_series: u64,
}

impl AppendOutcome {
    /// Samples refused, all reasons together.
    pub fn refused(&self) -> u64 {
        self.out_of_order
            + self.duplicate
            + self.too_old
            + self.too_new
            + self.non_finite
            + self.series_limit
    }

    /// Adds another outcome's counters to this one (keeping the larger `seq`).
    pub fn merge(&mut self, o: &AppendOutcome) {
        self.seq = self.seq.max(o.seq);
        self.accepted += o.accepted;
        self.out_of_order += o.out_of_order;
        self.duplicate += o.duplicate;
        self.too_old += o.too_old;
        self.too_new += o.too_new;
        self.non_finite += o.non_finite;
        self.series_limit += o.series_limit;
        self.new_series += o.new_series;
    }
}

/// A snapshot of the store's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Series in the catalog.
    pub series: usize,
    /// The store's clock: the newest sample timestamp written (`i64::MIN` if none).
    pub now_ms: i64,
    /// Partition files per tier, in [`Tier::ALL`] order.
    pub partitions: [usize; 4],
    /// Bytes of partition files per tier.
    pub partition_bytes: [u64; 4],
    /// Chunks in the partition files per tier (each indexed on disk beside
    /// its file: about ten bytes).
    pub chunks: [u64; 4],
    /// Oldest timestamp held per tier (`i64::MAX` if none).
    pub tier_min_ms: [i64; 4],
    /// Bytes of the write-ahead log.
    pub wal_bytes: u64,
    /// Bytes of the current checkpoint.
    pub checkpoint_bytes: u64,
    /// Bytes of the catalog.
    pub catalog_bytes: u64,
    /// Everything the store keeps on disk, as accounted for `max_disk_bytes`.
    pub disk_bytes: u64,
    /// Partition files deleted by age since open.
    pub deleted_by_age: u64,
    /// Partition files deleted to stay under `max_disk_bytes` since open.
    pub deleted_by_size: u64,
    /// Series dropped from the catalog because none of their data remained.
    pub series_dropped: u64,
    /// Write sequence made durable by the last commit.
    pub durable_seq: u64,
    /// The last error of the committer thread, if its last commit failed.
    pub last_commit_error: Option<String>,
}

#[derive(Debug)]
struct Parts {
    tiers: [BTreeMap<i64, Partition>; 4],
    /// Oldest timestamp still held per tier (`i64::MAX` if none).
    tier_min: [i64; 4],
    /// Files set aside because their header was unreadable: tier, start, path, bytes.
    aside: Vec<(Tier, i64, PathBuf, u64)>,
    /// Tier directories with files created since the last commit.
    new_files: [bool; 4],
}

#[derive(Debug)]
struct Writer {
    wal: Wal,
    seq: u64,
    checkpoint_bytes: u64,
    next_close_check: i64,
    /// Oldest timestamp accepted since open (tier bounds are lowered past it).
    min_seen: i64,
    broken: Option<String>,
    deleted_by_age: u64,
    deleted_by_size: u64,
    series_dropped: u64,
}

#[derive(Debug, Default)]
struct CommitState {
    durable: u64,
    stop: bool,
    last_error: Option<String>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    opts: Options,
    catalog: RwLock<Catalog>,
    head: RwLock<Head>,
    parts: RwLock<Parts>,
    writer: Mutex<Writer>,
    /// Held by a checkpoint from the log's roll to the deletion of what it
    /// replaces (taken before `writer`).
    checkpointing: Mutex<()>,
    /// Held by a commit that syncs without the writer's lock, from taking
    /// what it syncs to marking it durable (taken before `writer`).
    committing: Mutex<()>,
    state: Mutex<CommitState>,
    cv: Condvar,
    closed: AtomicBool,
    _lock: File,
}

/// An embedded time-series store. See the crate documentation.
#[derive(Debug)]
pub struct Store {
    inner: Arc<Inner>,
    committer: Mutex<Option<JoinHandle<()>>>,
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn tier_dir(dir: &Path, tier: Tier) -> PathBuf {
    dir.join(tier.name())
}

impl Store {
    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &Options {
        &self.inner.opts
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
