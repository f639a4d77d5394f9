//! File-system events as hints: the source's own inotify instance watches the
//! directories of its patterns, and its events are folded into a small
//! [`HintState`] ("these paths changed", "rescan everything"). Many events between
//! two passes of the source coalesce into one pass; nothing here decides what
//! happened, the scan does (inotify is a hint, not the truth: queues overflow,
//! watches vanish with their directory).
//!
//! The instance is read on the source's own thread (its descriptor registered
//! with that thread's runtime): an append wakes the thread that reads the file,
//! with no watcher thread in between to wake it. A watcher thread cost the host a
//! thread switch per append and the thread's own time (translating every event,
//! the source's own opens and reads among them, into an allocated event value):
//! 9% of the host's CPU at 30,000 appends/s. The mask asks only for what can
//! change what the source reads.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io;
use std::mem;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tracing::{debug, warn};

use crate::discover::WatchRoot;

/// Past this many distinct changed paths, a full rescan is cheaper than the list.
const MAX_HINT_PATHS: usize = 1024;

/// Bytes of events read at once (an event is 16 bytes and its name).
const EVENT_BUFFER: usize = 16 * 1024;

/// What can change what the source reads: data written, and the set of files in
/// a directory. Not opens, reads or attribute changes (the source's own reads
/// would wake it again).
const MASK: WatchMask = WatchMask::MODIFY
    .union(WatchMask::CLOSE_WRITE)
    .union(WatchMask::CREATE)
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::MOVE_SELF)
    .union(WatchMask::ONLYDIR);

/// What changed since the source last looked.
#[derive(Debug, Default)]
pub(crate) struct HintState {
    /// Re-expand the patterns and re-check every file.
    pub rescan: bool,
    /// Files whose content changed (read them).
    pub paths: HashSet<PathBuf>,
}

/// What one inotify event tells the source.
#[derive(Debug, PartialEq)]
enum Hint<'a> {
    /// Nothing to do.
    Nothing,
    /// The content of this file (a name in the event's directory) changed.
    Changed(&'a OsStr),
    /// The set of files may differ, or events were lost: rescan.
    Rescan,
}

impl<'a> Hint<'a> {
    /// What an event with `mask` about `name` tells the source.
    fn of(mask: EventMask, name: Option<&'a OsStr>) -> Self {
        if mask.intersects(EventMask::Q_OVERFLOW | EventMask::IGNORED | EventMask::UNMOUNT) {
            // Events were lost, or a watch is gone with its directory.
            return Hint::Rescan;
        }
        if mask.intersects(EventMask::MODIFY | EventMask::CLOSE_WRITE) {
            return match name {
                Some(name) if !mask.contains(EventMask::ISDIR) => Hint::Changed(name),
                _ => Hint::Nothing,
            };
        }
        if mask.intersects(
            EventMask::CREATE
                | EventMask::DELETE
                | EventMask::MOVED_FROM
                | EventMask::MOVED_TO
                | EventMask::DELETE_SELF
                | EventMask::MOVE_SELF,
        ) {
            return Hint::Rescan;
        }
        Hint::Nothing
    }
}

impl HintState {
    /// Folds one hint about a name in `dir` in.
    fn fold(&mut self, dir: Option<&Path>, hint: Hint<'_>) {
        match (hint, dir) {
            (Hint::Nothing, _) => {}
            (Hint::Changed(_), _) if self.rescan => {}
            (Hint::Changed(name), Some(dir)) => {
                if self.paths.len() >= MAX_HINT_PATHS {
                    self.paths.clear();
                    self.rescan = true;
                } else {
                    self.paths.insert(dir.join(name));
                }
            }
            // An event of a watch no longer known (removed a moment ago).
            (Hint::Changed(_), None) | (Hint::Rescan, _) => {
                self.paths.clear();
                self.rescan = true;
            }
        }
    }
}

/// A watched directory.
struct Watched {
    watch: WatchDescriptor,
    /// `(dev, ino)`: a directory deleted and re-created has lost its watch and
    /// gets a new one.
    id: (u64, u64),
}

