//! [`FileSource`]: the loop that tails a [`FileSet`] on a thread of its own and hands
//! its events on.
//!
//! The loop: scan → read a bounded batch → send each event (awaits while the channel is
//! full: that is the back-pressure) → repeat while reads are queued; when idle, wait for
//! a watcher hint, the reconcile timer, or cancellation. It runs on a thread of its own
//! that does the file I/O inline (no round trip through the blocking pool per read);
//! [`FileSource::run`] owns that thread and waits for it.

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
use crate::hold::Route;
use crate::limits::default_open_files;
use crate::readers::{Detach, Reader, Readers, Resumes};
use crate::stats::SourceStats;
use crate::tail::TailSettings;
use crate::watch::DirWatcher;

/// Tails the files matching a set of glob patterns and emits their records as
/// [`SourceEvent`]s.
///
/// Create it with [`FileSource::new`] (validates the config, compiles the patterns),
/// keep [`FileSource::stats`] for metrics, and spawn [`FileSource::run`]. The
/// shards of a pipeline can read one source together: [`FileSource::shared`] and
/// [`FileSource::run_readers`].
pub struct FileSource {
    config: FileSourceConfig,
    globs: Globs,
    resume: Resumes,
    stats: Arc<SourceStats>,
    budget: Budget,
    route: Option<Route>,
}

impl FileSource {
    /// Validates `config` and compiles its patterns. `resume` are the file positions of
    /// the last saved [`Checkpoint`](crate::Checkpoint): a file whose key (dev, inode and
    /// fingerprint) matches continues at its offset; entries matching no file are
    /// reported as [`SourceEvent::Closed`] after the first scan.
    pub fn new(config: FileSourceConfig, resume: Vec<FileCheckpoint>) -> Result<Self, SourceError> {
        Self::with_resumes(config, Resumes::single(resume))
    }

    /// One source for several readers (the shards of a pipeline), each resuming
    /// from its own checkpoint's positions (`resumes`, in the order of the readers
    /// given to [`FileSource::run_readers`]): every file is read once, from the
    /// lowest of their offsets, and each reader is sent only what lies past its
    /// own. `Ok(None)` if the checkpoints do not name the same files (each reader
    /// should then have a source of its own).
    pub fn shared(
        config: FileSourceConfig,
        resumes: &[Vec<FileCheckpoint>],
    ) -> Result<Option<Self>, SourceError> {
        match Resumes::merge(resumes) {
            Some(resume) => Self::with_resumes(config, resume).map(Some),
            None => Ok(None),
        }
    }

