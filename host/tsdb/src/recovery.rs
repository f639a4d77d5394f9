//! What opening a store found and dropped.

use std::fmt;
use std::path::PathBuf;

/// What was done with unusable bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropAction {
    /// The file was truncated at `offset` (a torn tail).
    Truncated,
    /// The bytes were skipped; the file was left as it is.
    Skipped,
    /// The whole file was set aside under this name and is no longer read.
    SetAside(PathBuf),
    /// The file was deleted (a leftover temporary file).
    Deleted,
}

/// One stretch of data that recovery could not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// The file.
    pub file: PathBuf,
    /// Byte offset where the dropped data starts.
    pub offset: u64,
    /// Bytes dropped.
    pub bytes: u64,
    /// Records (frames) dropped, when known (0 when the bytes did not parse as records).
    pub records: u64,
    /// Why.
    pub reason: String,
    /// What was done.
    pub action: DropAction,
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} bytes at offset {} ({} records): {}; ",
            self.file.display(),
            self.bytes,
            self.offset,
            self.records,
            self.reason
        )?;
        match &self.action {
            DropAction::Truncated => write!(f, "file truncated"),
            DropAction::Skipped => write!(f, "skipped"),
            DropAction::SetAside(p) => write!(f, "file set aside as {}", p.display()),
            DropAction::Deleted => write!(f, "file deleted"),
        }
    }
}

/// The report of [`crate::Store::open`]: what was loaded and what was dropped.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    /// Everything dropped, in the order found. Empty after a clean shutdown.
    pub dropped: Vec<Dropped>,
    /// Series loaded from the catalog.
    pub series: usize,
    /// Partition files loaded.
    pub partitions: usize,
    /// Chunks loaded from partition files.
    pub chunks: u64,
    /// The checkpoint the head was restored from, if any.
    pub checkpoint: Option<PathBuf>,
    /// Write-ahead-log segments replayed.
    pub wal_segments: usize,
    /// Samples replayed from the write-ahead log.
    pub wal_samples: u64,
    /// Samples in the log that were already on disk in chunks (not an error).
    pub wal_samples_already_stored: u64,
    /// Raw samples on disk newer than what a downsampled tier had seen (their
    /// log records were lost with a power failure), given to the tiers.
    pub raw_samples_folded: u64,
}

impl Recovery {
    /// Whether nothing was dropped.
    pub fn is_clean(&self) -> bool {
        self.dropped.is_empty()
    }

    /// Total bytes dropped.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped.iter().map(|d| d.bytes).sum()
    }
}

impl fmt::Display for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} series, {} partitions ({} chunks), {} WAL segments ({} samples replayed)",
            self.series, self.partitions, self.chunks, self.wal_segments, self.wal_samples
        )?;
        if self.raw_samples_folded > 0 {
            write!(
                f,
                "; {} raw samples the tiers had not seen folded into them",
                self.raw_samples_folded
            )?;
        }
        if self.dropped.is_empty() {
            write!(f, "; nothing dropped")
        } else {
            write!(
                f,
                "; dropped {} bytes in {} places:",
                self.dropped_bytes(),
                self.dropped.len()
            )?;
            for d in &self.dropped {
                write!(f, "\n  {d}")?;
            }
            Ok(())
        }
    }
}
