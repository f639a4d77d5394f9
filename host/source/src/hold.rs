//! Chunks held back from a reader of a shared source that none of their records
//! are for.
//!
//! The shards of a pipeline read one source, and each keeps only the records
//! whose key is its own. Sent every chunk, a shard is woken for each one, also
//! for a chunk it only skips: every shard at each pass of the source that reads
//! anything. With a [`Route`], the source tells which readers a chunk has
//! records for and holds it back from the others. A held chunk is sent joined
//! to the next chunk of the same file that the reader does take (one chunk, one
//! wake-up), or on its own once it is [`HOLD_FOR`] old, would make the joined
//! chunk larger than a read, an event other than a chunk comes, or the reader
//! stops. A reader's offset so lags by at most that much; what it skipped needs
//! no processing, and after a restart it is skipped again.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::time::Instant;

use crate::event::{Chunk, SourceEvent};
use crate::fingerprint::FileKey;

/// Marks, in the second argument (one entry per reader of a shared source, in
/// the order they were given), each reader that one of the records in the first
/// (whole `'\n'`-terminated records) is for. Entries it leaves `false` mean "none
/// for this reader".
pub type Route = Arc<dyn Fn(&[u8], &mut [bool]) + Send + Sync>;

/// How long a chunk is held back from a reader at most.
pub const HOLD_FOR: Duration = Duration::from_millis(200);

/// The chunks held back from one reader, per file: each file's are contiguous
/// and joined into one.
#[derive(Debug, Default)]
pub(crate) struct Held {
    files: HashMap<FileKey, Joined>,
    /// When the oldest of them was held.
    since: Option<Instant>,
}

/// Contiguous chunks of one file, joined.
#[derive(Debug)]
struct Joined {
    path: Arc<Path>,
    start: u64,
    end: u64,
    file_size: u64,
    data: BytesMut,
}

impl Joined {
    fn into_chunk(self, file: FileKey) -> Chunk {
        Chunk {
            file,
            path: self.path,
            start: self.start,
            end: self.end,
            data: self.data.freeze(),
            file_size: self.file_size,
        }
    }
}

/// Whether a chunk's records fill it from `start` to `end` (no skipped
/// oversized line in it): only such chunks are joined, so that every byte of a
/// joined chunk is where its offset says.
fn gapless(chunk: &Chunk) -> bool {
    chunk.end - chunk.start == chunk.data.len() as u64 && !chunk.data.is_empty()
}

impl Held {
    /// When the oldest held chunk is due to be sent, if any is held.
    pub fn due(&self) -> Option<Instant> {
        self.since.map(|since| since + HOLD_FOR)
    }

    /// Holds `chunk` back (the reader has no record in it), appending to `out`
    /// what must be sent before it instead: the file's held chunks, if they
    /// cannot be joined with it (not contiguous, too large together), and the
    /// chunk itself if it has gaps.
    pub fn hold(&mut self, chunk: Chunk, max_bytes: usize, out: &mut Vec<SourceEvent>) {
        if !gapless(&chunk) {
            self.flush_file(chunk.file, out);
            out.push(SourceEvent::Chunk(chunk));
            return;
        }
        if let Some(joined) = self.files.get_mut(&chunk.file) {
            if joined.end == chunk.start && joined.data.len() + chunk.data.len() <= max_bytes {
                joined.data.extend_from_slice(&chunk.data);
                joined.end = chunk.end;
                joined.file_size = chunk.file_size;
                return;
            }
            self.flush_file(chunk.file, out);
        }
        let mut data = BytesMut::with_capacity(chunk.data.len());
        data.extend_from_slice(&chunk.data);
        self.files.insert(
            chunk.file,
            Joined {
                path: chunk.path,
                start: chunk.start,
                end: chunk.end,
                file_size: chunk.file_size,
                data,
            },
        );
        self.since.get_or_insert_with(Instant::now);
    }

    /// `chunk`, which the reader takes, with what is held of its file joined in
    /// front of it where they fit together (else the held part is sent first).
    pub fn take(&mut self, chunk: Chunk, max_bytes: usize, out: &mut Vec<SourceEvent>) {
        let Some(mut joined) = self.files.remove(&chunk.file) else {
            out.push(SourceEvent::Chunk(chunk));
            return;
        };
        self.forget_if_empty();
        if joined.end != chunk.start
            || !gapless(&chunk)
            || joined.data.len() + chunk.data.len() > max_bytes
        {
            out.push(SourceEvent::Chunk(joined.into_chunk(chunk.file)));
            out.push(SourceEvent::Chunk(chunk));
            return;
        }
        joined.data.extend_from_slice(&chunk.data);
        joined.end = chunk.end;
        joined.file_size = chunk.file_size;
        joined.path = chunk.path;
        out.push(SourceEvent::Chunk(joined.into_chunk(chunk.file)));
    }

