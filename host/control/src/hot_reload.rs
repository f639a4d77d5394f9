//! Hot reload: when the file a plugin was read from is replaced (a finished write,
//! or a rename onto it), the plugin is reloaded through the supervisor: compiled
//! off the data path, initialised, smoke-tested and swapped in; or refused, with
//! the old version still running.
//!
//! Only finished writes count (`IN_CLOSE_WRITE`, a rename onto the file), so a
//! copy in progress is never loaded half-written; a short quiet period folds the bursts of
//! events one replacement makes into one reload, and the content hash tells a real
//! change from a touch.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::supervisor::Supervisor;

/// Events within this period after the first are one replacement.
const QUIET: Duration = Duration::from_millis(150);

/// How often the set of watched directories follows the registry.
const RESYNC: Duration = Duration::from_secs(2);

/// Watches the plugins' files until `stop`.
pub async fn watch(supervisor: Arc<Supervisor>, stop: CancellationToken) {
    let changed: Arc<Mutex<HashSet<PathBuf>>> = Arc::default();
    let wake = Arc::new(Notify::new());
    let mut watcher = {
        let (changed, wake) = (changed.clone(), wake.clone());
        match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            if finished_write(&event.kind) {
                lock(&changed).extend(event.paths);
                wake.notify_one();
            }
        }) {
            Ok(w) => w,
            Err(error) => {
                tracing::error!(%error, "cannot watch plugin files; hot reload is off");
                return;
            }
        }
    };
    let mut dirs: HashSet<PathBuf> = HashSet::new();
    loop {
        let files = supervisor.watched_files().await;
        sync_dirs(&mut watcher, &mut dirs, &files);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(RESYNC) => continue,
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(QUIET) => {}
        }
        let paths = std::mem::take(&mut *lock(&changed));
        for (file, name) in files.iter().filter(|(f, _)| paths.contains(f)) {
            tracing::info!(plugin = %name, file = %file.display(), "plugin file replaced; reloading");
            // The supervisor logs and announces the outcome of a reload it ran; a
            // reload it could not start (another change, shutdown) is logged here.
            if let Err(error) = supervisor.reload(name).await {
                tracing::warn!(plugin = %name, %error, "plugin file reload failed");
            }
        }
    }
}

/// Whether an event means a file now has its final content.
///
/// Only a write that was closed (`IN_CLOSE_WRITE`) or a rename onto the path.
/// Not a creation: a copy creates the file first and writes it afterwards, and
/// a slow copy would be tried half-written; its close comes when it is done.
/// Not a rename away from the path either.
fn finished_write(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(
                RenameMode::To | RenameMode::Both | RenameMode::Any
            ))
    )
}

/// Watches the directories of `files` (a file replaced by rename is a new inode,
/// so the directory is what is watched), and no others.
fn sync_dirs(
    watcher: &mut notify::RecommendedWatcher,
    dirs: &mut HashSet<PathBuf>,
    files: &[(PathBuf, String)],
) {
    let wanted: HashSet<PathBuf> = files
        .iter()
        .map(|(f, _)| match f.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => Path::new(".").to_path_buf(),
        })
        .collect();
    for gone in dirs.difference(&wanted).cloned().collect::<Vec<_>>() {
        let _ = watcher.unwatch(&gone);
        dirs.remove(&gone);
    }
    for dir in wanted {
        if !dirs.contains(&dir) {
            match watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    dirs.insert(dir);
                }
                Err(error) => {
                    tracing::warn!(dir = %dir.display(), %error, "cannot watch plugin directory")
                }
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
