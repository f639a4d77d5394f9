//! The crate's error type: every message names the pattern, path or field at fault.

use std::io;
use std::path::PathBuf;

/// Errors of the file source, the system source and checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// An include or exclude glob does not parse.
    #[error("source {source_name:?}: invalid glob pattern {pattern:?}: {problem}")]
    BadPattern {
        /// The source's configured name.
        source_name: String,
        /// The pattern as configured.
        pattern: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A configuration value is out of range.
    #[error("source {source_name:?}: invalid config field `{field}`: {problem}")]
    Config {
        /// The source's configured name.
        source_name: String,
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The checkpoint file exists but is not a valid checkpoint.
    #[error("checkpoint {path}: corrupt: {problem}")]
    CheckpointCorrupt {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The checkpoint file was written by an incompatible version.
    #[error(
        "checkpoint {path}: unsupported version {version} (this build reads versions 1 (JSON) and 2 (binary))"
    )]
    CheckpointVersion {
        /// The checkpoint file.
        path: PathBuf,
        /// The version it declares.
        version: u64,
    },
    /// An I/O operation on a path failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`"read checkpoint"`, `"fsync"`, ...).
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The source's thread could not start, or panicked.
    #[error("source {source_name:?}: {problem}")]
    Task {
        /// The source's configured name.
        source_name: String,
        /// What happened to the thread.
        problem: String,
    },
}

impl SourceError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        SourceError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
