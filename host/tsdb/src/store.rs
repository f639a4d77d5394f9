//! The store: opening and recovery, the write path, commits and checkpoints,
//! retention, and the read path.
//!
//! # Concurrency
//! `Store` is `Send + Sync`. Writes (`append_*`, `commit`, `close`) are
//! serialised by one writer mutex; queries take short read locks on the
//! catalog, the head and the partition index, copy what they need (open
//! chunks, chunk locations) and decode without holding any lock. Locks are
//! always taken in the order catalog -> head -> partitions, and no fsync is
//! made while a lock that readers take is held: readers never wait for an fsync.
//!
//! # Threads
//! With `Options::commit_interval` set (the default, 1 s) the store owns one
//! committer thread that calls [`Store::commit`] at that interval; `close()`
//! or dropping the store stops and joins it. With `None`, the caller commits.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::catalog::Catalog;
use crate::checkpoint;
use crate::chunk;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::gorilla;
use crate::head::{Appended, Cut, Head};
use crate::labels::{Labels, MetricKind};
use crate::matcher::{self, Matcher};
use crate::options::Options;
use crate::partition::{self, ChunkMeta, PartFile, Partition};
use crate::query::{self, QueryResult, QueryStats, RangeQuery, SeriesPoints, TierChoice};
use crate::recovery::{DropAction, Dropped, Recovery};
use crate::retention;
use crate::tier::{Bucket, Tier};
use crate::wal::{self, Wal};

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

/// A chunk to read for a query.
struct DiskChunk {
    file: Arc<PartFile>,
    meta: ChunkMeta,
}

/// What a query needs of one series, copied out under the locks.
struct Source {
    labels: Labels,
    disk: Vec<DiskChunk>,
    head_bytes: Option<(Vec<u8>, u32)>,
    acc: Option<Bucket>,
}

