//! Checksummed frames, the unit of every file the store writes.
//!
//! A frame is `len: u32 LE | crc: u32 LE | payload (len bytes)`, where `crc` is
//! the CRC-32 of the four length bytes followed by the payload. Files are read
//! back with [`scan`], which reads in bounded windows, hands every valid frame
//! to a callback and describes every stretch of bytes it could not use: a
//! corrupt frame whose length still leads to a valid frame is skipped; bytes
//! after which no valid frame can be found within [`RESYNC_WINDOW`] are a torn
//! tail, to be truncated by the caller.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Bytes of a frame header.
pub(crate) const HEADER: usize = 8;
/// How far past a bad frame [`scan`] looks for the next valid one.
pub(crate) const RESYNC_WINDOW: u64 = 1 << 20;
const READ_WINDOW: usize = 8 << 20;

/// CRC of a frame: over the length bytes, then the payload.
fn checksum(len_bytes: &[u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len_bytes);
    h.update(payload);
    h.finalize()
}

/// Appends one frame holding `payload` to `out`.
pub(crate) fn put(out: &mut Vec<u8>, payload: &[u8]) {
    let start = begin(out);
    out.extend_from_slice(payload);
    finish(out, start);
}

/// Starts a frame in `out` whose payload is then appended in place; returns
/// the frame's start for [`finish`].
pub(crate) fn begin(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER]);
    start
}

/// Completes the frame started at `start` by [`begin`].
pub(crate) fn finish(out: &mut [u8], start: usize) {
    let len = (out.len() - start - HEADER) as u32;
    let len_bytes = len.to_le_bytes();
    let crc = checksum(&len_bytes, &out[start + HEADER..]);
    out[start..start + 4].copy_from_slice(&len_bytes);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Checks a whole frame held in `buf` (exactly one frame) and returns its payload.
pub(crate) fn parse_exact(buf: &[u8]) -> Option<&[u8]> {
    match parse_at(buf, 0, u32::MAX) {
        Parsed::Valid(len) if HEADER + len as usize == buf.len() => Some(&buf[HEADER..]),
        _ => None,
    }
}

enum Parsed {
    /// A valid frame with this payload length.
    Valid(u32),
    /// Not enough bytes for the header or the claimed payload.
    Short,
    /// Header and payload present but the checksum does not match, or the
    /// length is implausible.
    Bad,
}

fn parse_at(buf: &[u8], pos: usize, max_payload: u32) -> Parsed {
    let Some(h) = buf.get(pos..pos + HEADER) else {
        return Parsed::Short;
    };
    let len_bytes = [h[0], h[1], h[2], h[3]];
    let len = u32::from_le_bytes(len_bytes);
    if len == 0 || len > max_payload {
        return Parsed::Bad;
    }
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    let Some(payload) = buf.get(pos + HEADER..pos + HEADER + len as usize) else {
        return Parsed::Short;
    };
    if checksum(&len_bytes, payload) == crc {
        Parsed::Valid(len)
    } else {
        Parsed::Bad
    }
}

/// A stretch of a file that [`scan`] could not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Gap {
    /// File offset where the unusable bytes start.
    pub offset: u64,
    /// Number of unusable bytes.
    pub bytes: u64,
    /// Whether this is the file's tail (to be truncated) rather than a
    /// skipped stretch in the middle.
    pub tail: bool,
    /// What was wrong.
    pub reason: &'static str,
}

/// What [`scan`] found.
#[derive(Debug, Default)]
pub(crate) struct ScanReport {
    /// Valid frames handed to the callback and accepted by it.
    pub frames: u64,
    /// Unusable stretches, in file order.
    pub gaps: Vec<Gap>,
    /// End of the last usable frame: the length to truncate the file to.
    pub valid_end: u64,
}

