//! File-system events as hints: `notify` watches the directories of the patterns and
//! every event is folded into a small [`HintState`] ("these paths changed", "rescan
//! everything") plus a wake-up. Many events between two passes of the source coalesce
//! into one pass; nothing here decides what happened, the scan does (inotify is a hint,
//! not the truth: queues overflow, watches vanish with their directory).

use std::collections::{HashMap, HashSet};
use std::mem;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;
use tracing::{debug, warn};

use crate::discover::WatchRoot;

/// Past this many distinct changed paths, a full rescan is cheaper than the list.
const MAX_HINT_PATHS: usize = 1024;

/// What changed since the source last looked.
#[derive(Debug, Default)]
pub(crate) struct HintState {
    /// Re-expand the patterns and re-check every file.
    pub rescan: bool,
    /// Files whose content changed (read them).
    pub paths: HashSet<PathBuf>,
}

/// Hints shared between the watcher thread and the source task.
#[derive(Debug, Default)]
pub(crate) struct Hints {
    state: Mutex<HintState>,
    wake: Notify,
}

impl Hints {
    /// Folds one watcher event in (called on the watcher's thread).
    pub(crate) fn on_event(&self, event: notify::Result<Event>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match event {
            Err(e) => {
                debug!(error = %e, "watcher error; rescanning");
                state.rescan = true;
            }
            Ok(event) if event.need_rescan() => state.rescan = true,
            Ok(event) => match event.kind {
                // Our own opens and reads, attribute changes: nothing to do.
                EventKind::Access(AccessKind::Open(_) | AccessKind::Read)
                | EventKind::Access(AccessKind::Close(AccessMode::Read))
                | EventKind::Modify(ModifyKind::Metadata(_)) => return,
                EventKind::Modify(ModifyKind::Data(_))
                | EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                    if state.paths.len() + event.paths.len() > MAX_HINT_PATHS {
                        state.paths.clear();
                        state.rescan = true;
                    } else if !state.rescan {
                        state.paths.extend(event.paths);
                    }
                }
                // Create, remove, rename, anything unknown: the set of files may differ.
                _ => state.rescan = true,
            },
        }
        drop(state);
        self.wake.notify_one();
    }

    /// Takes the accumulated hints, leaving none.
    pub(crate) fn take(&self) -> HintState {
        mem::take(&mut *self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Waits until a hint arrives (returns at once if one arrived since the last wait).
    pub(crate) async fn changed(&self) {
        self.wake.notified().await;
    }
}

/// The `notify` watcher over the patterns' directories; dropping it stops watching.
pub(crate) struct DirWatcher {
    source: String,
    inner: Option<RecommendedWatcher>,
    roots: Vec<WatchRoot>,
    /// Watched directories and their `(dev, ino)`: a directory deleted and re-created
    /// has lost its watch and gets a new one.
    watched: HashMap<PathBuf, (u64, u64)>,
    /// Roots whose watch failed (logged once, retried on every reconcile).
    failed: HashSet<PathBuf>,
}

impl DirWatcher {
    /// Starts a watcher feeding `hints`. Without one (inotify unavailable, limits hit)
    /// the source still works from its reconcile scans, only with more latency.
    pub(crate) fn new(source: &str, roots: Vec<WatchRoot>, hints: Arc<Hints>) -> DirWatcher {
        let inner = match notify::recommended_watcher(move |ev| hints.on_event(ev)) {
            Ok(w) => Some(w),
            Err(e) => {
                warn!(source, error = %e, "cannot start file watcher; relying on reconcile scans");
                None
            }
        };
        let mut w = DirWatcher {
            source: source.to_owned(),
            inner,
            roots,
            watched: HashMap::new(),
            failed: HashSet::new(),
        };
        w.refresh();
        w
    }

    /// (Re-)watches every root that exists and is not watched as the same directory.
    /// Blocking (stats, `inotify_add_watch`, a directory walk for recursive roots).
    pub(crate) fn refresh(&mut self) {
        let Some(inner) = self.inner.as_mut() else {
            return;
        };
        for root in &self.roots {
            let id = std::fs::metadata(&root.dir)
                .ok()
                .filter(|m| m.is_dir())
                .map(|m| (m.dev(), m.ino()));
            let current = self.watched.get(&root.dir).copied();
            if id.is_some() && id == current {
                continue;
            }
            if current.is_some() {
                let _ = inner.unwatch(&root.dir); // may already be gone with the directory
                self.watched.remove(&root.dir);
            }
            let Some(id) = id else {
                continue; // does not exist (yet): reconcile scans cover it until it does
            };
            let mode = if root.recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            match inner.watch(&root.dir, mode) {
                Ok(()) => {
                    debug!(source = self.source, dir = %root.dir.display(), "watching");
                    self.failed.remove(&root.dir);
                    self.watched.insert(root.dir.clone(), id);
                }
                Err(e) => {
                    if self.failed.insert(root.dir.clone()) {
                        warn!(source = self.source, dir = %root.dir.display(), error = %e,
                            "cannot watch directory; relying on reconcile scans");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, Flag};

    #[test]
    fn events_fold_into_hints() {
        let h = Hints::default();
        let data = |p: &str| {
            Ok(Event::new(EventKind::Modify(ModifyKind::Data(DataChange::Any))).add_path(p.into()))
        };
        h.on_event(data("/a"));
        h.on_event(data("/a"));
        h.on_event(Ok(Event::new(EventKind::Access(AccessKind::Open(
            AccessMode::Any,
        )))));
        let s = h.take();
        assert!(!s.rescan);
        assert_eq!(s.paths.len(), 1);
        h.on_event(Ok(
            Event::new(EventKind::Create(CreateKind::File)).add_path("/b".into())
        ));
        assert!(h.take().rescan);
        h.on_event(Ok(Event::new(EventKind::Other).set_flag(Flag::Rescan)));
        assert!(h.take().rescan, "queue overflow means rescan");
        assert!(!h.take().rescan, "take leaves nothing");
    }
}