impl Store {
    /// Opens (or creates) the store in `dir`, recovering whatever a crash left:
    /// torn tails are truncated, corrupt frames and files skipped, and the
    /// head is rebuilt from the last checkpoint and the write-ahead log. The
    /// [`Recovery`] says precisely what was dropped.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<(Store, Recovery)> {
        opts.validate()?;
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).at(&dir)?;
        for sub in [wal::DIR, "raw", "1s", "1m", "1h"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).at(&p)?;
        }
        let lock_path = dir.join(LOCK_FILE);
        let lock = fsutil::open_rw(&lock_path)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(Error::Locked { path: dir }),
            Err(fs::TryLockError::Error(e)) => {
                return Err(Error::Io {
                    path: lock_path,
                    source: e,
                });
            }
        }
        let mut rec = Recovery::default();
        remove_tmp_files(&dir, &mut rec)?;

        let catalog = Catalog::open(&dir, &mut rec)?;
        let mut head = Head {
            now: i64::MIN,
            ..Head::default()
        };
        head.ensure(catalog.id_bound());

        // Partition files.
        let mut parts = Parts {
            tiers: Default::default(),
            tier_min: [i64::MAX; 4],
            aside: Vec::new(),
            new_files: [false; 4],
        };
        for tier in Tier::ALL {
            let tdir = tier_dir(&dir, tier);
            let mut files: Vec<(i64, PathBuf)> = Vec::new();
            for e in fs::read_dir(&tdir).at(&tdir)? {
                let e = e.at(&tdir)?;
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(start) = name
                    .strip_suffix(".part")
                    .and_then(|s| s.parse::<i64>().ok())
                {
                    files.push((start, e.path()));
                } else if let Some(start) = name
                    .strip_suffix(&format!(".part{}", partition::CORRUPT_SUFFIX))
                    .and_then(|s| s.parse::<i64>().ok())
                {
                    parts
                        .aside
                        .push((tier, start, e.path(), fsutil::file_len(&e.path())));
                }
            }
            files.sort();
            for (start, path) in files {
                let Some(mut p) = Partition::open(&path, tier, start, &mut rec)? else {
                    let mut aside = path.as_os_str().to_owned();
                    aside.push(partition::CORRUPT_SUFFIX);
                    let aside = PathBuf::from(aside);
                    let size = fsutil::file_len(&aside);
                    parts.aside.push((tier, start, aside, size));
                    continue;
                };
                for (s, m) in p.drop_unknown(|s| catalog.entry(s).is_some()) {
                    rec.dropped.push(Dropped {
                        file: path.clone(),
                        offset: m.offset,
                        bytes: u64::from(m.len),
                        records: 1,
                        reason: format!("chunk of series id {s}, which the catalog does not hold (never committed)"),
                        action: DropAction::Skipped,
                    });
                }
                // Disk bounds per series: the newest raw sample (so the log is
                // not replayed twice) and the newest bucket per tier.
                for (s, min_t) in p.series_min() {
                    let sh = &mut head.series[s as usize];
                    sh.min_t = sh.min_t.min(min_t);
                    let max = p.series_max(s).unwrap_or(i64::MIN);
                    if tier == Tier::Raw {
                        sh.last_t = sh.last_t.max(max);
                    } else {
                        let th = &mut sh.tiers[tier.index() - 1];
                        th.disk_max = th.disk_max.max(max);
                    }
                    head.now = head.now.max(max);
                }
                parts.tier_min[tier.index()] = parts.tier_min[tier.index()].min(p.min_t);
                parts.tiers[tier.index()].insert(start, p);
            }
        }

        // Checkpoint: the newest one with a usable header.
        let mut ckpt_seq = None;
        let mut ckpt_bytes = 0;
        let ckpts = checkpoint::list(&dir)?;
        for (seq, path) in ckpts.iter().rev() {
            match checkpoint::load(path, &mut rec)?.filter(|l| l.seq == *seq) {
                Some(loaded) => {
                    restore_checkpoint(&mut head, loaded, catalog.id_bound());
                    ckpt_seq = Some(*seq);
                    ckpt_bytes = fsutil::file_len(path);
                    rec.checkpoint = Some(path.clone());
                    break;
                }
                None => rec.dropped.push(Dropped {
                    file: path.clone(),
                    offset: 0,
                    bytes: fsutil::file_len(path),
                    records: 0,
                    reason: "checkpoint header is missing or fails its checksum".into(),
                    action: DropAction::Skipped,
                }),
            }
        }
        // The oldest data of a tier may be in the head only.
        for sh in &head.series {
            if let Some(o) = &sh.raw {
                parts.tier_min[0] = parts.tier_min[0].min(o.chunk.min_t());
            }
            for (i, th) in sh.tiers.iter().enumerate() {
                let m = th
                    .open
                    .as_ref()
                    .map(|o| o.chunk.min_t())
                    .into_iter()
                    .chain(th.acc.map(|b| b.start_ms))
                    .min();
                if let Some(m) = m {
                    parts.tier_min[i + 1] = parts.tier_min[i + 1].min(m);
                }
            }
        }
        for (seq, path) in &ckpts {
            if Some(*seq) != ckpt_seq {
                fs::remove_file(path).at(path)?;
            }
        }

        // Write-ahead log: replay the segments from the checkpoint on.
        let wal_dir = dir.join(wal::DIR);
        let segments = wal::segments(&wal_dir)?;
        let next_seq = segments
            .last()
            .map_or(ckpt_seq.unwrap_or(0) + 1, |(s, _)| s + 1)
            .max(ckpt_seq.unwrap_or(0));
        let mut older = 0u64;
        for (seq, path) in &segments {
            if ckpt_seq.is_some_and(|c| *seq < c) {
                // Covered by the checkpoint: a leftover of an interrupted deletion.
                fs::remove_file(path).at(path)?;
                continue;
            }
            older += fsutil::file_len(path);
        }
        let wal = Wal::create(&wal_dir, next_seq, older)?;
        let inner = Arc::new(Inner {
            dir: dir.clone(),
            opts,
            catalog: RwLock::new(catalog),
            head: RwLock::new(head),
            parts: RwLock::new(parts),
            writer: Mutex::new(Writer {
                wal,
                seq: 0,
                checkpoint_bytes: ckpt_bytes,
                next_close_check: i64::MIN,
                min_seen: i64::MAX,
                broken: None,
                deleted_by_age: 0,
                deleted_by_size: 0,
                series_dropped: 0,
            }),
            state: Mutex::new(CommitState::default()),
            cv: Condvar::new(),
            closed: AtomicBool::new(false),
            _lock: lock,
        });
        {
            let mut w = inner.writer.lock();
            let mut unknown = 0u64;
            let mut out = AppendOutcome::default();
            for (seq, path) in &segments {
                if ckpt_seq.is_some_and(|c| *seq < c) {
                    continue;
                }
                let mut batch: Vec<(u32, i64, f64)> = Vec::with_capacity(LOCK_BATCH);
                let bound = inner.catalog.read().id_bound() as u32;
                let mut failed = None;
                wal::replay(path, &mut rec, |id, t, v| {
                    if id >= bound || inner.catalog.read().entry(id).is_none() {
                        unknown += 1;
                        return;
                    }
                    batch.push((id, t, v));
                    if batch.len() == LOCK_BATCH && failed.is_none() {
                        if let Err(e) = inner.append_locked(&mut w, &batch, false, &mut out) {
                            failed = Some(e);
                        }
                        batch.clear();
                    }
                })?;
                if let Some(e) = failed {
                    return Err(e);
                }
                inner.append_locked(&mut w, &batch, false, &mut out)?;
                rec.wal_segments += 1;
            }
            rec.wal_samples = out.accepted;
            rec.wal_samples_already_stored = out.out_of_order + out.duplicate + out.too_old;
            if unknown > 0 {
                rec.dropped.push(Dropped {
                    file: wal_dir.clone(),
                    offset: 0,
                    bytes: 0,
                    records: unknown,
                    reason: format!(
                        "{unknown} logged samples name series the catalog does not hold"
                    ),
                    action: DropAction::Skipped,
                });
            }
            inner.maybe_close(&mut w, true)?;
            // Make the recovered state durable and start from a fresh checkpoint.
            inner.commit_locked(&mut w)?;
            if !segments.is_empty() || ckpt_seq.is_none() {
                inner.checkpoint_locked(&mut w)?;
            }
        }
        let store = Store {
            inner: inner.clone(),
            committer: Mutex::new(None),
        };
        if let Some(interval) = inner.opts.commit_interval {
            let handle = std::thread::Builder::new()
                .name("tsdb-commit".into())
                .spawn(move || committer(inner, interval))
                .at(&dir)?;
            *store.committer.lock() = Some(handle);
        }
        Ok((store, rec))
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &Options {
        &self.inner.opts
    }

    /// The reference of series `labels`, creating it if needed. Fails with
    /// [`Error::SeriesLimit`] when the store already holds `max_series` series.
    /// `kind` is recorded when the series is created.
    pub fn series_ref(&self, labels: &Labels, kind: MetricKind) -> Result<SeriesRef> {
        let existing = self.inner.catalog.read().get(labels);
        if let Some(id) = existing {
            return Ok(SeriesRef(id));
        }
        let mut w = self.inner.writer.lock();
        self.inner.check_writable(&w)?;
        match self.inner.create_series(&mut w, labels, kind)? {
            Some((id, _)) => Ok(SeriesRef(id)),
            None => Err(Error::SeriesLimit {
                limit: self.inner.opts.max_series,
                series: labels.to_string(),
            }),
        }
    }

    /// Appends samples of one series (created if new). Samples must come in
    /// time order per series; others are refused and counted, as are NaN and
    /// infinite values, samples of a new series beyond `max_series`, and
    /// samples outside the open time window.
    pub fn append_series(
        &self,
        labels: &Labels,
        kind: MetricKind,
        samples: &[Sample],
    ) -> Result<AppendOutcome> {
        let mut w = self.inner.writer.lock();
        self.inner.check_writable(&w)?;
        let mut out = AppendOutcome::default();
        let existing = self.inner.catalog.read().get(labels);
        let id = match existing {
            Some(id) => id,
            None => {
                // Do not create a series for samples that would all be refused.
                if !samples.iter().any(|s| s.value.is_finite()) {
                    out.non_finite = samples.len() as u64;
                    return Ok(out);
                }
                match self.inner.create_series(&mut w, labels, kind)? {
                    Some((id, _)) => {
                        out.new_series = 1;
                        id
                    }
                    None => {
                        out.series_limit = samples.len() as u64;
                        out.seq = w.seq;
                        return Ok(out);
                    }
                }
            }
        };
        let items: Vec<(u32, i64, f64)> = samples
            .iter()
            .map(|s| (id, s.timestamp_ms, s.value))
            .collect();
        self.inner.append_all(&mut w, &items, &mut out)?;
        Ok(out)
    }

    /// Appends samples by series reference: the fast path for a writer that
    /// keeps its series' references.
    pub fn append_refs(&self, samples: &[(SeriesRef, Sample)]) -> Result<AppendOutcome> {
        let mut w = self.inner.writer.lock();
        self.inner.check_writable(&w)?;
        let mut items = Vec::with_capacity(samples.len());
        {
            let cat = self.inner.catalog.read();
            let mut last = u32::MAX;
            for (r, s) in samples {
                if r.0 != last && cat.entry(r.0).is_none() {
                    return Err(Error::UnknownSeries(r.0));
                }
                last = r.0;
                items.push((r.0, s.timestamp_ms, s.value));
            }
        }
        let mut out = AppendOutcome::default();
        self.inner.append_all(&mut w, &items, &mut out)?;
        Ok(out)
    }

    /// Group commit: makes every append so far durable (catalog, chunks,
    /// write-ahead log, each fsynced), then runs due maintenance (closing
    /// partitions, retention, checkpoint). Returns the durable sequence.
    pub fn commit(&self) -> Result<u64> {
        let mut w = self.inner.writer.lock();
        self.inner.check_writable(&w)?;
        self.inner.commit_locked(&mut w)?;
        self.inner.maintain(&mut w)?;
        Ok(w.seq)
    }

    /// Waits until the append with sequence `seq` is durable (committed by
    /// the committer thread or another caller), at most `timeout`. Returns
    /// whether it is.
    pub fn wait_durable(&self, seq: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.inner.state.lock();
        while st.durable < seq {
            if self.inner.cv.wait_until(&mut st, deadline).timed_out() {
                return st.durable >= seq;
            }
        }
        true
    }

    /// Commits, writes a final checkpoint (so the next open replays nothing),
    /// stops and joins the committer thread and releases the directory.
    pub fn close(self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        {
            let mut st = self.inner.state.lock();
            st.stop = true;
            self.inner.cv.notify_all();
        }
        if let Some(h) = self.committer.lock().take() {
            let _ = h.join();
        }
        let mut w = self.inner.writer.lock();
        if let Some(b) = &w.broken {
            return Err(Error::Corrupt {
                path: self.inner.dir.clone(),
                offset: 0,
                reason: b.clone(),
            });
        }
        self.inner.commit_locked(&mut w)?;
        self.inner.maintain(&mut w)?;
        self.inner.checkpoint_locked(&mut w)?;
        Ok(())
    }

    /// Simulates a crash for in-process tests: stops the committer thread and
    /// releases the directory without committing or checkpointing, leaving the
    /// files as a killed process would (what was written but not fsynced stays
    /// in the page cache). Not for production use.
    #[doc(hidden)]
    pub fn abandon(self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        {
            let mut st = self.inner.state.lock();
            st.stop = true;
            self.inner.cv.notify_all();
        }
        if let Some(h) = self.committer.lock().take() {
            let _ = h.join();
        }
        // The lock is released when `inner` is dropped with `self`.
    }

    /// The kind recorded for a series.
    pub fn kind(&self, labels: &Labels) -> Option<MetricKind> {
        let cat = self.inner.catalog.read();
        cat.get(labels).and_then(|id| cat.entry(id)).map(|e| e.kind)
    }

    /// Series matching `matchers` with data in `[start_ms, end_ms]`
    /// (`/api/v1/series`). At least one matcher must not match the empty string.
    pub fn select(&self, matchers: &[Matcher], start_ms: i64, end_ms: i64) -> Result<Vec<Labels>> {
        require_selector(matchers)?;
        let ids = self.inner.select_ids(matchers, start_ms, end_ms);
        let cat = self.inner.catalog.read();
        Ok(ids
            .into_iter()
            .filter_map(|id| cat.entry(id).map(|e| e.labels.clone()))
            .collect())
    }

    /// Label names (`__name__` included) of the series matching `matchers`
    /// (all series if empty) with data in `[start_ms, end_ms]`, sorted
    /// (`/api/v1/labels`).
    pub fn label_names(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>> {
        let ids = self.inner.select_ids(matchers, start_ms, end_ms);
        let cat = self.inner.catalog.read();
        let mut names = BTreeSet::new();
        for id in ids {
            if let Some(e) = cat.entry(id) {
                for l in e.labels.iter() {
                    if !names.contains(&l.name) {
                        names.insert(l.name.clone());
                    }
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Values of label `name` among the series matching `matchers` (all if
    /// empty) with data in `[start_ms, end_ms]`, sorted (`/api/v1/label/<name>/values`).
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>> {
        let ids = self.inner.select_ids(matchers, start_ms, end_ms);
        let cat = self.inner.catalog.read();
        let mut values = BTreeSet::new();
        for id in ids {
            if let Some(v) = cat.entry(id).and_then(|e| e.labels.get(name))
                && !values.contains(v)
            {
                values.insert(v.to_string());
            }
        }
        Ok(values.into_iter().collect())
    }

    /// `query_range` with the tier chosen automatically.
    pub fn query_range(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        lookback_ms: i64,
    ) -> Result<QueryResult> {
        self.query_range_with(
            matchers,
            &RangeQuery {
                start_ms,
                end_ms,
                step_ms,
                lookback_ms,
                tier: TierChoice::Auto,
            },
        )
    }

    /// An instant query at `t_ms`: each matching series' value at `t_ms`.
    pub fn query(&self, matchers: &[Matcher], t_ms: i64, lookback_ms: i64) -> Result<QueryResult> {
        self.query_range_with(
            matchers,
            &RangeQuery {
                start_ms: t_ms,
                end_ms: t_ms,
                step_ms: 1,
                lookback_ms,
                tier: TierChoice::Auto,
            },
        )
    }

    /// A range query: for each series matching `matchers`, its value at
    /// `start, start + step, ..., end` with Prometheus instant-vector-selector
    /// semantics, from the tier `q.tier` selects. Limits are checked before
    /// any data is read.
    pub fn query_range_with(&self, matchers: &[Matcher], q: &RangeQuery) -> Result<QueryResult> {
        let limits = self.inner.opts.limits;
        let steps = query::steps(q).map_err(Error::InvalidQuery)?;
        if steps > limits.max_points_per_series {
            return Err(Error::TooManyPoints {
                points: steps,
                limit: limits.max_points_per_series,
            });
        }
        require_selector(matchers)?;
        let (tier, sources, selected) = {
            let cat = self.inner.catalog.read();
            let ids = cat.select(matchers);
            let head = self.inner.head.read();
            let parts = self.inner.parts.read();
            let tier = query::choose_tier(q, &parts.tier_min);
            let (from, to) = query::item_range(q, tier);
            let ids: Vec<u32> = ids
                .into_iter()
                .filter(|&id| {
                    head.series
                        .get(id as usize)
                        .is_some_and(|s| s.min_t <= to && s.last_t >= from && s.last_t != i64::MIN)
                })
                .collect();
            if ids.len() > limits.max_series {
                return Err(Error::TooManySeries {
                    series: ids.len(),
                    limit: limits.max_series,
                });
            }
            let total = ids.len() as u64 * steps;
            if total > limits.max_total_points {
                return Err(Error::QueryTooLarge {
                    points: total,
                    series: ids.len(),
                    per_series: steps,
                    limit: limits.max_total_points,
                });
            }
            let mut sources = Vec::with_capacity(ids.len());
            let tmap = &parts.tiers[tier.index()];
            let first_part = self.inner.opts.partition_start(tier, from);
            for &id in &ids {
                let Some(e) = cat.entry(id) else { continue };
                let mut disk = Vec::new();
                for p in tmap.range(first_part..=to).map(|(_, p)| p) {
                    for meta in p.chunks(id, from, to) {
                        disk.push(DiskChunk {
                            file: p.handle(),
                            meta,
                        });
                    }
                }
                let sh = &head.series[id as usize];
                let (head_bytes, acc) = if tier == Tier::Raw {
                    (
                        sh.raw
                            .as_ref()
                            .filter(|o| o.chunk.max_t() >= from)
                            .map(|o| (o.chunk.bytes().to_vec(), o.chunk.len())),
                        None,
                    )
                } else {
                    let th = &sh.tiers[tier.index() - 1];
                    (
                        th.open
                            .as_ref()
                            .filter(|o| o.max_start >= from)
                            .map(|o| (o.chunk.bytes().to_vec(), o.chunk.len())),
                        th.acc,
                    )
                };
                sources.push(Source {
                    labels: e.labels.clone(),
                    disk,
                    head_bytes,
                    acc,
                });
            }
            (tier, sources, ids.len())
        };
        let mut stats = QueryStats {
            series_selected: selected,
            ..QueryStats::default()
        };
        let (from, to) = query::item_range(q, tier);
        let evaluated: Vec<(Option<SeriesPoints>, QueryStats)> = if sources.len() >= 64 {
            let mid = sources.len() / 2;
            let (a, b) = sources.split_at(mid);
            std::thread::scope(|sc| {
                let h = sc.spawn(|| {
                    a.iter()
                        .map(|s| eval_source(s, tier, from, to, q))
                        .collect::<Vec<_>>()
                });
                let mut second: Vec<_> = b
                    .iter()
                    .map(|s| eval_source(s, tier, from, to, q))
                    .collect();
                let mut first = h.join().unwrap_or_default();
                first.append(&mut second);
                first
            })
        } else {
            sources
                .iter()
                .map(|s| eval_source(s, tier, from, to, q))
                .collect()
        };
        let mut series = Vec::new();
        for (sp, st) in evaluated {
            stats.chunks_read += st.chunks_read;
            stats.items_decoded += st.items_decoded;
            stats.corrupt_chunks += st.corrupt_chunks;
            if let Some(sp) = sp {
                series.push(sp);
            }
        }
        Ok(QueryResult {
            tier,
            series,
            stats,
        })
    }

    /// Counters and sizes.
    pub fn stats(&self) -> StoreStats {
        let w = self.inner.writer.lock();
        let mut st = StoreStats {
            series: self.inner.catalog.read().len(),
            now_ms: self.inner.head.read().now,
            ..StoreStats::default()
        };
        {
            let parts = self.inner.parts.read();
            for tier in Tier::ALL {
                st.partitions[tier.index()] = parts.tiers[tier.index()].len();
                st.partition_bytes[tier.index()] = parts.tiers[tier.index()]
                    .values()
                    .map(|p| p.size_bytes())
                    .sum();
            }
            st.tier_min_ms = parts.tier_min;
        }
        st.wal_bytes = w.wal.size_bytes();
        st.checkpoint_bytes = w.checkpoint_bytes;
        st.catalog_bytes = self.inner.catalog.read().size_bytes();
        st.disk_bytes = self.inner.disk_bytes(&w);
        st.deleted_by_age = w.deleted_by_age;
        st.deleted_by_size = w.deleted_by_size;
        st.series_dropped = w.series_dropped;
        let cs = self.inner.state.lock();
        st.durable_seq = cs.durable;
        st.last_commit_error = cs.last_error.clone();
        st
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

fn require_selector(matchers: &[Matcher]) -> Result<()> {
    if matchers.iter().all(|m| m.matches_empty()) {
        return Err(Error::EmptySelector {
            matchers: matcher::show(matchers),
        });
    }
    Ok(())
}

fn committer(inner: Arc<Inner>, interval: Duration) {
    loop {
        {
            let mut st = inner.state.lock();
            if st.stop {
                return;
            }
            let _ = inner.cv.wait_for(&mut st, interval);
            if st.stop {
                return;
            }
        }
        let result = {
            let mut w = inner.writer.lock();
            inner
                .commit_locked(&mut w)
                .and_then(|()| inner.maintain(&mut w))
        };
        inner.state.lock().last_error = result.err().map(|e| e.to_string());
    }
}

/// Decodes the chunks of one source and evaluates the query over them.
fn eval_source(
    s: &Source,
    tier: Tier,
    from: i64,
    to: i64,
    q: &RangeQuery,
) -> (Option<SeriesPoints>, QueryStats) {
    let mut st = QueryStats::default();
    let points = if tier == Tier::Raw {
        let mut ts: Vec<i64> = Vec::new();
        let mut vs: Vec<f64> = Vec::new();
        let mut push = |t: i64, v: f64| {
            if t >= from && t <= to {
                ts.push(t);
                vs.push(v);
            }
        };
        for c in &s.disk {
            st.chunks_read += 1;
            match partition::read_chunk(&c.file, &c.meta).and_then(|b| {
                chunk::decode_samples(&b).map_err(|_| Error::Corrupt {
                    path: c.file.path.clone(),
                    offset: c.meta.offset,
                    reason: "chunk does not decode".into(),
                })
            }) {
                Ok((cts, cvs)) => {
                    st.items_decoded += cts.len() as u64;
                    for (t, v) in cts.into_iter().zip(cvs) {
                        push(t, v);
                    }
                }
                Err(_) => st.corrupt_chunks += 1,
            }
        }
        if let Some((bytes, n)) = &s.head_bytes {
            st.items_decoded += u64::from(*n);
            let _ = gorilla::decode_samples(bytes, *n, &mut push);
        }
        if ts.windows(2).any(|w| w[0] >= w[1]) {
            let mut pairs: Vec<(i64, f64)> = ts.iter().copied().zip(vs.iter().copied()).collect();
            pairs.sort_by_key(|p| p.0);
            pairs.dedup_by_key(|p| p.0);
            ts = pairs.iter().map(|p| p.0).collect();
            vs = pairs.iter().map(|p| p.1).collect();
        }
        query::eval_raw(&ts, &vs, q)
    } else {
        let width = tier.width_ms();
        let mut bs: Vec<Bucket> = Vec::new();
        for c in &s.disk {
            st.chunks_read += 1;
            match partition::read_chunk(&c.file, &c.meta).and_then(|b| {
                chunk::decode_buckets(&b, width).map_err(|_| Error::Corrupt {
                    path: c.file.path.clone(),
                    offset: c.meta.offset,
                    reason: "chunk does not decode".into(),
                })
            }) {
                Ok(cbs) => {
                    st.items_decoded += cbs.len() as u64;
                    bs.extend(
                        cbs.into_iter()
                            .filter(|b| b.start_ms >= from && b.start_ms <= to),
                    );
                }
                Err(_) => st.corrupt_chunks += 1,
            }
        }
        if let Some((bytes, n)) = &s.head_bytes {
            st.items_decoded += u64::from(*n);
            let _ = gorilla::decode_buckets(bytes, *n, width, |b| {
                if b.start_ms >= from && b.start_ms <= to {
                    bs.push(b);
                }
            });
        }
        if let Some(b) = s.acc
            && b.start_ms >= from
            && b.start_ms <= to
        {
            bs.push(b);
        }
        if bs.windows(2).any(|w| w[0].start_ms >= w[1].start_ms) {
            bs.sort_by_key(|b| b.start_ms);
            bs.dedup_by_key(|b| b.start_ms);
        }
        query::eval_buckets(&bs, width, q)
    };
    let sp = (!points.is_empty()).then(|| SeriesPoints {
        labels: s.labels.clone(),
        points,
    });
    (sp, st)
}

/// Restores the head from a checkpoint, dropping what partition files
/// already hold.
fn restore_checkpoint(head: &mut Head, loaded: checkpoint::Loaded, bound: usize) {
    head.now = head.now.max(loaded.now);
    for r in loaded.series {
        if r.id as usize >= bound {
            continue;
        }
        let sh = &mut head.series[r.id as usize];
        let disk_last = sh.last_t;
        let mut c = r.head;
        if let Some(o) = &c.raw
            && o.chunk.min_t() <= disk_last
        {
            c.raw = None; // already cut and written
        }
        for (i, th) in c.tiers.iter_mut().enumerate() {
            let disk_max = sh.tiers[i].disk_max;
            if th
                .open
                .as_ref()
                .is_some_and(|o| o.chunk.min_t() <= disk_max)
            {
                th.open = None;
            }
            if th.acc.is_some_and(|b| b.start_ms <= disk_max) {
                th.acc = None;
            }
            th.disk_max = disk_max;
        }
        c.last_t = c.last_t.max(disk_last);
        c.min_t = c.min_t.min(sh.min_t);
        *sh = c;
    }
}

fn remove_tmp_files(dir: &Path, rec: &mut Recovery) -> Result<()> {
    for sub in [
        None,
        Some("raw"),
        Some("1s"),
        Some("1m"),
        Some("1h"),
        Some(wal::DIR),
    ] {
        let d = sub.map_or_else(|| dir.to_path_buf(), |s| dir.join(s));
        for e in fs::read_dir(&d).at(&d)? {
            let e = e.at(&d)?;
            let path = e.path();
            if path.to_string_lossy().ends_with(fsutil::TMP_SUFFIX) {
                let bytes = fsutil::file_len(&path);
                fs::remove_file(&path).at(&path)?;
                rec.dropped.push(Dropped {
                    file: path,
                    offset: 0,
                    bytes,
                    records: 0,
                    reason: "temporary file of an interrupted whole-file write".into(),
                    action: DropAction::Deleted,
                });
            }
        }
    }
    Ok(())
}

impl Inner {
    fn check_writable(&self, w: &Writer) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        if let Some(b) = &w.broken {
            return Err(Error::Corrupt {
                path: self.dir.clone(),
                offset: 0,
                reason: format!(
                    "the store stopped accepting writes after an I/O error ({b}); reopen it to recover"
                ),
            });
        }
        Ok(())
    }

    /// Creates a series unless the limit is reached (`None`).
    fn create_series(
        &self,
        _w: &mut Writer,
        labels: &Labels,
        kind: MetricKind,
    ) -> Result<Option<(u32, bool)>> {
        let mut cat = self.catalog.write();
        if let Some(id) = cat.get(labels) {
            return Ok(Some((id, false)));
        }
        if cat.len() >= self.opts.max_series {
            return Ok(None);
        }
        let id = cat.create(labels.clone(), kind)?;
        self.head.write().ensure(cat.id_bound());
        Ok(Some((id, true)))
    }

    fn append_all(
        &self,
        w: &mut Writer,
        items: &[(u32, i64, f64)],
        out: &mut AppendOutcome,
    ) -> Result<()> {
        let r = self
            .append_locked(w, items, true, out)
            .and_then(|()| self.maybe_close(w, false));
        if let Err(e) = &r {
            w.broken = Some(e.to_string());
        }
        w.seq += 1;
        out.seq = w.seq;
        if w.wal.buffered() > WAL_WRITE_OUT {
            w.wal.write_out()?;
        }
        r
    }

    /// The write path: head, log, and chunks cut on the way.
    fn append_locked(
        &self,
        w: &mut Writer,
        items: &[(u32, i64, f64)],
        log: bool,
        out: &mut AppendOutcome,
    ) -> Result<()> {
        let future_limit = self.opts.max_future_ms.map(|f| wall_ms().saturating_add(f));
        let raw_part = self.opts.raw.partition_ms;
        let mut cuts: Vec<Cut> = Vec::new();
        for batch in items.chunks(LOCK_BATCH) {
            {
                let mut head = self.head.write();
                // The open window moves only when the clock crosses a raw
                // partition boundary: recompute it only then.
                let mut window_for = i64::MIN;
                let mut open_from = i64::MIN;
                let mut batch_min = i64::MAX;
                for &(id, t, v) in batch {
                    if !v.is_finite() {
                        out.non_finite += 1;
                        continue;
                    }
                    if future_limit.is_some_and(|l| t > l) {
                        out.too_new += 1;
                        continue;
                    }
                    let now = head.now.max(t);
                    let p = now.div_euclid(raw_part);
                    if p != window_for {
                        window_for = p;
                        open_from = self.opts.open_from(Tier::Raw, now);
                    }
                    if t < open_from {
                        out.too_old += 1;
                        continue;
                    }
                    match head.append(&self.opts, id, t, v, &mut cuts) {
                        Appended::Ok => {
                            out.accepted += 1;
                            batch_min = batch_min.min(t);
                            if log {
                                w.wal.push(id, t, v);
                            }
                        }
                        Appended::OutOfOrder => out.out_of_order += 1,
                        Appended::Duplicate => out.duplicate += 1,
                    }
                }
                if !cuts.is_empty() || batch_min < w.min_seen {
                    let mut parts = self.parts.write();
                    self.write_cuts(&mut parts, &mut cuts)?;
                    if batch_min < w.min_seen {
                        w.min_seen = batch_min;
                        for tier in Tier::ALL {
                            let m = &mut parts.tier_min[tier.index()];
                            *m = (*m).min(tier.bucket_start(batch_min));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Appends cut chunks to their partition files (creating files as
    /// needed). Called with the head's write lock held, so a chunk is always
    /// visible to readers in exactly one place.
    fn write_cuts(&self, parts: &mut Parts, cuts: &mut Vec<Cut>) -> Result<()> {
        for c in cuts.drain(..) {
            let ti = c.tier.index();
            let p = match parts.tiers[ti].entry(c.part) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    parts.new_files[ti] = true;
                    e.insert(Partition::create(
                        &tier_dir(&self.dir, c.tier),
                        c.tier,
                        c.part,
                        c.part + self.opts.tier(c.tier).partition_ms,
                    )?)
                }
            };
            p.append(c.series, c.min_t, c.max_t, &c.bytes)?;
            parts.tier_min[ti] = parts.tier_min[ti].min(c.min_t);
        }
        Ok(())
    }

    /// Closes partitions that left the open window: cuts their head chunks
    /// and marks them closed.
    fn maybe_close(&self, w: &mut Writer, force: bool) -> Result<()> {
        let now = self.head.read().now;
        if now == i64::MIN || (!force && now < w.next_close_check) {
            return Ok(());
        }
        let mut cuts = Vec::new();
        let mut head = self.head.write();
        for tier in Tier::ALL {
            let cutoff = self.opts.open_from(tier, now);
            head.close_before(&self.opts, tier, cutoff, &mut cuts);
        }
        let mut parts = self.parts.write();
        self.write_cuts(&mut parts, &mut cuts)?;
        for tier in Tier::ALL {
            let cutoff = self.opts.open_from(tier, now);
            for p in parts.tiers[tier.index()]
                .range_mut(..cutoff)
                .map(|(_, p)| p)
            {
                p.closed = true;
            }
        }
        w.next_close_check = self.opts.partition_start(Tier::Raw, now) + self.opts.raw.partition_ms;
        Ok(())
    }

    /// fsyncs the catalog, the partition files written to and the log, in
    /// that order, without holding any lock readers take.
    fn commit_locked(&self, w: &mut Writer) -> Result<()> {
        let r = self.commit_inner(w);
        if let Err(e) = &r {
            w.broken = Some(e.to_string());
        }
        r
    }

    fn commit_inner(&self, w: &mut Writer) -> Result<()> {
        w.wal.write_out()?;
        let cat = self.catalog.write().take_dirty();
        if let Some((f, path)) = cat {
            f.sync_data().at(&path)?;
        }
        let (files, new_dirs) = {
            let mut parts = self.parts.write();
            let mut files = Vec::new();
            for t in &mut parts.tiers {
                files.extend(t.values_mut().filter_map(|p| p.take_dirty()));
            }
            (files, std::mem::take(&mut parts.new_files))
        };
        for f in files {
            f.file.sync_data().at(&f.path)?;
        }
        for tier in Tier::ALL {
            if new_dirs[tier.index()] {
                fsutil::sync_dir(&tier_dir(&self.dir, tier))?;
            }
        }
        w.wal.sync()?;
        let mut st = self.state.lock();
        st.durable = w.seq;
        self.cv.notify_all();
        Ok(())
    }

    /// Everything the store keeps on disk.
    fn disk_bytes(&self, w: &Writer) -> u64 {
        let parts = self.parts.read();
        let p: u64 = parts
            .tiers
            .iter()
            .flat_map(|t| t.values())
            .map(|p| p.size_bytes())
            .sum();
        let aside: u64 = parts.aside.iter().map(|a| a.3).sum();
        p + aside + w.wal.size_bytes() + w.checkpoint_bytes + self.catalog.read().size_bytes()
    }

    /// Closing partitions, retention by age and size, dropping series whose
    /// data is all gone, and a checkpoint when the log has grown enough.
    fn maintain(&self, w: &mut Writer) -> Result<()> {
        self.maybe_close(w, false)?;
        let now = self.head.read().now;
        if now != i64::MIN {
            let mut doomed = {
                let parts = self.parts.read();
                retention::expired(&parts.tiers, &self.opts, now)
            };
            let by_age = doomed.len() as u64;
            let aside_expired: Vec<PathBuf> = {
                let mut parts = self.parts.write();
                let opts = &self.opts;
                let mut gone = Vec::new();
                parts.aside.retain(|(tier, start, path, _)| {
                    let end = start + opts.tier(*tier).partition_ms;
                    if end <= now.saturating_sub(opts.tier(*tier).retention_ms) {
                        gone.push(path.clone());
                        false
                    } else {
                        true
                    }
                });
                gone
            };
            for p in aside_expired {
                fs::remove_file(&p).at(&p)?;
            }
            self.delete_partitions(&doomed)?;
            w.deleted_by_age += by_age;
            // Size: set-aside files go first, then the oldest partitions.
            let mut total = self.disk_bytes(w);
            if total > self.opts.max_disk_bytes {
                let aside: Vec<(PathBuf, u64)> = self
                    .parts
                    .write()
                    .aside
                    .drain(..)
                    .map(|(_, _, p, s)| (p, s))
                    .collect();
                for (p, s) in aside {
                    fs::remove_file(&p).at(&p)?;
                    total = total.saturating_sub(s);
                }
                doomed = {
                    let parts = self.parts.read();
                    retention::over_size(&parts.tiers, &self.opts, total)
                };
                w.deleted_by_size += doomed.len() as u64;
                self.delete_partitions(&doomed)?;
            }
            if by_age > 0 || !doomed.is_empty() {
                self.drop_dead_series(w)?;
            }
        }
        if w.wal.since_checkpoint() >= self.opts.checkpoint_wal_bytes {
            self.checkpoint_locked(w)?;
        }
        Ok(())
    }

    fn delete_partitions(&self, doomed: &[(Tier, i64)]) -> Result<()> {
        if doomed.is_empty() {
            return Ok(());
        }
        let mut removed = Vec::new();
        {
            let mut parts = self.parts.write();
            for &(tier, start) in doomed {
                if let Some(p) = parts.tiers[tier.index()].remove(&start) {
                    let ti = tier.index();
                    parts.tier_min[ti] = parts.tier_min[ti].max(p.end);
                    removed.push((tier, p.path.clone()));
                }
            }
        }
        let mut dirs = BTreeSet::new();
        for (tier, path) in removed {
            fs::remove_file(&path).at(&path)?;
            dirs.insert(tier);
        }
        for tier in dirs {
            fsutil::sync_dir(&tier_dir(&self.dir, tier))?;
        }
        Ok(())
    }

    /// Recomputes each series' oldest timestamp and drops from the catalog
    /// the series that have no data left anywhere.
    fn drop_dead_series(&self, w: &mut Writer) -> Result<()> {
        let bytes = {
            let mut cat = self.catalog.write();
            let mut head = self.head.write();
            let parts = self.parts.read();
            let mut min_t = vec![i64::MAX; head.series.len()];
            for p in parts.tiers.iter().flat_map(|t| t.values()) {
                for (s, m) in p.series_min() {
                    if let Some(x) = min_t.get_mut(s as usize) {
                        *x = (*x).min(m);
                    }
                }
            }
            let mut dead = Vec::new();
            for (id, s) in head.series.iter_mut().enumerate() {
                let mut m = min_t[id];
                if let Some(o) = &s.raw {
                    m = m.min(o.chunk.min_t());
                }
                for th in &s.tiers {
                    if let Some(o) = &th.open {
                        m = m.min(o.chunk.min_t());
                    }
                    if let Some(b) = &th.acc {
                        m = m.min(b.start_ms);
                    }
                }
                s.min_t = m;
                // A series that had data and has none left. (A series created
                // but never written to is kept: its reference may be in use.)
                if m == i64::MAX && s.last_t != i64::MIN && cat.entry(id as u32).is_some() {
                    dead.push(id as u32);
                }
            }
            if dead.is_empty() {
                return Ok(());
            }
            for &id in &dead {
                head.series[id as usize] = Default::default();
            }
            w.series_dropped += dead.len() as u64;
            cat.remove(&dead)
        };
        let path = self.catalog.read().path().to_path_buf();
        fsutil::write_atomic(&path, &bytes)?;
        self.catalog.write().replace_file(bytes.len() as u64)
    }

    /// Rolls the log, writes the head as a checkpoint, and deletes the log
    /// segments and checkpoint it replaces.
    fn checkpoint_locked(&self, w: &mut Writer) -> Result<()> {
        self.commit_locked(w)?;
        let seq = w.wal.roll()?;
        let bytes = checkpoint::encode(seq, &self.head.read());
        let path = checkpoint::path(&self.dir, seq);
        fsutil::write_atomic(&path, &bytes)?;
        for (s, p) in checkpoint::list(&self.dir)? {
            if s < seq {
                fs::remove_file(&p).at(&p)?;
            }
        }
        w.wal.remove_older()?;
        w.checkpoint_bytes = bytes.len() as u64;
        Ok(())
    }

    /// Ids of series matching `matchers` (all if empty) with data in `[start, end]`.
    fn select_ids(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<u32> {
        let cat = self.catalog.read();
        let ids = cat.select(matchers);
        let head = self.head.read();
        ids.into_iter()
            .filter(|&id| {
                head.series
                    .get(id as usize)
                    .is_some_and(|s| s.last_t != i64::MIN && s.min_t <= end && s.last_t >= start)
            })
            .collect()
    }
}
