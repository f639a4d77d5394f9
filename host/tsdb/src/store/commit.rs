//! Durability: group commit, waiting for it, closing, the committer thread,
//! and checkpoints.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Inner, Store, Writer, tier_dir};
use crate::checkpoint::{self, Encoder};
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::partition::PartFile;
use crate::tier::Tier;

/// How many series of the head a live checkpoint encodes at a time (about a
/// millisecond's copy; an append waits for one piece at most).
const HEAD_PIECE: usize = 1024;

impl Store {
    /// Group commit: makes every append so far durable (catalog, write-ahead
    /// log, chunks, each fsynced), then runs due maintenance (closing
    /// partitions, retention, checkpoint). Returns the durable sequence.
    pub fn commit(&self) -> Result<u64> {
        let seq = self.inner.commit_live(true)?;
        let checkpoint_due = self.inner.maintain(&mut self.inner.writer.lock())?;
        if checkpoint_due {
            self.inner.checkpoint()?;
        }
        Ok(seq)
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

    pub(super) fn shutdown(&self) -> Result<()> {
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
}

/// The committer thread: commits and maintains every `interval` until stopped.
pub(super) fn committer(inner: Arc<Inner>, interval: Duration) {
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
        let result = inner
            .commit_live(false)
            .and_then(|_| inner.maintain(&mut inner.writer.lock()));
        let result = match result {
            Ok(true) => inner.checkpoint(),
            other => other.map(drop),
        };
        inner.state.lock().last_error = result.err().map(|e| e.to_string());
    }
}

impl Inner {
    /// fsyncs the catalog, the log and the partition files written to, in
    /// that order, under the writer's lock (at open, close and a checkpoint's
    /// roll). The log before the chunks: a power loss in between leaves
    /// samples the log replays, never chunks whose samples the downsampled
    /// tiers cannot get back from it.
    pub(super) fn commit_locked(&self, w: &mut Writer) -> Result<()> {
        self.take_commit(w)
            .and_then(|c| self.sync_commit(c))
            .inspect_err(|e| w.broken = Some(e.to_string()))
            .map(drop)
    }

    /// A commit while the store is written to (the committer thread's, or
    /// [`Store::commit`]'s): the log's buffer written out and the files to
    /// sync taken under the writer's lock, then fdatasynced in the same order
    /// without it. At 500,000 samples/s the log's fdatasync took 4-32 ms each
    /// second (125 ms once) that every append waited for; appends now go on
    /// meanwhile (into the page cache, made durable by the next commit). One
    /// such commit at a time (`committing`). Returns the sequence made
    /// durable.
    pub(super) fn commit_live(&self, refuse_when_broken: bool) -> Result<u64> {
        let _one = self.committing.lock();
        let commit = {
            let mut w = self.writer.lock();
            if refuse_when_broken {
                self.check_writable(&w)?;
            }
            self.take_commit(&mut w)
                .inspect_err(|e| w.broken = Some(e.to_string()))?
        };
        self.sync_commit(commit)
            .inspect_err(|e| self.writer.lock().broken = Some(e.to_string()))
    }

    /// Syncs `commit` and marks its appends durable; returns its sequence.
    fn sync_commit(&self, commit: Commit) -> Result<u64> {
        let seq = commit.sync()?;
        let mut st = self.state.lock();
        st.durable = st.durable.max(seq);
        self.cv.notify_all();
        Ok(seq)
    }

    /// Writes the log's buffer out and takes what a commit must sync: every
    /// append so far.
    fn take_commit(&self, w: &mut Writer) -> Result<Commit> {
        w.wal.write_out()?;
        let catalog = self.catalog.write().take_dirty();
        let (files, new_dirs) = {
            let mut parts = self.parts.write();
            let mut files = Vec::new();
            for p in parts.tiers.iter_mut().flat_map(|t| t.values_mut()) {
                files.extend(p.take_dirty()?);
            }
            (files, std::mem::take(&mut parts.new_files))
        };
        let new_dirs = Tier::ALL
            .into_iter()
            .filter(|t| new_dirs[t.index()])
            .map(|t| tier_dir(&self.dir, t))
            .collect();
        Ok(Commit {
            seq: w.seq,
            catalog,
            log: w.wal.file(),
            files,
            new_dirs,
        })
    }

    /// Commits, rolls the log, writes the head as it is at the roll as the
    /// checkpoint of the new segment, and deletes the log segments and
    /// checkpoint it replaces, all under the writer's lock (at open and close,
    /// when nothing else writes).
    pub(super) fn checkpoint_locked(&self, w: &mut Writer) -> Result<()> {
        self.commit_locked(w)?;
        let seq = w.wal.roll()?;
        let bytes = checkpoint::encode(seq, &self.head.read());
        fsutil::write_atomic(&checkpoint::path(&self.dir, seq), &bytes)?;
        self.take_replaced(w, seq, bytes.len() as u64)?.remove()
    }

