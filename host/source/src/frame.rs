//! Line framing: turns the bytes appended to a file into chunks of whole records.
//!
//! [`LineFramer`] is pure (no I/O): the reader appends what it read, then asks for chunks
//! until there is none. A partial last line is not an error: [`LineFramer::next_chunk`]
//! returns `None` and the bytes wait in the buffer until their `'\n'` arrives. A line
//! longer than `max_line_bytes` is skipped (its offset is reported through
//! [`LineFramer::take_skipped`]) and the next chunk's `start..end` covers it, so a
//! committed offset never points into the middle of a line.

use bytes::{Buf, Bytes, BytesMut};

/// A run of whole records cut from the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Framed {
    /// File offset where the chunk begins (before any skipped oversized line it covers).
    pub start: u64,
    /// File offset just past the last record (or skipped line) of the chunk.
    pub end: u64,
    /// Whole records, each ending with `'\n'` (`\r` before it is kept). May be empty when
    /// the chunk only covers skipped oversized lines.
    pub data: Bytes,
    /// Number of records in `data`.
    pub records: u64,
}

/// Incremental `'\n'` framer for one file generation.
#[derive(Debug)]
pub(crate) struct LineFramer {
    /// Bytes read but not yet handed on: always starts at a line start unless `skipping`.
    buf: BytesMut,
    /// File offset of `buf[0]`.
    buf_offset: u64,
    /// Offset where the next chunk starts: `< buf_offset` when skipped lines precede.
    chunk_start: u64,
    /// `buf[..scanned]` is known to hold no `'\n'` (saves rescanning a growing partial line).
    scanned: usize,
    /// Inside an oversized line: bytes are dropped until its `'\n'`.
    skipping: bool,
    /// Offsets of oversized lines skipped since the last [`LineFramer::take_skipped`].
    skipped: Vec<u64>,
    max_line_bytes: usize,
    max_chunk_bytes: usize,
}

impl LineFramer {
    /// A framer whose next byte is at file offset `offset` (a line start).
    pub(crate) fn new(offset: u64, max_line_bytes: usize, max_chunk_bytes: usize) -> Self {
        LineFramer {
            buf: BytesMut::new(),
            buf_offset: offset,
            chunk_start: offset,
            scanned: 0,
            skipping: false,
            skipped: Vec::new(),
            max_line_bytes: max_line_bytes.max(1),
            max_chunk_bytes: max_chunk_bytes.max(1),
        }
    }

    /// File offset of the next byte to read (everything before it is buffered or handed on).
    pub(crate) fn read_pos(&self) -> u64 {
        self.buf_offset + self.buf.len() as u64
    }

    /// Offset just past the last byte handed on in a chunk: the resumable position.
    pub(crate) fn committed(&self) -> u64 {
        self.chunk_start
    }

    /// Bytes read but not handed on (a partial line, or part of an oversized line).
    pub(crate) fn pending_bytes(&self) -> u64 {
        self.read_pos() - self.chunk_start
    }

    /// How many bytes the reader should read next: enough to fill a chunk, or to finish
    /// (or disqualify) a long line already buffered. Never 0.
    pub(crate) fn read_window(&self) -> usize {
        if self.skipping {
            return self.max_chunk_bytes;
        }
        let buffered = self.buf.len();
        match self.max_chunk_bytes.checked_sub(buffered) {
            Some(room) if room > 0 => room,
            _ => (self.max_line_bytes + 1).saturating_sub(buffered).max(1),
        }
    }

    /// Appends `n` bytes produced by `fill` (which returns how many it actually wrote).
    pub(crate) fn fill<E>(
        &mut self,
        n: usize,
        fill: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        let old = self.buf.len();
        self.buf.resize(old + n, 0);
        let got = match fill(&mut self.buf[old..]) {
            Ok(got) => got.min(n),
            Err(e) => {
                self.buf.truncate(old);
                return Err(e);
            }
        };
        self.buf.truncate(old + got);
        Ok(got)
    }