    /// Appends every held chunk to `out` (before an event that is not a chunk,
    /// when they are due, or when the reader stops).
    pub fn flush(&mut self, out: &mut Vec<SourceEvent>) {
        let mut files: Vec<(FileKey, Joined)> = self.files.drain().collect();
        // In the order they were read from each file; across files any order is
        // a source's (files are read round robin).
        files.sort_by_key(|(file, _)| *file);
        out.extend(
            files
                .into_iter()
                .map(|(file, joined)| SourceEvent::Chunk(joined.into_chunk(file))),
        );
        self.since = None;
    }

    fn flush_file(&mut self, file: FileKey, out: &mut Vec<SourceEvent>) {
        if let Some(joined) = self.files.remove(&file) {
            out.push(SourceEvent::Chunk(joined.into_chunk(file)));
        }
        self.forget_if_empty();
    }

    fn forget_if_empty(&mut self) {
        if self.files.is_empty() {
            self.since = None;
        }
    }

    /// Whether nothing is held.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn key(n: u64) -> FileKey {
        FileKey::from_parts(1, n, 0)
    }

    fn chunk(file: FileKey, start: u64, data: &str) -> Chunk {
        Chunk {
            file,
            path: Arc::from(Path::new("a.log")),
            start,
            end: start + data.len() as u64,
            data: Bytes::copy_from_slice(data.as_bytes()),
            file_size: start + data.len() as u64,
        }
    }

    fn chunks(events: &[SourceEvent]) -> Vec<(u64, u64, String)> {
        events
            .iter()
            .map(|e| match e {
                SourceEvent::Chunk(c) => {
                    (c.start, c.end, String::from_utf8(c.data.to_vec()).unwrap())
                }
                other => panic!("not a chunk: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_held_chunk_goes_joined_to_the_next_one_the_reader_takes() {
        let mut held = Held::default();
        let mut out = Vec::new();
        held.hold(chunk(key(1), 0, "a\n"), 1024, &mut out);
        held.hold(chunk(key(1), 2, "b\n"), 1024, &mut out);
        assert!(out.is_empty());
        assert!(held.due().is_some());
        held.take(chunk(key(1), 4, "c\n"), 1024, &mut out);
        assert_eq!(chunks(&out), vec![(0, 6, "a\nb\nc\n".to_string())]);
        assert!(held.is_empty());
        assert_eq!(held.due(), None);
    }

    #[test]
    fn another_files_chunk_is_sent_alone() {
        let mut held = Held::default();
        let mut out = Vec::new();
        held.hold(chunk(key(1), 0, "a\n"), 1024, &mut out);
        held.take(chunk(key(2), 0, "x\n"), 1024, &mut out);
        assert_eq!(chunks(&out), vec![(0, 2, "x\n".to_string())]);
        assert!(!held.is_empty());
        out.clear();
        held.flush(&mut out);
        assert_eq!(chunks(&out), vec![(0, 2, "a\n".to_string())]);
        assert_eq!(held.due(), None);
    }

    #[test]
    fn chunks_that_do_not_fit_together_or_touch_are_sent_apart() {
        let mut held = Held::default();
        let mut out = Vec::new();
        // Too large together: the held one goes first, the new one is held.
        held.hold(chunk(key(1), 0, "aaa\n"), 6, &mut out);
        held.hold(chunk(key(1), 4, "bbb\n"), 6, &mut out);
        assert_eq!(chunks(&out), vec![(0, 4, "aaa\n".to_string())]);
        out.clear();
        // Not contiguous (bytes between them went elsewhere): apart, in order.
        held.take(chunk(key(1), 10, "c\n"), 1024, &mut out);
        assert_eq!(
            chunks(&out),
            vec![(4, 8, "bbb\n".to_string()), (10, 12, "c\n".to_string())]
        );
    }

    #[test]
    fn a_chunk_with_a_skipped_line_is_never_joined() {
        let mut held = Held::default();
        let mut out = Vec::new();
        held.hold(chunk(key(1), 0, "a\n"), 1024, &mut out);
        let mut gap = chunk(key(1), 2, "b\n");
        gap.end += 100; // an oversized line skipped after it
        held.hold(gap, 1024, &mut out);
        assert_eq!(
            chunks(&out),
            vec![(0, 2, "a\n".to_string()), (2, 104, "b\n".to_string())]
        );
        assert!(held.is_empty());
    }
}