    fn with_resumes(config: FileSourceConfig, resume: Resumes) -> Result<Self, SourceError> {
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
            route: None,
        })
    }

    /// Tells a shared source which of its readers each chunk's records are for
    /// (the shards' keys): a chunk is held back from a reader it has no record
    /// for, and sent to it joined to the next one it takes (or once it is
    /// [`HOLD_FOR`](crate::HOLD_FOR) old), so that a shard is not woken for
    /// records it only skips.
    pub fn with_route(mut self, route: Route) -> Self {
        self.route = Some(route);
        self
    }

    /// Counts into `stats` instead of counters of its own.
    pub(crate) fn with_stats(mut self, stats: Arc<SourceStats>) -> Self {
        let cap = self
            .config
            .max_open_files
            .unwrap_or_else(default_open_files);
        self.budget = Budget::new(cap, stats.clone());
        self.stats = stats;
        self
    }

    /// The source's counters (shared; they keep counting while `run` runs).
    pub fn stats(&self) -> Arc<SourceStats> {
        self.stats.clone()
    }

    /// Tails until `cancel` fires or `tx`'s receiver is dropped (both return `Ok`).
    /// Waits while `tx` is full. Errors only if the source's thread could not start
    /// or panicked.
    ///
    /// The source runs on a thread of its own, which does its file I/O inline:
    /// a hint from the watcher wakes it, it reads and hands the events on. On the
    /// runtime's blocking pool each read was a round trip between two threads,
    /// twice the wake-ups at every append. Dropping this future stops the thread
    /// (at its next wait) as `cancel` does.
    pub async fn run(
        self,
        tx: mpsc::Sender<SourceEvent>,
        cancel: CancellationToken,
    ) -> Result<(), SourceError> {
        let stop = cancel.clone();
        self.run_readers(vec![Reader { tx, stop }], cancel).await
    }

    /// [`FileSource::run`] on the calling task, for a caller whose thread is one
    /// of its own (a current-thread runtime's, as a pipeline's thread is): the
    /// source's file I/O is done inline and blocks that thread, so this must not
    /// run on a worker of a multi-threaded runtime. The pipeline that reads the
    /// source on that thread is then woken by a send, with no other thread to
    /// wake in between.
    pub async fn run_here(self, tx: mpsc::Sender<SourceEvent>, cancel: CancellationToken) {
        debug_assert_eq!(
            tokio::runtime::Handle::current().runtime_flavor(),
            tokio::runtime::RuntimeFlavor::CurrentThread,
            "a file source reads inline: it runs on a thread of its own"
        );
        let stop = cancel.clone();
        self.tail(vec![Reader { tx, stop }], cancel).await;
    }

    /// [`FileSource::run`] for several readers (in the order of the checkpoints
    /// given to [`FileSource::shared`]): each gets every event, as far as it had
    /// not processed it, until its `stop` fires; the source stops when no reader
    /// is left or `cancel` fires.
    pub async fn run_readers(
        self,
        readers: Vec<Reader>,
        cancel: CancellationToken,
    ) -> Result<(), SourceError> {
        let name = self.config.name.clone();
        let failed = |problem: String| SourceError::Task {
            source_name: name.clone(),
            problem,
        };
        let stop = cancel.child_token();
        let _stop_on_drop = stop.clone().drop_guard();
        // The thread's own runtime: the watcher's descriptor and the timer are
        // polled by the thread itself, so an append wakes it directly.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| failed(format!("cannot start its runtime: {e}")))?;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("source-{name}"))
            .spawn(move || {
                runtime.block_on(self.tail(readers, stop));
                drop(runtime);
                let _ = done_tx.send(());
            })
            .map_err(|e| failed(format!("cannot start its thread: {e}")))?;
        done_rx
            .await
            .map_err(|_| failed("its thread panicked".to_string()))?;
        // It has returned: joining only reaps it.
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        Ok(())
    }

    /// The source's loop, on a thread of its own (see [`FileSource::run`]).
    async fn tail(self, readers: Vec<Reader>, cancel: CancellationToken) {
        let FileSource {
            config,
            globs,
            resume,
            stats,
            budget,
            route,
        } = self;
        let detach = Detach {
            config: config.clone(),
            stats: stats.clone(),
        };
        let mut readers = Readers::new(readers, &resume, detach, route, config.max_chunk_bytes);
        let name = config.name.clone();
        let include = config.include.clone();
        let read_bytes = config.max_chunk_bytes as u64;
        let settings = TailSettings {
            source: name.clone(),
            max_chunk_bytes: config.max_chunk_bytes,
            max_line_bytes: config.max_line_bytes,
        };
        let matches_nothing = globs.expand().0.is_empty();
        let watcher = DirWatcher::new(&settings.source, globs.roots().to_vec());
        let policy = OpenPolicy {
            start_at: config.start_at,
            rotate_wait: config.rotate_wait,
            idle_close: config.idle_close,
            budget,
        };
        let mut set = FileSet::new(settings, globs, stats, policy, resume.merged, watcher)
            .with_cuts(resume.cuts);
        if matches_nothing {
            // Not an error (files may come later), but rarely what was meant.
            tracing::warn!(source = %name, include = ?include, "no file matches the source's patterns yet; it waits for one");
        }
        let mut ticker = tokio::time::interval(config.reconcile_interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticker.tick().await; // the first tick is immediate; the first scan is below
        let mut full = true;
        while !cancel.is_cancelled() {
            let hint = set.take_hints();
            full |= hint.rescan || set.rescan_needed() || set.queue_paths(&hint.paths);
            if full {
                full = false;
                let mut events = Vec::new();
                set.scan(&mut events);
                readers.detach_past(set.take_shorter(), &cancel);
                if !readers.send_all(&cancel, events).await {
                    break;
                }
            }
            if set.has_queued() {
                let mut events = Vec::new();
                set.read(read_bytes, &mut events);
                readers.detach_past(set.take_shorter(), &cancel);
                if !readers.send_all(&cancel, events).await {
                    break;
                }
                continue; // look at new hints before reading on
            }
            if set.rescan_needed() {
                continue;
            }
            let held_due = readers.hold_due();
            let held = async {
                match held_due {
                    Some(due) => tokio::time::sleep_until(due).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                _ = set.changed() => {}
                _ = ticker.tick() => full = true,
                _ = readers.some_stopped() => {
                    readers.drop_stopped();
                    if readers.is_empty() {
                        break;
                    }
                }
                _ = held => if !readers.flush_due(&cancel).await {
                    break;
                },
            }
        }
        drop(set);
        readers.finish().await;
        debug!(source = name, "file source stopped");
    }
}
