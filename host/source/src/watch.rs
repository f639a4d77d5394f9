//! File-system events as hints: `notify` watches the directories of the patterns and
//! every event is folded into a small [`HintState`] ("these paths changed", "rescan
//! everything") plus a wake-up. Many events between two passes of the source coalesce
//! into one pass; nothing here decides what happened, the scan does (inotify is a hint,
//! not the truth: queues overflow, watches vanish with their directory).
//!
//! Sources that watch the same directories (the shards of a pipeline, two pipelines
//! over one feed) share one watcher: one inotify instance and one thread, whose
//! events are folded into every such source's hints. Inotify instances are a
//! per-user budget (`fs.inotify.max_user_instances`, 128 by default), and each
//! watcher reads and wakes on every append: N shards paid for N of each.

use std::collections::{HashMap, HashSet};
use std::mem;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, RwLock, Weak};

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

/// What one watcher event tells the sources.
#[derive(Debug, PartialEq)]
enum Hint<'a> {
    /// Nothing to do (the sources' own opens and reads, attribute changes).
    Nothing,
    /// The content of these files changed.
    Changed(&'a [PathBuf]),
    /// The set of files may differ, or events were lost: rescan.
    Rescan,
}

impl<'a> Hint<'a> {
    /// What `event` tells the sources.
    fn of(event: &'a notify::Result<Event>) -> Self {
        match event {
            Err(e) => {
                debug!(error = %e, "watcher error; rescanning");
                Hint::Rescan
            }
            Ok(event) if event.need_rescan() => Hint::Rescan,
            Ok(event) => match event.kind {
                // Our own opens and reads, attribute changes: nothing to do.
                EventKind::Access(AccessKind::Open(_) | AccessKind::Read)
                | EventKind::Access(AccessKind::Close(AccessMode::Read))
                | EventKind::Modify(ModifyKind::Metadata(_)) => Hint::Nothing,
                EventKind::Modify(ModifyKind::Data(_))
                | EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                    Hint::Changed(&event.paths)
                }
                // Create, remove, rename, anything unknown: the set of files may differ.
                _ => Hint::Rescan,
            },
        }
    }
}

/// Hints shared between the watcher thread and the source task.
#[derive(Debug, Default)]
pub(crate) struct Hints {
    state: Mutex<HintState>,
    wake: Notify,
}

impl Hints {
    /// Folds one watcher event in (called on the watcher's thread).
    #[cfg(test)]
    fn on_event(&self, event: notify::Result<Event>) {
        self.fold(&Hint::of(&event));
    }

    /// Folds one hint in and wakes the source (unless there is nothing to do).
    fn fold(&self, hint: &Hint<'_>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match hint {
            Hint::Nothing => return,
            Hint::Rescan => state.rescan = true,
            Hint::Changed(paths) => {
                if state.paths.len() + paths.len() > MAX_HINT_PATHS {
                    state.paths.clear();
                    state.rescan = true;
                } else if !state.rescan {
                    state.paths.extend(paths.iter().cloned());
                }
            }
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

/// The hints of the sources one watcher feeds.
type Subscribers = RwLock<Vec<Arc<Hints>>>;

/// The shared watchers by the roots they watch; an entry lives while a source
/// holds its watcher.
static WATCHERS: LazyLock<Mutex<HashMap<Vec<WatchRoot>, Weak<SharedWatcher>>>> =
    LazyLock::new(Mutex::default);

/// One `notify` watcher over a set of roots, feeding the hints of every source
/// that watches exactly those roots.
struct SharedWatcher {
    subscribers: Arc<Subscribers>,
    /// The watcher and what it watches. Never locked on the watcher's thread: a
    /// watch or an unwatch waits for that thread.
    state: Mutex<WatchState>,
}

/// A shared watcher's watches.
struct WatchState {
    inner: Option<RecommendedWatcher>,
    roots: Vec<WatchRoot>,
    /// Watched directories and their `(dev, ino)`: a directory deleted and re-created
    /// has lost its watch and gets a new one.
    watched: HashMap<PathBuf, (u64, u64)>,
    /// Roots whose watch failed (logged once, retried on every reconcile).
    failed: HashSet<PathBuf>,
}

impl SharedWatcher {
    /// The watcher over `roots`: the one a source already holds, or a new one.
    /// Without a watcher (inotify unavailable, limits hit) the sources still work
    /// from their reconcile scans, only with more latency.
    fn over(source: &str, roots: Vec<WatchRoot>) -> Arc<SharedWatcher> {
        let mut all = WATCHERS.lock().unwrap_or_else(PoisonError::into_inner);
        all.retain(|_, w| w.strong_count() > 0);
        if let Some(shared) = all.get(&roots).and_then(Weak::upgrade) {
            return shared;
        }
        let subscribers = Arc::new(Subscribers::default());
        let feed = subscribers.clone();
        let inner = notify::recommended_watcher(move |event| {
            let hint = Hint::of(&event);
            if hint == Hint::Nothing {
                return;
            }
            for hints in feed.read().unwrap_or_else(PoisonError::into_inner).iter() {
                hints.fold(&hint);
            }
        });
        let inner = match inner {
            Ok(w) => Some(w),
            Err(e) => {
                warn!(source, error = %e, "cannot start file watcher; relying on reconcile scans");
                None
            }
        };
        let shared = Arc::new(SharedWatcher {
            subscribers,
            state: Mutex::new(WatchState {
                inner,
                roots: roots.clone(),
                watched: HashMap::new(),
                failed: HashSet::new(),
            }),
        });
        all.insert(roots, Arc::downgrade(&shared));
        shared
    }
}

impl WatchState {
    /// (Re-)watches every root that exists and is not watched as the same directory.
    /// Blocking (stats, `inotify_add_watch`, a directory walk for recursive roots).
    fn refresh(&mut self, source: &str) {
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
                    debug!(source, dir = %root.dir.display(), "watching");
                    self.failed.remove(&root.dir);
                    self.watched.insert(root.dir.clone(), id);
                }
                Err(e) => {
                    if self.failed.insert(root.dir.clone()) {
                        warn!(source, dir = %root.dir.display(), error = %e,
                            "cannot watch directory; relying on reconcile scans");
                    }
                }
            }
        }
    }
}

