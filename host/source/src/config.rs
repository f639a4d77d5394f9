//! Configuration of a [`FileSource`](crate::FileSource), validated once in `FileSource::new`.

use std::time::Duration;

use crate::error::SourceError;

/// Where to start reading a file that has no matching checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartAt {
    /// From offset 0: everything already in the file is delivered.
    #[default]
    Beginning,
    /// After the last complete line present when the source starts: only new records.
    /// Applies to files found by the first scan; files that appear later are new and are
    /// always read from the beginning.
    End,
}

/// What a file source tails and how.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSourceConfig {
    /// Source name from the config: used in logs, metrics and error messages.
    pub name: String,
    /// Glob patterns of files to tail (`/data/trades/*.csv`, `logs/**/*.log`), absolute or
    /// relative to the working directory at start. A pattern without glob characters that
    /// names an existing directory means every regular file in it. `*` does not match `/`
    /// nor a leading `.` (editor swap files and our own temp files stay out).
    pub include: Vec<String>,
    /// Patterns of files to leave alone even if included. One without `/` is matched
    /// against the file name (`*.gz`), otherwise against the absolute path.
    pub exclude: Vec<String>,
    /// How often every pattern is re-expanded and every file re-checked even without a
    /// file-system event: inotify is a hint, this scan is the truth. Default 1 s.
    pub reconcile_interval: Duration,
    /// Largest chunk handed on, in bytes (a single line longer than this still goes out
    /// whole, up to `max_line_bytes`). Default 1 MiB.
    pub max_chunk_bytes: usize,
    /// A line longer than this (not counting its `'\n'`) is skipped, counted and logged
    /// with its path and offset. Default 1 MiB.
    pub max_line_bytes: usize,
    /// Where files without a checkpoint start. Default [`StartAt::Beginning`].
    pub start_at: StartAt,
    /// How long a file that was moved out of the patterns (and not replaced at its path)
    /// stays open, idle at its end, before it is closed. A writer that still holds it can
    /// append meanwhile. Default 5 s. (Deleted files close at their end; rotated files,
    /// whose path names a new file, close at their end before the new file is opened.)
    pub rotate_wait: Duration,
    /// Most files this source keeps open at once (its descriptor budget). Files beyond
    /// it wait their turn in a fair queue and are read with the descriptors the others
    /// give up; nothing is lost. `None` (the default): half the process's soft
    /// `RLIMIT_NOFILE` at the time the source is created (see
    /// [`default_open_files`](crate::default_open_files)), shared by all file sources of
    /// the process, which leaves the other half for the listener, client sockets,
    /// checkpoint writes and the runtime.
    pub max_open_files: Option<usize>,
    /// A file that read no new bytes for this long is closed; it keeps its position and
    /// identity and is reopened when a watcher event or the reconcile scan says it grew.
    /// Default 30 s.
    pub idle_close: Duration,
}

impl Default for FileSourceConfig {
    fn default() -> Self {
        FileSourceConfig {
            name: "file".to_owned(),
            include: Vec::new(),
            exclude: Vec::new(),
            reconcile_interval: Duration::from_secs(1),
            max_chunk_bytes: 1 << 20,
            max_line_bytes: 1 << 20,
            start_at: StartAt::Beginning,
            rotate_wait: Duration::from_secs(5),
            max_open_files: None,
            idle_close: Duration::from_secs(30),
        }
    }
}

impl FileSourceConfig {
    /// Checks the invariants the reader relies on.
    pub(crate) fn validate(&self) -> Result<(), SourceError> {
        let bad = |field, problem: &str| SourceError::Config {
            source_name: self.name.clone(),
            field,
            problem: problem.to_owned(),
        };
        if self.include.is_empty() {
            return Err(bad("include", "needs at least one pattern"));
        }
        if self.reconcile_interval.is_zero() {
            return Err(bad("reconcile_interval", "must be greater than zero"));
        }
        if self.max_chunk_bytes == 0 {
            return Err(bad("max_chunk_bytes", "must be greater than zero"));
        }
        if self.max_line_bytes == 0 {
            return Err(bad("max_line_bytes", "must be greater than zero"));
        }
        if self.max_open_files == Some(0) {
            return Err(bad("max_open_files", "must be greater than zero"));
        }
        Ok(())
    }
}