/// Reads the frames of `file` from `start` to its end. `on_frame(offset,
/// payload)` returns `false` when the payload does not decode, which makes
/// the frame a gap too. Frames longer than `max_payload` are treated as corrupt.
pub(crate) fn scan(
    file: &File,
    start: u64,
    max_payload: u32,
    mut on_frame: impl FnMut(u64, &[u8]) -> bool,
) -> io::Result<ScanReport> {
    let file_len = file.metadata()?.len();
    let mut report = ScanReport {
        valid_end: start,
        ..ScanReport::default()
    };
    let mut win_start = start;
    let mut buf: Vec<u8> = Vec::new();
    let mut pos = start; // absolute offset of the next frame
    loop {
        if pos >= file_len {
            break;
        }
        // Make sure the window holds [pos, pos + needed).
        let want = (READ_WINDOW as u64).max(u64::from(max_payload) + HEADER as u64 + RESYNC_WINDOW);
        let win_end = win_start + buf.len() as u64;
        if pos < win_start
            || pos + HEADER as u64 + u64::from(max_payload) + RESYNC_WINDOW > win_end
                && win_end < file_len
        {
            let len = want.min(file_len - pos) as usize;
            buf.resize(len, 0);
            file.read_exact_at(&mut buf, pos)?;
            win_start = pos;
        }
        let rel = (pos - win_start) as usize;
        match parse_at(&buf, rel, max_payload) {
            Parsed::Valid(len) => {
                let payload = &buf[rel + HEADER..rel + HEADER + len as usize];
                let next = pos + HEADER as u64 + u64::from(len);
                if on_frame(pos, payload) {
                    report.frames += 1;
                } else {
                    report.gaps.push(Gap {
                        offset: pos,
                        bytes: next - pos,
                        tail: false,
                        reason: "frame does not decode",
                    });
                }
                report.valid_end = next;
                pos = next;
            }
            Parsed::Short | Parsed::Bad => {
                // Look for the next valid frame within the resync window.
                let limit =
                    (file_len - pos).min(RESYNC_WINDOW + HEADER as u64 + u64::from(max_payload));
                let search_end = rel + limit as usize;
                let mut found = None;
                let mut q = rel + 1;
                while q + HEADER <= search_end.min(buf.len()) && ((q - rel) as u64) <= RESYNC_WINDOW
                {
                    if let Parsed::Valid(_) =
                        parse_at(&buf[..search_end.min(buf.len())], q, max_payload)
                    {
                        found = Some(q);
                        break;
                    }
                    q += 1;
                }
                match found {
                    Some(q) => {
                        let reason = if matches!(parse_at(&buf, rel, max_payload), Parsed::Short) {
                            "frame length runs past the next frame"
                        } else {
                            "checksum mismatch"
                        };
                        report.gaps.push(Gap {
                            offset: pos,
                            bytes: (q - rel) as u64,
                            tail: false,
                            reason,
                        });
                        pos = win_start + q as u64;
                    }
                    None => {
                        let reason = if matches!(parse_at(&buf, rel, max_payload), Parsed::Short) {
                            "incomplete frame at end of file (torn write)"
                        } else {
                            "invalid frame with no valid frame after it (torn write)"
                        };
                        report.gaps.push(Gap {
                            offset: pos,
                            bytes: file_len - pos,
                            tail: true,
                            reason,
                        });
                        break;
                    }
                }
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn frames(n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            put(&mut out, format!("payload number {i}").as_bytes());
        }
        out
    }

    fn scan_bytes(bytes: &[u8]) -> (Vec<String>, ScanReport) {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        let mut got = Vec::new();
        let rep = scan(&f, 0, 1024, |_, p| {
            got.push(String::from_utf8(p.to_vec()).unwrap());
            true
        })
        .unwrap();
        (got, rep)
    }

    #[test]
    fn clean_and_torn() {
        let b = frames(5);
        let (got, rep) = scan_bytes(&b);
        assert_eq!(got.len(), 5);
        assert!(rep.gaps.is_empty());
        assert_eq!(rep.valid_end, b.len() as u64);
        let (got, rep) = scan_bytes(&b[..b.len() - 3]);
        assert_eq!(got.len(), 4);
        assert_eq!(rep.gaps.len(), 1);
        assert!(rep.gaps[0].tail);
    }

    #[test]
    fn middle_flip_is_skipped() {
        let mut b = frames(5);
        b[30] ^= 0x40;
        let (got, rep) = scan_bytes(&b);
        assert_eq!(got.len(), 4, "{rep:?}");
        assert_eq!(rep.gaps.len(), 1);
        assert!(!rep.gaps[0].tail);
    }
}
