//! The set of tailed files: the synchronous core of [`FileSource`](crate::FileSource).
//!
//! A full scan re-expands the patterns, tracks files that are new, notices files that
//! grew while closed, decides the fate of files no longer found (rotated, deleted,
//! moved away), closes idle files, and, once, looks for checkpointed files renamed
//! while the source was stopped. Nothing is opened by the scan: files are opened when
//! served (see `service`), under the descriptor budget. Every method here may block
//! and runs on a blocking thread; [`FileSet::queue_paths`] does no I/O.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::debug;

use crate::budget::Budget;
use crate::config::StartAt;
use crate::discover::Globs;
use crate::event::{FileCheckpoint, SourceEvent};
use crate::fingerprint::FileKey;
use crate::locate::locate;
use crate::queue::FairQueue;
use crate::stats::SourceStats;
use crate::tail::{Fate, Pending, Start, TailSettings, Tailer};
use crate::watch::{DirWatcher, HintState};

/// Most closed files whose position is remembered (see [`FileSet::remember`]).
const MAX_REMEMBERED: usize = 4096;

pub(crate) type Id = (u64, u64);

/// A file's size and `(mtime, mtime_nsec)`, as seen by `stat`.
pub(crate) type Seen = (u64, (i64, i64));

/// Files matched by a scan: where each was found and what it looked like.
type Found = HashMap<Id, (PathBuf, Seen)>;

/// How the files of a source are opened and closed.
#[derive(Debug)]
pub(crate) struct OpenPolicy {
    /// Where files found by the first scan start without a checkpoint.
    pub start_at: StartAt,
    /// How long a file moved out of the patterns stays open (see the config).
    pub rotate_wait: Duration,
    /// A file that read nothing for this long is closed (reopened when it grows).
    pub idle_close: Duration,
    /// The descriptor budget.
    pub budget: Budget,
}

/// All files of one source and how to read them.
pub(crate) struct FileSet {
    pub settings: TailSettings,
    pub(crate) globs: Globs,
    pub(crate) stats: Arc<SourceStats>,
    pub(crate) policy: OpenPolicy,
    pub(crate) tailers: HashMap<Id, Tailer>,
    by_path: HashMap<Arc<Path>, Id>,
    pub(crate) queue: FairQueue<Id>,
    /// Closed files whose last open failed for a reason other than the budget: the
    /// next scan queues them again.
    pub(crate) retry: HashSet<Id>,
    /// Positions not matched to a tailed file: the resume checkpoints until the first
    /// scan ends, then those of closed files (see [`FileSet::remember`]).
    /// Several entries may share an inode (a stale one next to the current generation):
    /// the one whose fingerprint matches wins.
    resume: HashMap<Id, Vec<FileCheckpoint>>,
    /// Per resumed file: offsets its reads end at (see [`FileSet::with_cuts`]).
    pub(crate) cuts: HashMap<FileKey, Vec<u64>>,
    /// Resumed files shorter than some of those offsets, with their size (see
    /// [`FileSet::take_shorter`]).
    pub(crate) shorter: Vec<(FileKey, u64)>,
    first_scan_done: bool,
    /// A rotated file was closed: its path's new file can be tracked now.
    pub(crate) rescan_needed: bool,
    /// Declared last: dropped (watching stops) after the files are closed.
    watcher: DirWatcher,
}

impl FileSet {
    /// A file set over `globs`; nothing is opened until files are served.
    pub(crate) fn new(
        settings: TailSettings,
        globs: Globs,
        stats: Arc<SourceStats>,
        policy: OpenPolicy,
        resume: Vec<FileCheckpoint>,
        watcher: DirWatcher,
    ) -> FileSet {
        FileSet {
            settings,
            globs,
            stats,
            policy,
            tailers: HashMap::new(),
            by_path: HashMap::new(),
            queue: FairQueue::default(),
            retry: HashSet::new(),
            resume: resume.into_iter().fold(HashMap::new(), |mut m, c| {
                m.entry((c.file.dev(), c.file.ino()))
                    .or_insert_with(Vec::new)
                    .push(c);
                m
            }),
            cuts: HashMap::new(),
            shorter: Vec::new(),
            first_scan_done: false,
            rescan_needed: false,
            watcher,
        }
    }

    /// Makes the reads of each resumed file end at these offsets (ascending), so
    /// that no chunk spans one: where the readers of a shared source resume.
    pub(crate) fn with_cuts(mut self, cuts: HashMap<FileKey, Vec<u64>>) -> FileSet {
        self.cuts = cuts;
        self
    }

    /// The resumed files found shorter than one of their cuts since the last
    /// call, with their size: a reader resuming past that size would have taken
    /// the file as truncated while it was down, so it must read on by itself.
    pub(crate) fn take_shorter(&mut self) -> Vec<(FileKey, u64)> {
        std::mem::take(&mut self.shorter)
    }

