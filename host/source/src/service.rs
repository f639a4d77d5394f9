//! Serving the queued files of a [`FileSet`]: opening them under the descriptor budget,
//! reading them round robin, handing descriptors on fairly, and closing them.
//!
//! A closed file is reopened at the place it was last seen (its path, or where it was
//! found after a rename) and must still be the same `(dev, inode)`; otherwise the
//! watched directories are searched for it. Not found anywhere, it is gone: what is
//! known to be unread is reported, and it is closed. `EMFILE`/`ENFILE` on open is not
//! "gone": the file waits for a descriptor like one over the budget, and is retried.

use std::collections::HashSet;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use tracing::debug;

use crate::budget::Permit;
use crate::event::SourceEvent;
use crate::files::{FileSet, Id, open_nonblocking};
use crate::locate::locate;
use crate::tail::{Fate, Pending, Start, Tailer};

/// Most read steps in one [`FileSet::read`] call (so that hints and cancellation are
/// looked at between calls).
const MAX_STEPS_PER_CALL: usize = 1024;

/// The outcome of trying to open a closed file.
enum Reopen {
    /// It holds a descriptor now.
    Open,
    /// No descriptor to be had now (budget, or the system's limit): it waits.
    Wait,
    /// It could not be opened for another reason: retried at the next scan.
    Later,
    /// It is gone (and was closed) or no longer tracked.
    Gone,
}

impl FileSet {
    /// Reads queued files round robin until about `budget_bytes` were read.
    pub(crate) fn read(&mut self, budget_bytes: u64, out: &mut Vec<SourceEvent>) {
        let start = self.stats.bytes_read_total();
        for _ in 0..MAX_STEPS_PER_CALL {
            if self.stats.bytes_read_total() - start >= budget_bytes {
                break;
            }
            let Some(id) = self.queue.pop_ready() else {
                break;
            };
            let Some(t) = self.tailers.get(&id) else {
                continue;
            };
            if !t.is_open() {
                if self.queue.waiting_len() > 0 {
                    self.queue.push_waiting(id); // those waiting already go first
                    continue;
                }
                match self.reopen(id, out) {
                    Reopen::Open => {}
                    Reopen::Wait => {
                        self.queue.push_waiting(id);
                        continue;
                    }
                    Reopen::Later | Reopen::Gone => continue,
                }
            }
            self.serve(id, out);
        }
        self.promote(out);
        self.publish_gauges();
    }

    /// One turn of an open file: a read step, then it is queued again, gives its
    /// descriptor up to a waiting file, or is closed for good.
    fn serve(&mut self, id: Id, out: &mut Vec<SourceEvent>) {
        let t = self.tailers.get_mut(&id).expect("served files are tracked");
        let more = t.step(&self.settings, &self.stats, out);
        let contended = self.queue.waiting_len() > 0;
        if more {
            if contended {
                t.detach();
                self.queue.push_waiting(id);
                self.promote(out);
            } else {
                self.queue.push_ready(id);
            }
            return;
        }
        let done = match t.fate {
            Fate::Live => false,
            Fate::Rotated | Fate::Deleted => true,
            Fate::MovedAway { since } => {
                since.elapsed() >= self.policy.rotate_wait
                    && t.last_data.elapsed() >= self.policy.rotate_wait
            }
        };
        if done {
            self.finish(id, out);
        } else if contended {
            // Caught up: its descriptor serves better elsewhere; it reopens on growth.
            t.detach();
            self.promote(out);
        }
    }

    /// Stops tailing `id` for good (`Rotated`/`Closed`), remembering its position.
    fn finish(&mut self, id: Id, out: &mut Vec<SourceEvent>) {
        let Some(t) = self.tailers.remove(&id) else {
            return;
        };
        self.queue.remove(id);
        self.rescan_needed |= t.fate == Fate::Rotated;
        if let Some(cp) = t.close(&self.settings, &self.stats, out) {
            self.remember(cp);
        }
        self.reindex();
        self.promote(out);
    }

