//! [`FileSource`]: the async shell that moves a [`FileSet`] between blocking calls and
//! hands its events on.
//!
//! The loop: scan (blocking) → read a bounded batch (blocking) → send each event (awaits
//! while the channel is full: that is the back-pressure) → repeat while reads are queued;
//! when idle, wait for a watcher hint, the reconcile timer, or cancellation. Path hints
//! are applied without I/O; anything touching the file system runs in `spawn_blocking`,
//! one call at a time, always awaited, so the task owns everything it starts.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::budget::Budget;
use crate::config::FileSourceConfig;
use crate::discover::Globs;
use crate::error::SourceError;
use crate::event::{FileCheckpoint, SourceEvent};
use crate::files::{FileSet, OpenPolicy};
use crate::limits::default_open_files;
use crate::stats::SourceStats;
use crate::tail::TailSettings;
use crate::watch::{DirWatcher, Hints};

/// Tails the files matching a set of glob patterns and emits their records as
/// [`SourceEvent`]s.
///
/// Create it with [`FileSource::new`] (validates the config, compiles the patterns),
/// keep [`FileSource::stats`] for metrics, and spawn [`FileSource::run`].
pub struct FileSource {
    config: FileSourceConfig,
    globs: Globs,
    resume: Vec<FileCheckpoint>,
    stats: Arc<SourceStats>,
    budget: Budget,
}

impl FileSource {
    /// Validates `config` and compiles its patterns. `resume` are the file positions of
    /// the last saved [`Checkpoint`](crate::Checkpoint): a file whose key (dev, inode and
    /// fingerprint) matches continues at its offset; entries matching no file are
    /// reported as [`SourceEvent::Closed`] after the first scan.
    pub fn new(config: FileSourceConfig, resume: Vec<FileCheckpoint>) -> Result<Self, SourceError> {
        config.validate()?;
        let cwd = std::env::current_dir()
            .map_err(|e| SourceError::io("read current directory", ".", e))?;
        let globs = Globs::new(&config.name, &config.include, &config.exclude, &cwd)?;
        let stats = Arc::<SourceStats>::default();
        let cap = config.max_open_files.unwrap_or_else(default_open_files);
        Ok(FileSource {
            config,
            globs,
            resume,
            budget: Budget::new(cap, stats.clone()),
            stats,
        })
    }

    /// The source's counters (shared; they keep counting while `run` runs).
    pub fn stats(&self) -> Arc<SourceStats> {
        self.stats.clone()
    }

    /// Tails until `cancel` fires or `tx`'s receiver is dropped (both return `Ok`).
    /// Waits while `tx` is full. Errors only if a blocking task panicked.
    pub async fn run(
        self,
        tx: mpsc::Sender<SourceEvent>,
        cancel: CancellationToken,
    ) -> Result<(), SourceError> {
        let FileSource {
            config,
            globs,
            resume,
            stats,
            budget,
        } = self;
        let name = config.name.clone();
        let include = config.include.clone();
        let read_bytes = config.max_chunk_bytes as u64;
        let hints = Arc::new(Hints::default());
        let settings = TailSettings {
            source: name.clone(),
            max_chunk_bytes: config.max_chunk_bytes,
            max_line_bytes: config.max_line_bytes,
        };
        let watch_hints = hints.clone();
        let (mut set, matches_nothing) = blocking(&name, move || {
            let matches_nothing = globs.expand().0.is_empty();
            let watcher = DirWatcher::new(&settings.source, globs.roots().to_vec(), watch_hints);
            let policy = OpenPolicy {
                start_at: config.start_at,
                rotate_wait: config.rotate_wait,
                idle_close: config.idle_close,
                budget,
            };
            let set = FileSet::new(settings, globs, stats, policy, resume, watcher);
            (Box::new(set), matches_nothing)
        })
        .await?;
        if matches_nothing {
            // Not an error (files may come later), but rarely what was meant.
            tracing::warn!(source = %name, include = ?include, "no file matches the source's patterns yet; it waits for one");
        }
        let mut ticker = tokio::time::interval(config.reconcile_interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticker.tick().await; // the first tick is immediate; the first scan is below
        let mut full = true;
        while !cancel.is_cancelled() {
            let hint = hints.take();
            full |= hint.rescan || set.rescan_needed() || set.queue_paths(&hint.paths);
            if full {
                full = false;
                let (s, events) = blocking(&name, move || {
                    let mut out = Vec::new();
                    set.scan(&mut out);
                    (set, out)
                })
                .await?;
                set = s;
                if !send_all(&tx, &cancel, events).await {
                    break;
                }
            }
            if set.has_queued() {
                let (s, events) = blocking(&name, move || {
                    let mut out = Vec::new();
                    set.read(read_bytes, &mut out);
                    (set, out)
                })
                .await?;
                set = s;
                if !send_all(&tx, &cancel, events).await {
                    break;
                }
                continue; // look at new hints before reading on
            }
            if set.rescan_needed() {
                continue;
            }
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                _ = hints.changed() => {}
                _ = ticker.tick() => full = true,
            }
        }
        debug!(source = name, "file source stopped");
        // Closing the files and dropping the watcher (which stops its thread) is cheap
        // and non-blocking; `set` goes here.
        drop(set);
        Ok(())
    }
}

/// Runs `f` on the blocking pool and waits for it.
async fn blocking<T: Send + 'static>(
    source: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SourceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SourceError::Task {
            source_name: source.to_owned(),
            problem: e.to_string(),
        })
}

/// Sends events in order; `false` if cancelled or the receiver is gone.
async fn send_all(
    tx: &mpsc::Sender<SourceEvent>,
    cancel: &CancellationToken,
    events: Vec<SourceEvent>,
) -> bool {
    for event in events {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return false,
            sent = tx.send(event) => if sent.is_err() {
                return false;
            },
        }
    }
    true
}