    /// Whether files are ready to be served.
    pub(crate) fn has_queued(&self) -> bool {
        self.queue.has_ready()
    }

    /// Whether a scan is owed (a rotated file was closed).
    pub(crate) fn rescan_needed(&self) -> bool {
        self.rescan_needed
    }

    /// Takes what the watcher saw since the last call (see [`DirWatcher::take`]).
    pub(crate) fn take_hints(&mut self) -> HintState {
        self.watcher.take()
    }

    /// Waits until the watcher sees something (see [`DirWatcher::changed`]).
    pub(crate) async fn changed(&mut self) {
        self.watcher.changed().await;
    }

    /// Queues the tailed files among `paths`; returns whether some path is unknown but
    /// matches the patterns (then a full scan is needed). No I/O.
    pub(crate) fn queue_paths<'a>(&mut self, paths: impl IntoIterator<Item = &'a PathBuf>) -> bool {
        let mut unknown = false;
        for path in paths {
            match self.by_path.get(path.as_path()) {
                Some(&id) => self.queue.push_ready(id),
                None => unknown |= self.globs.matches(path),
            }
        }
        unknown
    }

    /// Full reconcile: re-expands the patterns and re-checks every file.
    pub(crate) fn scan(&mut self, out: &mut Vec<SourceEvent>) {
        self.rescan_needed = false;
        self.watcher.refresh();
        let found = self.expand();
        let mut found = self.recheck_tracked(found);
        let mut new: Vec<(Id, PathBuf)> = found.drain().map(|(id, (p, _))| (id, p)).collect();
        new.sort_by(|a, b| a.1.cmp(&b.1));
        let start = if self.first_scan_done {
            Start::Beginning
        } else {
            match self.policy.start_at {
                StartAt::Beginning => Start::Beginning,
                StartAt::End => Start::End,
            }
        };
        let pending: Vec<(Id, PathBuf, Pending)> = new
            .into_iter()
            .map(|(id, path)| {
                let resume = self.resume.remove(&id).unwrap_or_default();
                (id, path, Pending { start, resume })
            })
            .collect();
        if !self.first_scan_done {
            self.first_scan_done = true;
            self.find_renamed_checkpoints(out);
        }
        for (id, path, pending) in pending {
            let waiting = self
                .tailers
                .values()
                .any(|t| t.fate == Fate::Rotated && *t.path == *path);
            if waiting {
                // Tracked once the rotated file is drained; keep what it resumes from.
                self.resume.entry(id).or_default().extend(pending.resume);
                continue;
            }
            let mut t = Tailer::new(id, path.into(), &self.settings);
            t.pending = Some(pending);
            self.tailers.insert(id, t);
            self.queue.push_ready(id);
        }
        self.reindex();
        self.promote(out);
        self.publish_gauges();
    }

    /// Every regular file the patterns match now, by `(dev, ino)`, with its size and mtime.
    fn expand(&self) -> Found {
        let (paths, problems) = self.globs.expand();
        for p in problems {
            debug!(
                source = self.settings.source,
                problem = p,
                "glob expansion skipped an entry"
            );
        }
        let mut found = HashMap::new();
        for path in paths {
            match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => {
                    let seen = (m.len(), (m.mtime(), m.mtime_nsec()));
                    found.entry((m.dev(), m.ino())).or_insert((path, seen));
                }
                Ok(_) => {} // directories, FIFOs, devices: not tailed
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => self
                    .stats
                    .read_error(&self.settings.source, "stat", &path, &e),
            }
        }
        found
    }

    /// Updates the tracked files from `found` (returning the files that are new), closes
    /// idle ones and queues those with work: open files (a cheap `fstat` tells), closed
    /// files that changed since last seen or are no longer found, and failed opens.
    fn recheck_tracked(&mut self, mut found: Found) -> Found {
        let now = Instant::now();
        let mut queue = Vec::new();
        for (id, t) in &mut self.tailers {
            let changed = match found.remove(id) {
                Some((path, seen)) => {
                    if *t.path != *path {
                        t.path = path.into(); // renamed within the patterns
                        t.found_at = None;
                    }
                    t.fate = Fate::Live;
                    seen != t.seen
                }
                None => {
                    t.fate = judge_missing(t, now);
                    true
                }
            };
            let idle = t.is_open()
                && t.fate == Fate::Live
                && !self.queue.contains(*id)
                && t.last_active.elapsed() >= self.policy.idle_close;
            if idle {
                t.detach();
                self.stats.idle_closed(&self.settings.source, &t.path);
            } else if t.is_open() || changed || self.retry.contains(id) {
                queue.push(*id);
            }
        }
        self.retry.clear();
        queue.into_iter().for_each(|id| self.queue.push_ready(id));
        found
    }

    /// Checkpointed files not found by the first scan: renamed within the watched
    /// directories (rotated while the source was stopped), they are tracked at their
    /// new place and read first; really gone, they are reported and closed. Entries
    /// whose path our patterns never matched belong to another source sharing the
    /// checkpoint: not ours.
    fn find_renamed_checkpoints(&mut self, out: &mut Vec<SourceEvent>) {
        let ours: Vec<(Id, Vec<FileCheckpoint>)> = self
            .resume
            .drain()
            .filter_map(|(id, cps)| {
                let cps: Vec<_> = cps
                    .into_iter()
                    .filter(|cp| self.globs.matches(&cp.path))
                    .collect();
                (!cps.is_empty()).then_some((id, cps))
            })
            .collect();
        let wanted: HashSet<Id> = ours.iter().map(|(id, _)| *id).collect();
        let mut located = locate(self.globs.roots(), &wanted);
        for (id, cps) in ours {
            let Some(at) = located.remove(&id) else {
                for cp in cps {
                    let unread = cp.size.saturating_sub(cp.offset);
                    self.stats
                        .gone(&self.settings.source, &cp.path, cp.file, unread);
                    out.push(SourceEvent::Closed { file: cp.file });
                }
                continue;
            };
            // Tracked under its checkpointed path, so that a new file there waits
            // until this one is drained.
            let path: Arc<Path> = cps[0].path.clone().into();
            let replaced =
                std::fs::metadata(&path).is_ok_and(|m| m.is_file() && (m.dev(), m.ino()) != id);
            let unread = cps.iter().map(|c| c.size.saturating_sub(c.offset)).max();
            self.stats
                .found_renamed(&self.settings.source, &path, &at, unread.unwrap_or(0));
            let mut t = Tailer::new(id, path, &self.settings);
            t.found_at = Some(at.into());
            t.fate = if replaced {
                Fate::Rotated
            } else {
                Fate::MovedAway {
                    since: Instant::now(),
                }
            };
            t.pending = Some(Pending {
                start: Start::Beginning,
                resume: cps,
            });
            self.tailers.insert(id, t);
            self.queue.push_ready(id);
        }
    }

    /// Keeps a closed file's position: should it be found again (moved back into the
    /// patterns), it resumes there instead of being read again from the start.
    pub(crate) fn remember(&mut self, cp: FileCheckpoint) {
        if self.resume.len() >= MAX_REMEMBERED {
            let evict = self.resume.keys().next().copied();
            evict.map(|id| self.resume.remove(&id));
        }
        self.resume
            .entry((cp.file.dev(), cp.file.ino()))
            .or_default()
            .push(cp);
    }

    pub(crate) fn reindex(&mut self) {
        self.by_path = self
            .tailers
            .iter()
            .map(|(&id, t)| (t.path.clone(), id))
            .collect();
    }

    /// Copies the queue's state into the stats gauges.
    pub(crate) fn publish_gauges(&self) {
        self.stats
            .set_queue(self.queue.waiting_len(), self.tailers.len());
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
    // A closed file cannot be asked; serving it finds out where it went (or that it
    // is gone).
    if t.file()
        .is_some_and(|f| f.metadata().is_ok_and(|m| m.nlink() == 0))
    {
        return Fate::Deleted;
    }
    match t.fate {
        Fate::MovedAway { since } => Fate::MovedAway { since },
        _ => Fate::MovedAway { since: now },
    }
}