/// A source's watch over the directories of its patterns, and the hints its
/// events left since the source last took them. Without an inotify instance
/// (none left in the user's budget) the source still works from its reconcile
/// scans, only with more latency.
pub(crate) struct DirWatcher {
    source: String,
    roots: Vec<WatchRoot>,
    inotify: Option<AsyncFd<Inotify>>,
    watched: HashMap<PathBuf, Watched>,
    /// The directory of each live watch (events name their watch). A watch the
    /// kernel removed (its directory deleted) leaves it at once, and the next
    /// refresh watches that path again if it is a directory again.
    dirs: HashMap<i32, PathBuf>,
    /// Directories whose watch failed (logged once, retried at every refresh).
    failed: HashSet<PathBuf>,
    buffer: Box<[u8]>,
    hints: HintState,
}

impl DirWatcher {
    /// Watches `roots` for a source. Registers with the current runtime: call it
    /// on the thread that reads the source's files.
    pub(crate) fn new(source: &str, mut roots: Vec<WatchRoot>) -> DirWatcher {
        roots.sort();
        roots.dedup();
        let inotify = Inotify::init().and_then(|inotify| {
            // SAFETY: the `Inotify` owns its descriptor, which stays open and
            // the same for as long as it lives, inside the `AsyncFd`.
            unsafe { AsyncFd::register_with_interest(inotify, Interest::READABLE) }
                .map_err(io::Error::from)
        });
        let inotify = match inotify {
            Ok(fd) => Some(fd),
            Err(e) => {
                warn!(source, error = %e, "cannot start file watcher; relying on reconcile scans");
                None
            }
        };
        let mut w = DirWatcher {
            source: source.to_owned(),
            roots,
            inotify,
            watched: HashMap::new(),
            dirs: HashMap::new(),
            failed: HashSet::new(),
            buffer: vec![0; EVENT_BUFFER].into_boxed_slice(),
            hints: HintState::default(),
        };
        w.refresh();
        w
    }

    /// (Re-)watches every directory of the roots (below recursive ones too) that
    /// exists and is not watched as the same directory, and stops watching those
    /// no longer there. Blocking (stats, `inotify_add_watch`, a directory walk
    /// for recursive roots).
    pub(crate) fn refresh(&mut self) {
        let Some(inotify) = &self.inotify else {
            return;
        };
        let mut watches = inotify.get_ref().watches();
        let mut seen = HashSet::new();
        for root in &self.roots {
            let dirs = if root.recursive {
                directories_below(&root.dir)
            } else {
                directory_id(&root.dir)
                    .map(|id| vec![(root.dir.clone(), id)])
                    .unwrap_or_default()
            };
            for (dir, id) in dirs {
                seen.insert(dir.clone());
                if let Some(w) = self.watched.get(&dir) {
                    let wd = w.watch.get_watch_descriptor_id();
                    if w.id == id && self.dirs.contains_key(&wd) {
                        continue;
                    }
                    // Replaced, or its watch removed: watch it anew.
                    self.dirs.remove(&wd);
                    let _ = watches.remove(w.watch.clone());
                    self.watched.remove(&dir);
                }
                match watches.add(&dir, MASK) {
                    Ok(watch) => {
                        debug!(source = self.source, dir = %dir.display(), "watching");
                        self.failed.remove(&dir);
                        self.dirs
                            .insert(watch.get_watch_descriptor_id(), dir.clone());
                        self.watched.insert(dir, Watched { watch, id });
                    }
                    Err(e) => {
                        if self.failed.insert(dir.clone()) {
                            warn!(source = self.source, dir = %dir.display(), error = %e,
                                "cannot watch directory; relying on reconcile scans");
                        }
                    }
                }
            }
        }
        // Directories gone or moved out of the roots. Removing a watch may fail:
        // it is already gone with its directory.
        let gone: Vec<PathBuf> = self
            .watched
            .keys()
            .filter(|dir| !seen.contains(*dir))
            .cloned()
            .collect();
        for dir in gone {
            if let Some(w) = self.watched.remove(&dir) {
                self.dirs.remove(&w.watch.get_watch_descriptor_id());
                let _ = watches.remove(w.watch);
            }
        }
    }

