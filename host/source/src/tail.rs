//! One tailed file: its descriptor (while it holds one), identity, read position and
//! framer.
//!
//! All methods block (stat, pread, mmap); the source calls them on a blocking thread.
//! A [`Tailer`] reads through its own descriptor, so a rename does not disturb it and a
//! rotated or deleted file can still be read to its end. Under the descriptor budget a
//! tailer may be closed ([`Tailer::detach`]) and reopened later ([`Tailer::attach`]):
//! its identity, offset and buffered partial line are kept meanwhile.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::budget::OpenFile;
use crate::event::{Chunk, FileCheckpoint, SourceEvent};
use crate::fingerprint::{FileKey, read_full_at};
use crate::frame::LineFramer;
use crate::mmap::{MapRead, read_mapped};
use crate::progress::Progress;
use crate::stats::SourceStats;

/// How far back [`Start::End`] looks for the last line end.
const END_SCAN_BYTES: u64 = 64 * 1024;

/// Reads of fewer bytes are copied with `pread`, larger ones through a guarded
/// memory map. A map costs an `mmap` and a `munmap` (whose TLB shootdown
/// interrupts every core running the host's threads) whatever its size: for the
/// few records a live append brings, more than copying them.
const MAP_AT_LEAST: usize = 64 * 1024;

/// Reader settings shared by the tailers of one source.
#[derive(Debug, Clone)]
pub(crate) struct TailSettings {
    pub source: String,
    pub max_chunk_bytes: usize,
    pub max_line_bytes: usize,
}

/// Where a newly keyed file starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// A checkpoint matched this file: keep its key, continue at its offset.
    Resume { key: FileKey, offset: u64 },
    /// Offset 0.
    Beginning,
    /// After the last complete line present now.
    End,
}

/// How a file found by a scan starts once it is first opened.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    /// Where to start without a matching checkpoint.
    pub start: Start,
    /// Checkpoint entries with the file's `(dev, ino)`: the one whose fingerprint
    /// matches is resumed, the others are closed.
    pub resume: Vec<FileCheckpoint>,
}

/// What the scan concluded about a tailed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Found under its path (or another matching path).
    Live,
    /// No longer matched and its path names nothing new: kept open for late writes.
    MovedAway { since: Instant },
    /// Its path names another file: read to the end, then `Rotated` + `Closed`.
    Rotated,
    /// Unlinked: read to the end, then `Closed`.
    Deleted,
}

/// Reader state of one open file.
#[derive(Debug)]
pub(crate) struct Tailer {
    /// `(dev, ino)` of the open file.
    pub id: (u64, u64),
    /// Current (or last known) path.
    pub path: Arc<Path>,
    pub fate: Fate,
    /// When bytes were last read (for closing moved-away files).
    pub last_data: Instant,
    /// When it last read bytes or was (re)opened (for closing idle files).
    pub last_active: Instant,
    /// The size and mtime seen at the last `fstat` (or scan `stat` while closed).
    pub seen: crate::files::Seen,
    /// Where the file was last opened when its path names another file (rotated).
    pub found_at: Option<Arc<Path>>,
    /// Set until the file is first opened: how it starts then.
    pub pending: Option<Pending>,
    /// The descriptor, while the file holds one of the budget.
    file: Option<OpenFile>,
    /// `None` until the file first has data (see `fingerprint`).
    key: Option<FileKey>,
    framer: LineFramer,
    /// A file that stats as empty but reads data (procfs-like): read with pread until 0.
    sizeless: bool,
    /// `(mtime, mtime_nsec)` at the last step: a change at an unchanged size means a
    /// possible same-size rewrite, so the fingerprint is checked.
    mtime: (i64, i64),
    /// Catch-up logging for large backlogs.
    progress: Progress,
    /// Offsets ahead that a read must not cross (ascending; see [`Tailer::cut_at`]).
    cuts: Vec<u64>,
}

/// Why a read was thrown away.
enum ReadFail {
    Io(io::Error),
    Rewritten,
}

impl From<io::Error> for ReadFail {
    fn from(e: io::Error) -> Self {
        ReadFail::Io(e)
    }
}

impl Tailer {
    /// A tailer for the file `id` found at `path`, not yet keyed nor opened.
    pub(crate) fn new(id: (u64, u64), path: Arc<Path>, t: &TailSettings) -> Tailer {
        let now = Instant::now();
        Tailer {
            id,
            path,
            fate: Fate::Live,
            last_data: now,
            last_active: now,
            seen: (0, (0, 0)),
            found_at: None,
            pending: None,
            file: None,
            key: None,
            framer: LineFramer::new(0, t.max_line_bytes, t.max_chunk_bytes),
            sizeless: false,
            mtime: (0, 0),
            progress: Progress::default(),
            cuts: Vec::new(),
        }
    }

    /// Makes reads end at each of `offsets` (ascending, past the start), so that no
    /// chunk spans one: the shards reading one source resume there.
    pub(crate) fn cut_at(&mut self, offsets: Vec<u64>) {
        self.cuts = offsets;
    }