/// Opens for reading without blocking on a FIFO that slipped past the scan, and
/// without updating the file's access time where the host may (it owns the file):
/// a file being appended to is newer than its access time, so with `relatime`
/// every read wrote the inode (a journaled metadata write per read). Files of
/// other owners refuse `O_NOATIME` (`EPERM`) and are opened without it.
pub(crate) fn open_nonblocking(path: &Path) -> io::Result<File> {
    let open = |flags| OpenOptions::new().read(true).custom_flags(flags).open(path);
    match open(libc::O_NONBLOCK | libc::O_NOATIME) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(libc::O_NONBLOCK),
        opened => opened,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::time::{Duration, SystemTime};

    use super::*;

    #[test]
    fn reading_a_tailed_file_leaves_its_access_time_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("feed.jsonl");
        std::fs::write(&path, "{\"a\":1}\n").unwrap();
        // Accessed long before its last write: a `relatime` mount updates the
        // access time at the next read (a `noatime` mount never does).
        let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_times(std::fs::FileTimes::new().set_accessed(long_ago))
            .unwrap();

        let mut text = String::new();
        open_nonblocking(&path)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();

        assert_eq!(text, "{\"a\":1}\n");
        let accessed = std::fs::metadata(&path).unwrap().accessed().unwrap();
        assert_eq!(accessed, long_ago, "the read wrote the file's access time");
    }
}
