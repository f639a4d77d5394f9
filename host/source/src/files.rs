//! The set of tailed files: the synchronous core of [`FileSource`](crate::FileSource).
//!
//! A full scan re-expands the patterns, opens files that are new, resumes checkpointed
//! ones, and decides the fate of files no longer found (rotated, deleted, moved away).
//! Reading is a separate step over a round-robin queue, bounded per call, so the async
//! shell can hand each batch on (with back-pressure) before reading more. Every method
//! here may block and runs on a blocking thread; [`FileSet::queue_paths`] does no I/O.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::debug;

use crate::config::StartAt;
use crate::discover::Globs;
use crate::event::{FileCheckpoint, SourceEvent};
use crate::stats::SourceStats;
use crate::tail::{Fate, Start, TailSettings, Tailer};
use crate::watch::DirWatcher;

/// Most read steps in one [`FileSet::read`] call (keeps a blocking call short).
const MAX_STEPS_PER_CALL: usize = 1024;

/// Most closed files whose position is remembered (see [`FileSet::remember`]).
const MAX_REMEMBERED: usize = 4096;

type Id = (u64, u64);

/// All files of one source and how to read them.
pub(crate) struct FileSet {
    pub settings: TailSettings,
    globs: Globs,
    stats: Arc<SourceStats>,
    start_at: StartAt,
    rotate_wait: Duration,
    tailers: HashMap<Id, Tailer>,
    by_path: HashMap<Arc<Path>, Id>,
    queue: VecDeque<Id>,
    /// Positions not matched to an open file: the resume checkpoints until the first
    /// scan ends, then those of closed files (see [`FileSet::remember`]).
    /// Several entries may share an inode (a stale one next to the current generation):
    /// the one whose fingerprint matches wins.
    resume: HashMap<Id, Vec<FileCheckpoint>>,
    first_scan_done: bool,
    /// A rotated file was closed: its path's new file can be opened now.
    rescan_needed: bool,
    /// Declared last: dropped (watching stops) after the files are closed.
    watcher: DirWatcher,
}

impl FileSet {
    /// A file set over `globs`; nothing is opened until the first [`FileSet::scan`].
    pub(crate) fn new(
        settings: TailSettings,
        globs: Globs,
        stats: Arc<SourceStats>,
        start_at: StartAt,
        rotate_wait: Duration,
        resume: Vec<FileCheckpoint>,
        watcher: DirWatcher,
    ) -> FileSet {
        FileSet {
            settings,
            globs,
            stats,
            start_at,
            rotate_wait,
            tailers: HashMap::new(),
            by_path: HashMap::new(),
            queue: VecDeque::new(),
            resume: resume.into_iter().fold(HashMap::new(), |mut m, c| {
                m.entry((c.file.dev(), c.file.ino()))
                    .or_insert_with(Vec::new)
                    .push(c);
                m
            }),
            first_scan_done: false,
            rescan_needed: false,
            watcher,
        }
    }

    /// Whether reads are queued.
    pub(crate) fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Whether a scan is owed (a rotated file was closed).
    pub(crate) fn rescan_needed(&self) -> bool {
        self.rescan_needed
    }