    /// A checkpoint while the store is written to, run by a caller that has
    /// just committed (the committer thread, [`Store::commit`]). The log is
    /// rolled under the writer's lock (syncing what was appended since that
    /// commit); the head is then encoded a piece at a time,
    /// each under the head's read lock only, so that appends go on between the
    /// pieces (each series as it is when its piece is encoded: at or after the
    /// roll, which is what the log's older segments need). Encoded whole under
    /// the writer's lock after a commit there, the head's copy and the syncs
    /// held every append for 22-40 ms at 50,000 series. What appends cut from
    /// the head into partition files meanwhile, and the series they added, are
    /// committed before the file is written, and the file written and fsynced
    /// without the lock; then what it replaces is forgotten under the lock
    /// again and deleted without it (a 64 MiB segment's deletion took 37-39 ms
    /// that the writer waited for). One checkpoint at a time; a second caller
    /// finds the log rolled and has nothing to do.
    pub(super) fn checkpoint(&self) -> Result<()> {
        let _one = self.checkpointing.lock();
        {
            let w = self.writer.lock();
            self.check_writable(&w)?;
            if w.wal.since_checkpoint() < self.opts.checkpoint_wal_bytes {
                return Ok(());
            }
        }
        let bound = self.head_bound();
        let (seq, mut encoder) = {
            let mut w = self.writer.lock();
            let seq = w.wal.roll()?;
            (seq, Encoder::new(seq, self.head.read().now, bound))
        };
        while !encoder.series(&self.head.read(), HEAD_PIECE) {}
        // Chunks cut while the head was encoded left it for partition files,
        // and series added meanwhile are in the catalog: both durable before
        // a checkpoint without them replaces the log segments that hold them.
        self.commit_live(true)?;
        let bytes = encoder.finish();
        fsutil::write_atomic(&checkpoint::path(&self.dir, seq), &bytes)?;
        let replaced = self.take_replaced(&mut self.writer.lock(), seq, bytes.len() as u64)?;
        // Only a checkpoint rolls the log, and this one holds `checkpointing`:
        // nothing else deletes or needs these files meanwhile.
        replaced.remove()
    }

    /// [`checkpoint::encoded_bound`] of the whole head, a piece at a time
    /// under its read lock.
    fn head_bound(&self) -> (usize, usize) {
        let (mut live, mut bytes, mut from) = (0, 0, 0);
        loop {
            let head = self.head.read();
            let (l, b) = checkpoint::encoded_bound(&head, from..from + HEAD_PIECE);
            live += l;
            bytes += b;
            from += HEAD_PIECE;
            if from >= head.series.len() {
                return (live, bytes);
            }
        }
    }

    /// The checkpoints and log segments older than the checkpoint of segment
    /// `seq`, now on disk, no longer counted by the writer. Segment `seq` is
    /// still the log's current one: only a checkpoint rolls the log, one at a
    /// time.
    fn take_replaced(&self, w: &mut Writer, seq: u64, bytes: u64) -> Result<Replaced> {
        let checkpoints = checkpoint::list(&self.dir)?
            .into_iter()
            .filter(|(s, _)| *s < seq)
            .map(|(_, path)| path)
            .collect();
        let segments = w.wal.take_older()?;
        w.checkpoint_bytes = bytes;
        Ok(Replaced {
            checkpoints,
            segments,
        })
    }
}

/// Files a checkpoint replaced, to be deleted.
struct Replaced {
    checkpoints: Vec<PathBuf>,
    segments: Vec<PathBuf>,
}

impl Replaced {
    /// Deletes the older checkpoints, then the log segments they and the new
    /// one replaced (a crash in between leaves segments that the next open
    /// finds older than its checkpoint and deletes).
    fn remove(self) -> Result<()> {
        fsutil::remove_all(&self.checkpoints)?;
        fsutil::remove_all(&self.segments)
    }
}

/// What one commit makes durable, taken under the writer's lock.
struct Commit {
    /// The appends it covers.
    seq: u64,
    catalog: Option<(Arc<File>, PathBuf)>,
    log: (Arc<File>, PathBuf),
    files: Vec<Arc<PartFile>>,
    /// Tier directories partition files were created in.
    new_dirs: Vec<PathBuf>,
}

impl Commit {
    /// fdatasyncs the catalog, the log, the partition files and the new
    /// directories, in that order; returns the sequence now durable.
    fn sync(self) -> Result<u64> {
        if let Some((file, path)) = &self.catalog {
            file.sync_data().at(path)?;
        }
        let (log, path) = &self.log;
        log.sync_data().at(path)?;
        for f in &self.files {
            f.file.sync_data().at(&f.path)?;
        }
        for dir in &self.new_dirs {
            fsutil::sync_dir(dir)?;
        }
        Ok(self.seq)
    }
}
