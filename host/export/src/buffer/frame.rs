//! A frame in a buffer segment: `body length (u32 LE) | samples (u32 LE) |
//! CRC-32 of samples and body (u32 LE) | body`.

/// Bytes before a frame's body.
pub const HEADER: usize = 12;

/// The largest body a frame may carry (a request body; batches are far smaller).
pub const MAX_BODY: usize = 64 << 20;

/// Appends a frame to `out`.
pub fn write(out: &mut Vec<u8>, samples: u32, body: &[u8]) {
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&samples.to_le_bytes());
    out.extend_from_slice(&checksum(samples, body).to_le_bytes());
    out.extend_from_slice(body);
}

/// The CRC-32 a frame carries.
pub fn checksum(samples: u32, body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&samples.to_le_bytes());
    h.update(body);
    h.finalize()
}

/// A frame's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Body length.
    pub len: u32,
    /// Samples in the body.
    pub samples: u32,
    /// The body's checksum.
    pub crc: u32,
}

impl Header {
    /// Reads a header; `None` if `b` is too short or the length is impossible.
    pub fn read(b: &[u8]) -> Option<Header> {
        let word = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        if b.len() < HEADER {
            return None;
        }
        let h = Header {
            len: word(0),
            samples: word(4),
            crc: word(8),
        };
        (h.len as usize <= MAX_BODY).then_some(h)
    }

    /// The whole frame's size on disk.
    pub fn size(&self) -> u64 {
        (HEADER + self.len as usize) as u64
    }
}

/// What a scan of a segment found: each whole frame (offset and header, checksum
/// verified), and where and why it stopped early, if it did.
#[derive(Debug, Default)]
pub struct Scan {
    /// Whole frames with a good checksum.
    pub frames: Vec<(u64, Header)>,
    /// Frames whose checksum did not match (skipped): offset and samples.
    pub corrupt: Vec<(u64, u32)>,
    /// Where the readable part ends, if bytes after it were not frames.
    pub torn_at: Option<u64>,
}

/// Reads every frame of a segment's bytes.
pub fn scan(bytes: &[u8]) -> Scan {
    let mut scan = Scan::default();
    let mut at = 0usize;
    while at < bytes.len() {
        let header = match Header::read(&bytes[at..]) {
            Some(h) if at + h.size() as usize <= bytes.len() => h,
            _ => {
                scan.torn_at = Some(at as u64);
                break;
            }
        };
        let body = &bytes[at + HEADER..at + header.size() as usize];
        if checksum(header.samples, body) == header.crc {
            scan.frames.push((at as u64, header));
        } else {
            scan.corrupt.push((at as u64, header.samples));
        }
        at += header.size() as usize;
    }
    scan
}