    /// Appends bytes that follow the ones already pushed.
    #[cfg(test)]
    pub(crate) fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Offsets of the oversized lines skipped since the last call.
    pub(crate) fn take_skipped(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.skipped)
    }

    /// The next chunk of whole records, or `None` when only a partial line (or nothing)
    /// is buffered. Call until `None` after each push.
    pub(crate) fn next_chunk(&mut self) -> Option<Framed> {
        if self.skipping {
            match memchr::memchr(b'\n', &self.buf) {
                None => {
                    self.discard(self.buf.len());
                    return None;
                }
                Some(nl) => {
                    self.discard(nl + 1);
                    self.skipping = false;
                }
            }
        }
        let mut last_end = 0; // end of the whole records taken so far
        let mut records = 0;
        loop {
            let from = last_end.max(if last_end == 0 { self.scanned } else { 0 });
            let Some(i) = memchr::memchr(b'\n', &self.buf[from..]) else {
                break;
            };
            let nl = from + i;
            if nl - last_end > self.max_line_bytes {
                if last_end > 0 {
                    break; // hand on the records before it; the next call drops it
                }
                self.skipped.push(self.buf_offset);
                self.discard(nl + 1);
                continue;
            }
            if last_end > 0 && nl + 1 > self.max_chunk_bytes {
                break;
            }
            last_end = nl + 1;
            records += 1;
        }
        if last_end == 0 {
            let partial = self.buf.len();
            if partial > self.max_line_bytes {
                self.skipped.push(self.buf_offset);
                self.skipping = true;
                self.discard(partial);
            } else {
                self.scanned = partial;
            }
            if self.chunk_start < self.buf_offset && !self.skipping {
                let (start, end) = (self.chunk_start, self.buf_offset);
                self.chunk_start = end;
                return Some(Framed {
                    start,
                    end,
                    data: Bytes::new(),
                    records: 0,
                });
            }
            return None;
        }
        let data = self.buf.split_to(last_end).freeze();
        self.buf_offset += last_end as u64;
        self.scanned = 0;
        let start = self.chunk_start;
        self.chunk_start = self.buf_offset;
        Some(Framed {
            start,
            end: self.buf_offset,
            data,
            records,
        })
    }

    /// Drops `n` bytes from the front of the buffer (part of a skipped line).
    fn discard(&mut self, n: usize) {
        self.buf.advance(n);
        self.buf_offset += n as u64;
        self.scanned = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(f: &mut LineFramer) -> Vec<Framed> {
        std::iter::from_fn(|| f.next_chunk()).collect()
    }

    #[test]
    fn whole_lines_in_one_chunk() {
        let mut f = LineFramer::new(0, 100, 1000);
        f.push(b"a\nbb\n");
        let c = drain(&mut f);
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].start, c[0].end, c[0].records), (0, 5, 2));
        assert_eq!(&c[0].data[..], b"a\nbb\n");
        assert_eq!(f.committed(), 5);
    }

    #[test]
    fn partial_line_waits_across_pushes() {
        let mut f = LineFramer::new(10, 100, 1000);
        f.push(b"one\ntw");
        let c = drain(&mut f);
        assert_eq!(&c[0].data[..], b"one\n");
        assert_eq!((c[0].start, c[0].end), (10, 14));
        f.push(b"o-still");
        assert!(
            f.next_chunk().is_none(),
            "a partial line is None, not an error"
        );
        assert_eq!(f.read_pos(), 23);
        assert_eq!(f.committed(), 14);
        f.push(b"\nthree");
        let c = drain(&mut f);
        assert_eq!(&c[0].data[..], b"two-still\n");
        assert_eq!((c[0].start, c[0].end), (14, 24));
        assert_eq!(f.pending_bytes(), 5);
    }

    #[test]
    fn crlf_is_kept_in_the_record() {
        let mut f = LineFramer::new(0, 100, 1000);
        f.push(b"a,b\r\nc,d\r");
        let c = drain(&mut f);
        assert_eq!(&c[0].data[..], b"a,b\r\n");
        f.push(b"\n");
        assert_eq!(&drain(&mut f)[0].data[..], b"c,d\r\n");
    }

    #[test]
    fn oversized_line_in_the_middle_is_skipped_and_covered() {
        let mut f = LineFramer::new(0, 4, 1000);
        f.push(b"ok\n0123456789\nfine\n");
        let c = drain(&mut f);
        assert_eq!(c.len(), 2);
        assert_eq!(&c[0].data[..], b"ok\n");
        assert_eq!((c[0].start, c[0].end), (0, 3));
        assert_eq!(&c[1].data[..], b"fine\n");
        assert_eq!((c[1].start, c[1].end), (3, 19), "covers the skipped line");
        assert_eq!(f.take_skipped(), vec![3]);
    }

    #[test]
    fn oversized_line_across_pushes_is_skipped() {
        let mut f = LineFramer::new(0, 4, 1000);
        f.push(b"0123");
        assert!(f.next_chunk().is_none());
        f.push(b"456");
        assert!(f.next_chunk().is_none());
        assert_eq!(f.take_skipped(), vec![0]);
        f.push(b"789");
        assert!(f.next_chunk().is_none());
        f.push(b"\n");
        let c = drain(&mut f);
        assert_eq!(c.len(), 1, "an empty chunk lets the caller commit past it");
        assert_eq!((c[0].start, c[0].end, c[0].records), (0, 11, 0));
        assert!(c[0].data.is_empty());
        f.push(b"ok\n");
        let c = drain(&mut f);
        assert_eq!((c[0].start, c[0].end), (11, 14));
        assert!(f.take_skipped().is_empty());
    }

    #[test]
    fn line_of_exactly_max_is_kept() {
        let mut f = LineFramer::new(0, 4, 1000);
        f.push(b"abcd\n");
        assert_eq!(&drain(&mut f)[0].data[..], b"abcd\n");
    }

    #[test]
    fn chunks_are_capped_at_whole_records() {
        let mut f = LineFramer::new(0, 100, 6);
        f.push(b"aa\nbb\ncc\nlonger-than-cap\n");
        let c: Vec<_> = drain(&mut f).into_iter().map(|c| c.data).collect();
        assert_eq!(c, vec![&b"aa\nbb\n"[..], b"cc\n", b"longer-than-cap\n"]);
    }

    #[test]
    fn read_window_grows_for_a_long_partial_line() {
        let mut f = LineFramer::new(0, 20, 8);
        assert_eq!(f.read_window(), 8);
        f.push(b"0123456789");
        assert!(f.next_chunk().is_none());
        assert_eq!(f.read_window(), 11, "up to max_line + 1 to find its end");
        let n = f.fill(11, |d| -> Result<usize, ()> {
            d[..3].copy_from_slice(b"ab\n");
            Ok(3)
        });
        assert_eq!(n, Ok(3));
        assert_eq!(&drain(&mut f)[0].data[..], b"0123456789ab\n");
    }
}