    /// The first cut past `pos`, forgetting those behind.
    fn next_cut(&mut self, pos: u64) -> Option<u64> {
        let behind = self.cuts.partition_point(|c| *c <= pos);
        self.cuts.drain(..behind);
        self.cuts.first().copied()
    }

    /// The open file, if it holds a descriptor.
    pub(crate) fn file(&self) -> Option<&File> {
        self.file.as_ref().map(|f| &f.file)
    }

    /// Whether it holds a descriptor.
    pub(crate) fn is_open(&self) -> bool {
        self.file.is_some()
    }

    /// Its key, once keyed.
    pub(crate) fn key(&self) -> Option<FileKey> {
        self.key
    }

    /// Gives it the descriptor `file` (already checked to be `self.id`).
    pub(crate) fn attach(&mut self, file: OpenFile) {
        self.file = Some(file);
        self.last_active = Instant::now();
    }

    /// Closes its descriptor (returning it to the budget); position and identity stay.
    pub(crate) fn detach(&mut self) {
        self.file = None;
    }

    /// Bytes known to exist past the committed offset (the last size seen minus it).
    pub(crate) fn unread(&self) -> u64 {
        self.seen.0.saturating_sub(self.framer.committed())
    }

    /// Keys the file and announces it with `Opened` at the chosen start. `Ok(false)` if
    /// it cannot be keyed yet (no complete first line).
    pub(crate) fn begin(
        &mut self,
        start: Start,
        t: &TailSettings,
        stats: &SourceStats,
        out: &mut Vec<SourceEvent>,
    ) -> io::Result<bool> {
        let (key, offset) = match start {
            Start::Resume { key, offset } => (key, offset),
            Start::Beginning | Start::End => {
                let Some(file) = self.file() else {
                    return Ok(false);
                };
                let Some(key) = FileKey::compute(self.id.0, self.id.1, file)? else {
                    return Ok(false);
                };
                let offset = match start {
                    Start::End => end_offset(file)?,
                    _ => 0,
                };
                (key, offset)
            }
        };
        self.key = Some(key);
        self.framer = LineFramer::new(offset, t.max_line_bytes, t.max_chunk_bytes);
        stats.tailing(&t.source, &self.path, key, offset);
        out.push(SourceEvent::Opened {
            file: key,
            path: self.path.clone(),
            offset,
        });
        Ok(true)
    }

    /// Reads at most one window of new bytes and emits the whole records in it.
    /// Returns whether more may be readable right away (call again).
    pub(crate) fn step(
        &mut self,
        t: &TailSettings,
        stats: &SourceStats,
        out: &mut Vec<SourceEvent>,
    ) -> bool {
        let Some(file) = self.file() else {
            return false;
        };
        let meta = match file.metadata() {
            Ok(m) => m,
            Err(e) => {
                stats.read_error(&t.source, "fstat", &self.path, &e);
                return false;
            }
        };
        let mut size = meta.len();
        let mtime = (meta.mtime(), meta.mtime_nsec());
        self.seen = (size, mtime);
        if self.key.is_none() {
            if size == 0 {
                match self.probe_sizeless() {
                    Ok(Some(grown)) => size = grown,
                    Ok(None) => return false,
                    Err(e) => {
                        stats.read_error(&t.source, "read", &self.path, &e);
                        return false;
                    }
                }
            }
            match self.begin(Start::Beginning, t, stats, out) {
                Ok(true) => {}
                Ok(false) => return false, // first line not complete yet
                Err(e) => {
                    stats.read_error(&t.source, "fingerprint", &self.path, &e);
                    return false;
                }
            }
        }
        let key = self.key.expect("keyed above");
        let pos = self.framer.read_pos();
        if !self.sizeless {
            if size < pos {
                self.restart(size, t, stats, out);
                return true;
            }
            if size == pos {
                let touched = mtime != self.mtime;
                self.mtime = mtime;
                // The file's first bytes are read back only when it was touched:
                // most such steps follow a hint for bytes an earlier step read.
                if touched
                    && pos > 0
                    && self.file().is_some_and(|f| !key.matches(f).unwrap_or(true))
                {
                    self.restart(size, t, stats, out);
                    return true;
                }
                return false;
            }
        }
        self.mtime = mtime;
        let window = self.framer.read_window();
        let mut n = if self.sizeless {
            window
        } else {
            window.min(usize::try_from(size - pos).unwrap_or(usize::MAX))
        };
        if let Some(cut) = self.next_cut(pos) {
            n = n.min(usize::try_from(cut - pos).unwrap_or(usize::MAX));
        }
        let Some(file) = self.file.as_ref().map(|f| &f.file) else {
            return false;
        };
        let sizeless = self.sizeless;
        let mut faulted = false;
        let read = self.framer.fill(n, |dst| -> Result<usize, ReadFail> {
            let got = if sizeless || dst.len() < MAP_AT_LEAST {
                read_full_at(file, dst, pos)?
            } else {
                match read_mapped(file, pos, dst) {
                    Ok(MapRead::Copied) => dst.len(),
                    Ok(MapRead::Faulted) => {
                        faulted = true;
                        read_full_at(file, dst, pos)?
                    }
                    // No guard slot, or the file system cannot map: pread does the job.
                    Ok(MapRead::Unavailable) | Err(_) => read_full_at(file, dst, pos)?,
                }
            };
            // Checked after the read: if the file was truncated and rewritten at any
            // point before this, its first bytes differ and the read is not ours.
            if got > 0 && !sizeless && !key.matches(file)? {
                return Err(ReadFail::Rewritten);
            }
            Ok(got)
        });
        if faulted {
            stats.mmap_fault(&t.source, &self.path, pos);
        }
        let got = match read {
            Ok(got) => got,
            Err(ReadFail::Rewritten) => {
                self.restart(size, t, stats, out);
                return true;
            }
            Err(ReadFail::Io(e)) => {
                stats.read_error(&t.source, "read", &self.path, &e);
                return false;
            }
        };
        if got == 0 {
            return false; // shrank since fstat: the next step sees it
        }
        stats.bytes_read(got);
        self.last_data = Instant::now();
        self.last_active = self.last_data;
        if !self.sizeless {
            let now_pos = pos + got as u64;
            if let Some(event) = self.progress.advance(now_pos, size, self.last_data) {
                stats.catch_up(&t.source, &self.path, event);
            }
        }
        self.emit(key, t, stats, out);
        if self.sizeless {
            got == n
        } else {
            pos + (got as u64) < size
        }
    }

