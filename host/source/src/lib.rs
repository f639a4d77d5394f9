//! File append → records: the source stage of wasmeter.
//!
//! [`FileSource`] tails the files matching glob patterns. It learns about changes from
//! `notify` watches on their directories and, because inotify is only a hint, from a
//! periodic reconcile scan. New bytes are read with `pread` when they are few (a live
//! append's records) and through a guarded memory map when they are many (a file
//! truncated under the map can never SIGBUS the host), framed into whole
//! `'\n'`-terminated records, and handed on as [`SourceEvent::Chunk`]s over a bounded
//! channel. Rotation (rename + create) and truncation are detected and reported; the
//! pipeline commits each chunk's `end` once processed and saves the offsets with
//! [`Checkpoint::save`] (atomic), passing them back to [`FileSource::new`] on restart, so
//! records are neither lost nor repeated. [`SystemSource`] reads whole `/proc` files on an
//! interval.
//!
//! Descriptors are a budget: call [`raise_nofile_limit`] once at start; the file sources
//! then keep at most [`FileSourceConfig::max_open_files`] files open (by default half the
//! soft limit, [`default_open_files`]). Files beyond it wait in a fair queue; idle files
//! are closed and reopened, by identity, when they grow. [`SourceStats`] shows the
//! budget, the files open and the files waiting.
//!
//! ```no_run
//! use wasmeter_source::{Checkpoint, FileSource, FileSourceConfig, SourceEvent};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! wasmeter_source::raise_nofile_limit()?;
//! let resume = Checkpoint::load("state/pipeline.checkpoint".as_ref())?.unwrap_or_default();
//! let config = FileSourceConfig {
//!     name: "trades".into(),
//!     include: vec!["/data/trades/*.csv".into()],
//!     ..Default::default()
//! };
//! let source = FileSource::new(config, resume.files)?;
//! let (tx, mut rx) = tokio::sync::mpsc::channel(64);
//! let cancel = CancellationToken::new();
//! let task = tokio::spawn(source.run(tx, cancel.clone()));
//! while let Some(event) = rx.recv().await {
//!     if let SourceEvent::Chunk(chunk) = event {
//!         // process chunk.data, then commit chunk.end for chunk.file
//!         # let _ = chunk;
//!     }
//! }
//! cancel.cancel();
//! task.await??;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! One job per module, in data-path order:
//! - `config`: [`FileSourceConfig`], [`StartAt`]; validated once.
//! - `discover`: glob expansion and the directories to watch.
//! - `watch`: the source's own inotify instance, read on its thread; events folded
//!   into "changed"/"rescan" hints.
//! - `files`: the set of tailed files; scans decide new / rotated / deleted / moved away,
//!   close idle files, find checkpointed files renamed while stopped.
//! - `service`: serving queued files: open under the budget, read round robin, hand
//!   descriptors on, reopen by identity, report files gone.
//! - `queue`: the fair order (ready round robin, waiting first in first out).
//! - `budget`: descriptor permits, per source and per process.
//! - `limits`: `RLIMIT_NOFILE`: raising it, the default budget.
//! - `locate`: where given `(dev, inode)`s are in the watched directories.
//! - `tail`: one file's reader: stat, read a window, detect truncation, emit chunks.
//! - `mmap`: the guarded mapped copy and its SIGBUS handler (the only `unsafe`).
//! - `frame`: pure line framing; a partial line waits, an oversized line is skipped.
//! - `fingerprint`: [`FileKey`], identity that survives renames and detects reuse.
//! - `event`: [`SourceEvent`], [`Chunk`], [`FileCheckpoint`].
//! - `source`: [`FileSource`], the loop on a thread of its own: hints, the reconcile
//!   timer, file I/O inline, back-pressured sends, cancellation.
//! - `readers`: where the events go: one [`Reader`], or the shards of a pipeline reading
//!   one source, each from its own checkpoint (reads cut at their offsets; a slow one
//!   detached to a source of its own).
//! - `hold`: chunks held back from a shard none of whose records they carry ([`Route`]),
//!   sent joined to its next one.
//! - `checkpoint`: [`Checkpoint`], the atomic, versioned, checksummed binary offsets file
//!   (JSON version 1 still read).
//! - `system`: [`SystemSource`], `/proc` on an interval.
//! - `progress`: catch-up progress of large backlogs, logged every few seconds.
//! - `stats`: [`SourceStats`] counters, changed only through typed methods that also log.
//! - `error`: [`SourceError`].

mod budget;
mod checkpoint;
mod config;
mod discover;
mod error;
mod event;
mod files;
mod fingerprint;
mod frame;
mod hold;
mod limits;
mod locate;
mod mmap;
mod progress;
mod queue;
mod readers;
mod service;
mod source;
mod stats;
mod system;
mod tail;
mod watch;

pub use checkpoint::{CHECKPOINT_VERSION, Checkpoint, StreamedValue};
pub use config::{FileSourceConfig, StartAt};
pub use error::SourceError;
pub use event::{Chunk, FileCheckpoint, SourceEvent};
pub use fingerprint::{FINGERPRINT_BYTES, FileKey};
pub use hold::{HOLD_FOR, Route};
pub use limits::{
    NofileLimit, OPEN_FILES_DIVISOR, default_open_files, nofile_limit, open_files_for,
    raise_nofile_limit,
};
pub use readers::Reader;
pub use source::FileSource;
pub use stats::{SourceStats, StatsSnapshot};
pub use system::{SystemReading, SystemSource};