    /// Hands free descriptors to the files waiting longest.
    pub(crate) fn promote(&mut self, out: &mut Vec<SourceEvent>) {
        while let Some(id) = self.queue.pop_waiting() {
            match self.reopen(id, out) {
                Reopen::Open => self.queue.push_ready(id),
                Reopen::Wait => {
                    self.queue.unpop_waiting(id);
                    break;
                }
                Reopen::Later | Reopen::Gone => {}
            }
        }
    }

    /// Opens the closed file `id` where it was last seen, or wherever it went.
    fn reopen(&mut self, id: Id, out: &mut Vec<SourceEvent>) -> Reopen {
        let Some(t) = self.tailers.get(&id) else {
            return Reopen::Gone;
        };
        let mut places: Vec<Arc<Path>> = t.found_at.iter().cloned().collect();
        places.push(t.path.clone());
        for searched in [false, true] {
            if searched {
                let wanted = HashSet::from([id]);
                let Some(at) = locate(self.globs.roots(), &wanted).remove(&id) else {
                    break;
                };
                places = vec![Arc::from(at)];
            }
            for place in &places {
                match self.open_at(id, place) {
                    Ok(Some(open)) => return self.opened(id, place, open, out),
                    Ok(None) => {} // not there (any more)
                    Err(reopen) => return reopen,
                }
            }
        }
        self.gone(id, out);
        Reopen::Gone
    }