    /// Takes the hints gathered so far, and those of the events already queued,
    /// leaving none. Does not wait.
    pub(crate) fn take(&mut self) -> HintState {
        if let (Some(inotify), mut read) = self.parts() {
            while read.from(inotify.get_mut()).is_ok() {}
        }
        mem::take(&mut self.hints)
    }

    /// Waits until events arrive and gathers them (at once if some are
    /// queued). Cancel-safe: what it read is in the hints.
    pub(crate) async fn changed(&mut self) {
        let (Some(inotify), mut read) = self.parts() else {
            return std::future::pending().await;
        };
        loop {
            let Ok(mut ready) = inotify.readable_mut().await else {
                return std::future::pending().await;
            };
            // Nothing queued clears the readiness: wait for the next event.
            if ready.try_io(|fd| read.from(fd.get_mut())).is_ok() {
                return;
            }
        }
    }

    /// The instance, and what reading its events needs.
    fn parts(&mut self) -> (Option<&mut AsyncFd<Inotify>>, Read<'_>) {
        let read = Read {
            source: &self.source,
            dirs: &mut self.dirs,
            buffer: &mut self.buffer,
            hints: &mut self.hints,
        };
        (self.inotify.as_mut(), read)
    }
}

/// One read of a watcher's queued events into its hints.
struct Read<'a> {
    source: &'a str,
    dirs: &'a mut HashMap<i32, PathBuf>,
    buffer: &'a mut [u8],
    hints: &'a mut HintState,
}

impl Read<'_> {
    /// Folds the events queued in `inotify` (as many as the buffer holds) into
    /// the hints. `WouldBlock` if none was queued; any other error is taken as
    /// lost events (a rescan) and returned too.
    fn from(&mut self, inotify: &mut Inotify) -> io::Result<()> {
        match inotify.read_events(self.buffer) {
            Ok(events) => {
                for event in events {
                    let wd = event.wd.get_watch_descriptor_id();
                    let dir = self.dirs.get(&wd);
                    self.hints
                        .fold(dir.map(PathBuf::as_path), Hint::of(event.mask, event.name));
                    if event.mask.contains(EventMask::IGNORED) {
                        self.dirs.remove(&wd);
                    }
                }
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(e),
            Err(e) => {
                debug!(source = self.source, error = %e, "watcher error; rescanning");
                self.hints.rescan = true;
                Err(e)
            }
        }
    }
}

/// `dir`'s `(dev, ino)` if it is a directory.
fn directory_id(dir: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(dir)
        .ok()
        .filter(|m| m.is_dir())
        .map(|m| (m.dev(), m.ino()))
}