/// A source's watch over the directories of its patterns: the shared watcher of
/// those directories feeds its hints. Dropping it stops its hints, and the
/// watcher when no other source holds it.
pub(crate) struct DirWatcher {
    source: String,
    shared: Arc<SharedWatcher>,
    hints: Arc<Hints>,
}

impl DirWatcher {
    /// Watches `roots` for a source, feeding `hints`: through the watcher another
    /// source already holds over the same roots, or a new one.
    pub(crate) fn new(source: &str, mut roots: Vec<WatchRoot>, hints: Arc<Hints>) -> DirWatcher {
        roots.sort();
        roots.dedup();
        let shared = SharedWatcher::over(source, roots);
        shared
            .subscribers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(hints.clone());
        let mut w = DirWatcher {
            source: source.to_owned(),
            shared,
            hints,
        };
        w.refresh();
        w
    }

    /// (Re-)watches every root that exists and is not watched as the same directory.
    /// Blocking (stats, `inotify_add_watch`, a directory walk for recursive roots).
    pub(crate) fn refresh(&mut self) {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .refresh(&self.source);
    }
}

impl Drop for DirWatcher {
    fn drop(&mut self) {
        self.shared
            .subscribers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|h| !Arc::ptr_eq(h, &self.hints));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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

    /// Waits (bounded) until `hints` name `path` as changed.
    async fn hinted(hints: &Hints, path: &std::path::Path) -> bool {
        let wait = async {
            loop {
                if hints.take().paths.contains(path) {
                    return;
                }
                hints.changed().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .is_ok()
    }

    fn root(dir: &std::path::Path) -> WatchRoot {
        WatchRoot {
            dir: dir.to_path_buf(),
            recursive: false,
        }
    }

    #[tokio::test]
    async fn sources_over_the_same_directories_share_one_watcher_that_feeds_each() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let file = dir.path().join("feed.csv");
        std::fs::write(&file, "a\n").unwrap();
        let (first, second) = (Arc::new(Hints::default()), Arc::new(Hints::default()));
        let a = DirWatcher::new("a#0", vec![root(dir.path())], first.clone());
        let b = DirWatcher::new("a#1", vec![root(dir.path())], second.clone());
        let c = DirWatcher::new("c", vec![root(other.path())], Arc::default());
        assert!(Arc::ptr_eq(&a.shared, &b.shared), "one watcher for both");
        assert!(
            !Arc::ptr_eq(&a.shared, &c.shared),
            "other roots, other watcher"
        );

        append(&file, "b\n");
        assert!(hinted(&first, &file).await, "the first source is told");
        assert!(hinted(&second, &file).await, "and so is the second");

        // One source gone: the other still hears, the gone one no longer does.
        drop(a);
        first.take();
        append(&file, "c\n");
        assert!(hinted(&second, &file).await);
        assert!(first.take().paths.is_empty());

        // The last source over the roots gone: the watcher is gone with it.
        let weak = Arc::downgrade(&b.shared);
        drop(b);
        assert!(weak.upgrade().is_none());
        drop(c);
    }

    fn append(path: &std::path::Path, text: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }
}