    /// Opens `place` if it is the file `id`; `Err` with what to do if it cannot be
    /// opened now.
    fn open_at(&mut self, id: Id, place: &Path) -> Result<Option<crate::budget::OpenFile>, Reopen> {
        let permit = self.permit(place)?;
        let file = match open_nonblocking(place) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if is_out_of_descriptors(&e) => {
                self.stats
                    .open_deferred(&self.settings.source, place, Some(&e));
                return Err(Reopen::Wait);
            }
            Err(e) => {
                self.stats
                    .read_error(&self.settings.source, "open", place, &e);
                self.retry.insert(id);
                return Err(Reopen::Later);
            }
        };
        match file.metadata() {
            Ok(m) if m.is_file() && (m.dev(), m.ino()) == id => Ok(Some(permit.hold(file))),
            Ok(_) => Ok(None), // another file at that place now
            Err(e) => {
                self.stats
                    .read_error(&self.settings.source, "fstat", place, &e);
                self.retry.insert(id);
                Err(Reopen::Later)
            }
        }
    }

    /// A descriptor of the budget, closing the least recently active idle file if that
    /// is what it takes.
    fn permit(&mut self, place: &Path) -> Result<Permit, Reopen> {
        if let Some(p) = self.policy.budget.try_acquire() {
            return Ok(p);
        }
        let idle = self
            .tailers
            .iter()
            .filter(|(id, t)| t.is_open() && !self.queue.contains(**id))
            .min_by_key(|(_, t)| t.last_active)
            .map(|(id, _)| *id);
        if let Some(idle) = idle {
            self.tailers.get_mut(&idle).expect("present").detach();
            if let Some(p) = self.policy.budget.try_acquire() {
                return Ok(p);
            }
        }
        self.stats.open_deferred(&self.settings.source, place, None);
        Err(Reopen::Wait)
    }

    /// Records where `id` was opened and starts it if it was never opened before.
    fn opened(
        &mut self,
        id: Id,
        place: &Path,
        open: crate::budget::OpenFile,
        out: &mut Vec<SourceEvent>,
    ) -> Reopen {
        let t = self.tailers.get_mut(&id).expect("present");
        if *place != *t.path {
            t.found_at = Some(place.into());
        }
        t.attach(open);
        if let Some(pending) = t.pending.take() {
            self.begin_pending(id, pending, out);
        }
        if self.tailers.contains_key(&id) {
            Reopen::Open
        } else {
            Reopen::Gone
        }
    }

    /// First open of a file: resume its checkpoint if one matches, else start as
    /// configured. A file found only by identity (outside the patterns) whose
    /// checkpoint does not match is not ours: it is dropped as gone.
    fn begin_pending(&mut self, id: Id, pending: Pending, out: &mut Vec<SourceEvent>) {
        let source = self.settings.source.clone();
        let t = self.tailers.get_mut(&id).expect("present");
        let file = t.file().expect("just attached");
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut start = pending.start;
        let mut matched = None;
        let mut stale = Vec::new();
        for cp in pending.resume {
            if matched.is_none() && cp.file.matches(file).unwrap_or(false) {
                matched = Some(cp);
            } else {
                // A stale entry, or another file under a reused inode: that one is gone.
                out.push(SourceEvent::Closed { file: cp.file });
                stale.push(cp);
            }
        }
        if let Some(cp) = matched {
            let mut cuts = self.cuts.remove(&cp.file).unwrap_or_default();
            if cp.offset <= size {
                start = Start::Resume {
                    key: cp.file,
                    offset: cp.offset,
                };
                if cuts.last().is_some_and(|c| *c > size) {
                    // Readers further on than the file is long take it as truncated,
                    // each through a source of its own.
                    cuts.retain(|c| *c <= size);
                    self.shorter.push((cp.file, size));
                }
                t.cut_at(cuts);
            } else {
                // Same first bytes, but shorter than the offset: truncated while down.
                self.stats
                    .truncated(&source, &t.path, cp.file, size, cp.offset);
                out.push(SourceEvent::Truncated {
                    file: cp.file,
                    path: t.path.clone(),
                });
                out.push(SourceEvent::Closed { file: cp.file });
            }
        }
        if t.found_at.is_some() && !matches!(start, Start::Resume { .. }) {
            // Found by its inode only: the checkpointed generation is gone for good.
            for cp in stale {
                let unread = cp.size.saturating_sub(cp.offset);
                self.stats.gone(&source, &cp.path, cp.file, unread);
            }
            debug!(source, path = %t.path.display(), "renamed file is another generation; not ours");
            self.tailers.remove(&id);
            self.queue.remove(id);
            self.reindex();
            return;
        }
        if size > 0 || matches!(start, Start::Resume { .. }) {
            // Not keyed now (no complete first line, or an error): the next step keys it
            // from the beginning once it can.
            if let Err(e) = t.begin(start, &self.settings, &self.stats, out) {
                self.stats.read_error(&source, "fingerprint", &t.path, &e);
            }
        }
    }

    /// `id` is nowhere to be found: report what is known to be unread, and close it.
    fn gone(&mut self, id: Id, out: &mut Vec<SourceEvent>) {
        let Some(t) = self.tailers.remove(&id) else {
            return;
        };
        self.queue.remove(id);
        self.rescan_needed |= t.fate == Fate::Rotated;
        let source = &self.settings.source;
        if let Some(pending) = &t.pending {
            // Never opened: its checkpoint entries are gone with it.
            for cp in &pending.resume {
                let unread = cp.size.saturating_sub(cp.offset);
                self.stats.gone(source, &cp.path, cp.file, unread);
                out.push(SourceEvent::Closed { file: cp.file });
            }
        } else if let Some(key) = t.key() {
            let unread = t.unread();
            if unread > 0 {
                self.stats.gone(source, &t.path, key, unread);
            }
        }
        close_gone(t, self, out);
        self.reindex();
    }
}

/// Closes a tailer whose file is gone (emitting `Rotated`/`Closed` as for any close).
fn close_gone(t: Tailer, set: &FileSet, out: &mut Vec<SourceEvent>) {
    debug!(source = set.settings.source, path = %t.path.display(), "file gone while closed");
    let _ = t.close(&set.settings, &set.stats, out);
}

/// Whether an open failed for lack of descriptors (process or system-wide).
fn is_out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}