/// `root` and every directory below it (following symbolic links, each
/// directory once), with their `(dev, ino)`. Unreadable directories are passed
/// over: the reconcile scans cover them.
fn directories_below(root: &Path) -> Vec<(PathBuf, (u64, u64))> {
    let mut found = Vec::new();
    let mut ids = HashSet::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Some(id) = directory_id(&dir) else {
            continue;
        };
        if !ids.insert(id) {
            continue; // reached again through a link
        }
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let is_dir = entry
                    .file_type()
                    .is_ok_and(|t| t.is_dir() || (t.is_symlink() && entry.path().is_dir()));
                if is_dir {
                    todo.push(entry.path());
                }
            }
        }
        found.push((dir, id));
    }
    found
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn events_fold_into_hints() {
        let mut h = HintState::default();
        let dir = Path::new("/d");
        h.fold(
            Some(dir),
            Hint::of(EventMask::MODIFY, Some(OsStr::new("a"))),
        );
        h.fold(
            Some(dir),
            Hint::of(EventMask::CLOSE_WRITE, Some(OsStr::new("a"))),
        );
        h.fold(Some(dir), Hint::of(EventMask::OPEN, Some(OsStr::new("b"))));
        h.fold(
            Some(dir),
            Hint::of(
                EventMask::MODIFY | EventMask::ISDIR,
                Some(OsStr::new("sub")),
            ),
        );
        let s = mem::take(&mut h);
        assert!(!s.rescan);
        assert_eq!(s.paths, HashSet::from([PathBuf::from("/d/a")]));
        h.fold(
            Some(dir),
            Hint::of(EventMask::CREATE, Some(OsStr::new("b"))),
        );
        assert!(mem::take(&mut h).rescan);
        h.fold(None, Hint::of(EventMask::Q_OVERFLOW, None));
        assert!(mem::take(&mut h).rescan, "queue overflow means rescan");
        h.fold(Some(dir), Hint::of(EventMask::IGNORED, None));
        assert!(mem::take(&mut h).rescan, "a watch gone means rescan");
        for name in 0..=MAX_HINT_PATHS {
            h.fold(
                Some(dir),
                Hint::of(EventMask::MODIFY, Some(OsStr::new(&name.to_string()))),
            );
        }
        let s = mem::take(&mut h);
        assert!(s.rescan && s.paths.is_empty(), "too many paths: rescan");
    }

    /// Waits (bounded) until `w`'s hints say `wanted`.
    async fn hinted(w: &mut DirWatcher, wanted: impl Fn(&HintState) -> bool) -> bool {
        let wait = async {
            loop {
                if wanted(&w.take()) {
                    return;
                }
                w.changed().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .is_ok()
    }

    fn root(dir: &Path, recursive: bool) -> WatchRoot {
        WatchRoot {
            dir: dir.to_path_buf(),
            recursive,
        }
    }

    fn append(path: &Path, text: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    #[tokio::test]
    async fn appends_name_their_file_and_the_source_s_own_reads_wake_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("feed.csv");
        std::fs::write(&file, "a\n").unwrap();
        let mut w = DirWatcher::new("s", vec![root(dir.path(), false)]);

        // A write names the file before the writer closes it.
        let mut writer = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap();
        std::io::Write::write_all(&mut writer, b"b\n").unwrap();
        assert!(hinted(&mut w, |h| h.paths.contains(&file) && !h.rescan).await);
        drop(writer);
        assert!(
            hinted(&mut w, |h| h.paths.contains(&file)).await,
            "and the close"
        );

        // Reading the file (as the source does) queues no event.
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "a\nb\n");
        let mut buffer = [0; EVENT_BUFFER];
        let inotify = w.inotify.as_mut().unwrap().get_mut();
        let read = inotify.read_events(&mut buffer).map(|e| e.count());
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::WouldBlock);

        // A new file changes the set: rescan.
        std::fs::write(dir.path().join("new.csv"), "c\n").unwrap();
        assert!(hinted(&mut w, |h| h.rescan).await);
    }

    #[tokio::test]
    async fn recursive_roots_watch_directories_made_after_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = DirWatcher::new("s", vec![root(dir.path(), true)]);
        let sub = dir.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        assert!(
            hinted(&mut w, |h| h.rescan).await,
            "a new directory: rescan"
        );

        // The rescan's refresh watches the new directories.
        w.refresh();
        let file = sub.join("feed.csv");
        std::fs::write(&file, "").unwrap();
        w.take();
        append(&file, "x\n");
        assert!(hinted(&mut w, |h| h.paths.contains(&file)).await);

        // A directory deleted: its watch goes, and a refresh forgets it.
        std::fs::remove_dir_all(dir.path().join("a")).unwrap();
        assert!(hinted(&mut w, |h| h.rescan).await);
        w.refresh();
        assert_eq!(w.watched.len(), 1, "only the root is left");
        assert_eq!(w.dirs.len(), 1);

        // Made again under the same name: watched again.
        std::fs::create_dir_all(&sub).unwrap();
        assert!(hinted(&mut w, |h| h.rescan).await);
        w.refresh();
        std::fs::write(&file, "").unwrap();
        w.take();
        append(&file, "y\n");
        assert!(hinted(&mut w, |h| h.paths.contains(&file)).await);
    }

    #[tokio::test]
    async fn a_root_made_after_the_start_is_watched_at_the_next_refresh() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("later");
        let mut w = DirWatcher::new("s", vec![root(&dir, false)]);
        assert!(w.watched.is_empty());
        std::fs::create_dir(&dir).unwrap();
        w.refresh();
        let file = dir.join("feed.csv");
        std::fs::write(&file, "").unwrap();
        append(&file, "x\n");
        assert!(hinted(&mut w, |h| h.paths.contains(&file) || h.rescan).await);
    }
}
