//! Chunks that arrived together are processed together. While the pipeline
//! works on one chunk, the sources may queue more (under load, dozens: a live
//! feed of one record per write brings a chunk of a record or two each); taken
//! one at a time, each paid for a collector call, a delta call, a publish and a
//! broker flush of its own. The pipeline takes every chunk already waiting (up
//! to [`MAX_CHUNKS`] and [`MAX_BYTES`]), merges those that continue one
//! another in a file, and publishes and flushes the group once (its output
//! is published sooner when it grows past [`PUBLISH_AT_ITEMS`]). A chunk that
//! waits for nothing is not held back: the group is what was already queued.

use bytes::BytesMut;
use wasmeter_source::Chunk;

/// Most chunks (as they arrived) taken into one group.
pub(crate) const MAX_CHUNKS: usize = 256;

/// Most bytes of records taken into one group.
pub(crate) const MAX_BYTES: usize = 1 << 20;

/// Admitted items (topic writes, events, samples) past which a group's output
/// is published before the group ends: a backlog's large calls publish one by
/// one as before, so the output held at a time is about one call's, while a
/// live feed's small chunks publish once per group.
pub(crate) const PUBLISH_AT_ITEMS: usize = 65_536;

/// Adds `chunk` to `group`: merged into the group's last chunk of the same
/// file when it continues it, else as a chunk of its own. The records of one
/// file stay in order; records of different files have no order among them.
pub(crate) fn push(group: &mut Vec<Chunk>, chunk: Chunk) {
    let same_file = group
        .iter_mut()
        .rev()
        .find(|c| c.file == chunk.file && c.path == chunk.path);
    match same_file {
        Some(last) if continues(last, &chunk) => {
            let mut data = BytesMut::with_capacity(last.data.len() + chunk.data.len());
            data.extend_from_slice(&last.data);
            data.extend_from_slice(&chunk.data);
            last.data = data.freeze();
            last.end = chunk.end;
            last.file_size = last.file_size.max(chunk.file_size);
        }
        _ => group.push(chunk),
    }
}

/// Whether `next` starts where `last` ends, neither with skipped oversized
/// lines (whose offsets their data does not cover).
fn continues(last: &Chunk, next: &Chunk) -> bool {
    let exact = |c: &Chunk| c.end - c.start == c.data.len() as u64;
    last.end == next.start && exact(last) && exact(next)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use bytes::Bytes;
    use wasmeter_source::FileKey;

    use super::*;

    /// File keys come from the file source, or from a checkpoint.
    fn key(ino: u64) -> FileKey {
        let json = format!(r#"{{"dev": 1, "ino": {ino}, "fingerprint": "00000000000000ab"}}"#);
        serde_json::from_str(&json).unwrap()
    }

    fn chunk(file: u64, start: u64, data: &'static str) -> Chunk {
        Chunk {
            file: key(file),
            path: Arc::from(Path::new(&format!("/feed/{file}.csv"))),
            start,
            end: start + data.len() as u64,
            data: Bytes::from_static(data.as_bytes()),
            file_size: start + data.len() as u64,
        }
    }

    fn texts(group: &[Chunk]) -> Vec<(u64, u64, &str)> {
        group
            .iter()
            .map(|c| (c.start, c.end, std::str::from_utf8(&c.data).unwrap()))
            .collect()
    }

    #[test]
    fn chunks_that_continue_a_file_merge_in_order() {
        let mut group = vec![chunk(1, 0, "a,1\n")];
        push(&mut group, chunk(2, 0, "x,1\n"));
        push(&mut group, chunk(1, 4, "a,2\nb,3\n"));
        push(&mut group, chunk(2, 4, "x,2\n"));
        push(&mut group, chunk(1, 12, "a,4\n"));
        assert_eq!(
            texts(&group),
            [(0, 16, "a,1\na,2\nb,3\na,4\n"), (0, 8, "x,1\nx,2\n")]
        );
        assert_eq!(group[0].file_size, 16);
    }

    #[test]
    fn a_gap_or_skipped_lines_keep_chunks_apart() {
        let mut group = vec![chunk(1, 0, "a,1\n")];
        // Bytes 4..10 were never in a chunk (another reader's, or skipped).
        push(&mut group, chunk(1, 10, "a,2\n"));
        let mut skipped = chunk(1, 14, "a,3\n");
        skipped.end += 100; // an oversized line skipped after the record
        push(&mut group, skipped);
        push(&mut group, chunk(1, 118, "a,4\n"));
        assert_eq!(
            texts(&group),
            [
                (0, 4, "a,1\n"),
                (10, 14, "a,2\n"),
                (14, 118, "a,3\n"),
                (118, 122, "a,4\n")
            ]
        );
    }
}