    /// Queues the tailed files among `paths`; returns whether some path is unknown but
    /// matches the patterns (then a full scan is needed). No I/O.
    pub(crate) fn queue_paths<'a>(&mut self, paths: impl IntoIterator<Item = &'a PathBuf>) -> bool {
        let mut unknown = false;
        for path in paths {
            match self.by_path.get(path.as_path()) {
                Some(&id) => self.enqueue(id),
                None => unknown |= self.globs.matches(path),
            }
        }
        unknown
    }

    /// Full reconcile: re-expands the patterns and re-checks every file.
    pub(crate) fn scan(&mut self, out: &mut Vec<SourceEvent>) {
        self.rescan_needed = false;
        self.watcher.refresh();
        let (paths, problems) = self.globs.expand();
        for p in problems {
            debug!(
                source = self.settings.source,
                problem = p,
                "glob expansion skipped an entry"
            );
        }
        let mut found: HashMap<Id, PathBuf> = HashMap::new();
        for path in paths {
            match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => {
                    found.entry((m.dev(), m.ino())).or_insert(path);
                }
                Ok(_) => {} // directories, FIFOs, devices: not tailed
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => self
                    .stats
                    .read_error(&self.settings.source, "stat", &path, &e),
            }
        }
        let now = Instant::now();
        for (id, t) in &mut self.tailers {
            match found.remove(id) {
                Some(path) => {
                    if *t.path != *path {
                        t.path = path.into(); // renamed within the patterns
                    }
                    t.fate = Fate::Live;
                }
                None => t.fate = judge_missing(t, now),
            }
        }
        let ids: Vec<Id> = self.tailers.keys().copied().collect();
        ids.into_iter().for_each(|id| self.enqueue(id));
        let mut new: Vec<(Id, PathBuf)> = found.into_iter().collect();
        new.sort_by(|a, b| a.1.cmp(&b.1));
        for (id, path) in new {
            let waiting = self
                .tailers
                .values()
                .any(|t| t.fate == Fate::Rotated && *t.path == *path);
            if !waiting {
                self.open(id, path, out); // else: opened once the rotated file is drained
            }
        }
        if !self.first_scan_done {
            // Checkpointed files of ours that are gone: let the pipeline drop their
            // offsets. Entries whose path our patterns never matched belong to another
            // source sharing the checkpoint: not ours to close.
            self.first_scan_done = true;
            for cp in self.resume.drain().flat_map(|(_, cps)| cps) {
                if self.globs.matches(&cp.path) {
                    out.push(SourceEvent::Closed { file: cp.file });
                }
            }
        }
        self.reindex();
    }

    /// Reads queued files round-robin until about `budget_bytes` were read.
    pub(crate) fn read(&mut self, budget_bytes: u64, out: &mut Vec<SourceEvent>) {
        let start = self.stats.bytes_read_total();
        for _ in 0..MAX_STEPS_PER_CALL {
            if self.stats.bytes_read_total() - start >= budget_bytes {
                break;
            }
            let Some(id) = self.queue.pop_front() else {
                break;
            };
            let Some(t) = self.tailers.get_mut(&id) else {
                continue;
            };
            t.queued = false;
            if t.step(&self.settings, &self.stats, out) {
                self.enqueue(id);
                continue;
            }
            let done = match t.fate {
                Fate::Live => false,
                Fate::Rotated | Fate::Deleted => true,
                Fate::MovedAway { since } => {
                    since.elapsed() >= self.rotate_wait && t.last_data.elapsed() >= self.rotate_wait
                }
            };
            if done {
                let t = self.tailers.remove(&id).expect("present");
                self.rescan_needed |= t.fate == Fate::Rotated;
                if let Some(cp) = t.close(&self.settings, &self.stats, out) {
                    self.remember(cp);
                }
                self.reindex();
            }
        }
    }

    /// Keeps a closed file's position: should it be found again (moved back into the
    /// patterns), it resumes there instead of being read again from the start.
    fn remember(&mut self, cp: FileCheckpoint) {
        if self.resume.len() >= MAX_REMEMBERED {
            let evict = self.resume.keys().next().copied();
            evict.map(|id| self.resume.remove(&id));
        }
        self.resume
            .entry((cp.file.dev(), cp.file.ino()))
            .or_default()
            .push(cp);
    }

    fn enqueue(&mut self, id: Id) {
        if let Some(t) = self.tailers.get_mut(&id)
            && !t.queued
        {
            t.queued = true;
            self.queue.push_back(id);
        }
    }

    fn reindex(&mut self) {
        self.by_path = self
            .tailers
            .iter()
            .map(|(&id, t)| (t.path.clone(), id))
            .collect();
    }

    /// Opens a newly found file and keys it if it has data.
    fn open(&mut self, id: Id, path: PathBuf, out: &mut Vec<SourceEvent>) {
        let source = self.settings.source.clone();
        let file = match open_nonblocking(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(e) => return self.stats.read_error(&source, "open", &path, &e),
        };
        let meta = match file.metadata() {
            Ok(m) if m.is_file() && (m.dev(), m.ino()) == id => m,
            Ok(_) => return, // replaced between stat and open: the next scan sees it
            Err(e) => return self.stats.read_error(&source, "fstat", &path, &e),
        };
        let mut t = Tailer::new(id, path.into(), file, &self.settings);
        self.stats.file_opened();
        let mut start = if self.first_scan_done {
            Start::Beginning
        } else {
            match self.start_at {
                StartAt::Beginning => Start::Beginning,
                StartAt::End => Start::End,
            }
        };
        let mut matched = None;
        for cp in self.resume.remove(&id).unwrap_or_default() {
            if matched.is_none() && cp.file.matches(t.file()).unwrap_or(false) {
                matched = Some(cp);
            } else {
                // A stale entry, or another file under a reused inode: that one is gone.
                out.push(SourceEvent::Closed { file: cp.file });
            }
        }
        if let Some(cp) = matched {
            if cp.offset <= meta.len() {
                start = Start::Resume {
                    key: cp.file,
                    offset: cp.offset,
                };
            } else {
                // Same first bytes, but shorter than the offset: truncated while down.
                self.stats
                    .truncated(&source, &t.path, cp.file, meta.len(), cp.offset);
                out.push(SourceEvent::Truncated {
                    file: cp.file,
                    path: t.path.clone(),
                });
                out.push(SourceEvent::Closed { file: cp.file });
                start = Start::Beginning;
            }
        }
        let has_data = meta.len() > 0 || matches!(start, Start::Resume { .. });
        if has_data {
            // Not keyed now (no complete first line, or an error): the next step keys it
            // from the beginning once it can.
            if let Err(e) = t.begin(start, &self.settings, &self.stats, out) {
                self.stats.read_error(&source, "fingerprint", &t.path, &e);
            }
        }
        self.tailers.insert(id, t);
        self.enqueue(id);
    }
}

impl Drop for FileSet {
    fn drop(&mut self) {
        self.stats.files_dropped(self.tailers.len());
    }
}

/// The fate of a tailed file that the patterns no longer find.
fn judge_missing(t: &Tailer, now: Instant) -> Fate {
    match t.fate {
        Fate::Rotated | Fate::Deleted => return t.fate,
        Fate::Live | Fate::MovedAway { .. } => {}
    }
    // Its path names another file (renamed or deleted, then re-created): rotated.
    let replaced =
        std::fs::metadata(&t.path).is_ok_and(|m| m.is_file() && (m.dev(), m.ino()) != t.id);
    if replaced {
        return Fate::Rotated;
    }
    if t.file().metadata().is_ok_and(|m| m.nlink() == 0) {
        return Fate::Deleted;
    }
    match t.fate {
        Fate::MovedAway { since } => Fate::MovedAway { since },
        _ => Fate::MovedAway { since: now },
    }
}

/// Opens for reading without blocking on a FIFO that slipped past the scan.
fn open_nonblocking(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}