    /// Emits the records the framer has completed.
    fn emit(
        &mut self,
        key: FileKey,
        t: &TailSettings,
        stats: &SourceStats,
        out: &mut Vec<SourceEvent>,
    ) {
        while let Some(f) = self.framer.next_chunk() {
            stats.chunk(f.records);
            out.push(SourceEvent::Chunk(Chunk {
                file: key,
                path: self.path.clone(),
                start: f.start,
                end: f.end,
                data: f.data,
                file_size: self.seen.0.max(f.end),
            }));
        }
        for offset in self.framer.take_skipped() {
            stats.oversized_line(&t.source, &self.path, offset, t.max_line_bytes);
        }
    }

    /// The file is shorter than what was read, or rewritten: end this generation
    /// (`Truncated` + `Closed`). The next step keys the new content and starts it at 0.
    fn restart(
        &mut self,
        size: u64,
        t: &TailSettings,
        stats: &SourceStats,
        out: &mut Vec<SourceEvent>,
    ) {
        let Some(key) = self.key.take() else { return };
        self.drop_partial(t, stats);
        stats.truncated(&t.source, &self.path, key, size, self.framer.read_pos());
        out.push(SourceEvent::Truncated {
            file: key,
            path: self.path.clone(),
        });
        out.push(SourceEvent::Closed { file: key });
        self.framer = LineFramer::new(0, t.max_line_bytes, t.max_chunk_bytes);
        self.mtime = (0, 0);
    }

    /// Stops tailing: `Rotated` (if it was) and `Closed` for a keyed file, whose final
    /// position is returned.
    pub(crate) fn close(
        mut self,
        t: &TailSettings,
        stats: &SourceStats,
        out: &mut Vec<SourceEvent>,
    ) -> Option<FileCheckpoint> {
        let last = self.key.map(|file| FileCheckpoint {
            file,
            path: self.path.to_path_buf(),
            offset: self.framer.committed(),
            size: self.seen.0,
        });
        if let Some(key) = self.key {
            self.drop_partial(t, stats);
            if self.fate == Fate::Rotated {
                stats.rotated(&t.source, &self.path, key);
                out.push(SourceEvent::Rotated {
                    old: key,
                    path: self.path.clone(),
                });
            }
            out.push(SourceEvent::Closed { file: key });
        }
        stats.file_closed(&t.source, &self.path, self.key);
        self.file = None;
        last
    }

    fn drop_partial(&mut self, t: &TailSettings, stats: &SourceStats) {
        let pending = self.framer.pending_bytes();
        if pending > 0 {
            stats.partial_dropped(&t.source, &self.path, self.framer.committed(), pending);
        }
    }

    /// For a file that stats as empty: `Some(size)` if it has data after all. A real
    /// file that just grew reports its new size; one that still stats as 0 but reads
    /// bytes (procfs) becomes `sizeless`.
    fn probe_sizeless(&mut self) -> io::Result<Option<u64>> {
        let Some(file) = self.file() else {
            return Ok(None);
        };
        let mut byte = [0u8; 1];
        if file.read_at(&mut byte, 0)? == 0 {
            return Ok(None);
        }
        let size = file.metadata()?.len();
        self.sizeless = size == 0;
        Ok(Some(size))
    }
}

/// Offset just past the last `'\n'` in the file's tail (0 if the file is one partial line
/// shorter than the scan window; its end if no line end is found within the window).
fn end_offset(file: &File) -> io::Result<u64> {
    let size = file.metadata()?.len();
    let from = size.saturating_sub(END_SCAN_BYTES);
    let mut buf = vec![0u8; (size - from) as usize];
    let n = read_full_at(file, &mut buf, from)?;
    Ok(match memchr::memrchr(b'\n', &buf[..n]) {
        Some(i) => from + i as u64 + 1,
        None if from == 0 => 0,
        None => size,
    })
}
