//! What the file source hands to the pipeline.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::fingerprint::FileKey;

/// Whole records read from one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The file generation the records come from.
    pub file: FileKey,
    /// The path the file had when it was read.
    pub path: Arc<Path>,
    /// Offset of the chunk's first byte (or of a skipped oversized line before it).
    pub start: u64,
    /// Offset just past the chunk: commit this once the records are processed.
    pub end: u64,
    /// Whole records, each ending with `'\n'` (a `"\r\n"` ending is kept as is).
    /// `end - start == data.len()` unless skipped oversized lines sit in between; `data`
    /// is empty when the chunk only covers skipped lines (commit `end` all the same).
    pub data: Bytes,
    /// The file's size when the chunk was read (`>= end`): save it with the offset
    /// ([`FileCheckpoint::size`]) so that bytes lost with a deleted file can be told.
    pub file_size: u64,
}

/// An event of the file source, in file order.
///
/// Every key (file generation) goes through `Opened`, `Chunk`s, optionally `Truncated`
/// or `Rotated`, then `Closed` (the pipeline drops the key's offset on `Closed`, and only
/// there). A truncated file continues under a new key
/// with an `Opened` at offset 0. A rotated file's last `Chunk` always comes before the
/// `Opened` of the file that replaced it. `Closed` is also sent, after the first scan, for
/// resumed checkpoint entries whose file is gone (only those whose path matches this
/// source's patterns: several sources may share one checkpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceEvent {
    /// Records read from a file.
    Chunk(Chunk),
    /// Started (or resumed) tailing `file` at `offset`.
    Opened {
        /// The file generation.
        file: FileKey,
        /// Its path.
        path: Arc<Path>,
        /// Where reading starts: the checkpointed offset on resume, else 0 or the end.
        offset: u64,
    },
    /// The file became shorter than what was read (or was rewritten from the start):
    /// generation `file` ended (`Closed { file }` follows); reading restarts at 0 under a
    /// new key, announced by `Opened`. Counted in `truncations`.
    Truncated {
        /// The generation that ended.
        file: FileKey,
        /// Its path.
        path: Arc<Path>,
    },
    /// `path` now names another file; `old` was read to its end first. `Closed { old }`
    /// follows.
    Rotated {
        /// The file that was rotated away.
        old: FileKey,
        /// The path that now names a new file.
        path: Arc<Path>,
    },
    /// `file` is no longer tailed (deleted, rotated or moved away, and read to its end;
    /// or a resumed checkpoint entry whose file is gone): drop its offset.
    Closed {
        /// The file generation.
        file: FileKey,
    },
}

/// The committed position in one file, as saved in a [`Checkpoint`](crate::Checkpoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCheckpoint {
    /// The file generation.
    pub file: FileKey,
    /// Its last known path (informational: matching is by key).
    pub path: PathBuf,
    /// Offset just past the last processed record (a `Chunk::end`).
    pub offset: u64,
    /// The file's size when the source last read it (a `Chunk::file_size`; 0 if
    /// unknown). Should the file be gone at the next start, `size - offset` bytes are
    /// reported as lost.
    #[serde(default)]
    pub size: u64,
}
