//! The binary checkpoint format (version 2), little endian throughout:
//!
//! ```text
//! header   magic "WMCP" (4) | version u32 = 2 | body_len u64
//! body     file_count u32
//!          file_count x { dev u64 | ino u64 | fingerprint u64 | offset u64 | size u64 |
//!                         path_len u32 | path bytes }
//!          extra_count u32
//!          extra_count x { name_len u32 | name (UTF-8) | value_len u64 | value bytes }
//! trailer  crc32c u32 of header and body
//! ```
//! Plugin state bytes are stored as they are. [`encode`] streams into a writer while
//! computing the checksum, so a checkpoint is never assembled in memory; [`decode`]
//! checks the length, then the checksum, then parses with every length bounded by
//! what is left, naming the field at fault.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use super::Checkpoint;
use super::crc::{Crc32c, crc32c};
use crate::event::FileCheckpoint;
use crate::fingerprint::FileKey;

/// The first bytes of a binary checkpoint.
pub(crate) const MAGIC: &[u8; 4] = b"WMCP";
/// The binary format's version.
pub(crate) const VERSION: u32 = 2;
const HEADER_LEN: usize = 16;
const TRAILER_LEN: usize = 4;
/// Fixed part of a file entry: five u64 and the path length.
const FILE_FIXED: u64 = 5 * 8 + 4;

/// Size of `cp` encoded, in bytes.
pub(crate) fn encoded_len(cp: &Checkpoint) -> u64 {
    (HEADER_LEN + TRAILER_LEN) as u64 + body_len(cp)
}

fn body_len(cp: &Checkpoint) -> u64 {
    let files: u64 = cp
        .files
        .iter()
        .map(|f| FILE_FIXED + f.path.as_os_str().len() as u64)
        .sum();
    4 + files + 4 + extra_len(cp)
}

/// Bytes of the extra entries of `cp`.
fn extra_len(cp: &Checkpoint) -> u64 {
    cp.extra
        .iter()
        .map(|(k, v)| 4 + k.len() as u64 + 8 + v.len() as u64)
        .sum()
}

/// A writer that checksums what passes through it.
struct Summing<W> {
    inner: W,
    crc: Crc32c,
}

impl<W: Write> Summing<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc.update(bytes);
        self.inner.write_all(bytes)
    }
}

/// Writes `cp` to `w`; returns the bytes written. Large values are written straight
/// from `cp` (no copy).
pub(crate) fn encode(cp: &Checkpoint, w: impl Write) -> io::Result<u64> {
    let mut s = Summing {
        inner: w,
        crc: Crc32c::default(),
    };
    s.put(MAGIC)?;
    s.put(&VERSION.to_le_bytes())?;
    s.put(&body_len(cp).to_le_bytes())?;
    put_body(cp, cp.extra.len(), &mut |b| s.put(b))?;
    let crc = s.crc.finish();
    s.inner.write_all(&crc.to_le_bytes())?;
    Ok(encoded_len(cp))
}

/// `n` as a u32 count, or an error naming `what`.
fn count(n: usize, what: &str) -> io::Result<u32> {
    u32::try_from(n)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("too many {what}: {n}")))
}

/// The body of `cp` (its files, then `extra_count` and its entries) through `put`.
fn put_body(
    cp: &Checkpoint,
    extra_count: usize,
    put: &mut impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    put(&count(cp.files.len(), "files")?.to_le_bytes())?;
    for f in &cp.files {
        for v in [
            f.file.dev(),
            f.file.ino(),
            f.file.fingerprint(),
            f.offset,
            f.size,
        ] {
            put(&v.to_le_bytes())?;
        }
        let path = f.path.as_os_str().as_bytes();
        put(&count(path.len(), "path bytes")?.to_le_bytes())?;
        put(path)?;
    }
    put(&count(extra_count, "extra entries")?.to_le_bytes())?;
    for (name, value) in &cp.extra {
        put(&count(name.len(), "name bytes")?.to_le_bytes())?;
        put(name.as_bytes())?;
        put(&(value.len() as u64).to_le_bytes())?;
        put(value)?;
    }
    Ok(())
}

/// The value of the last entry of a checkpoint being written by
/// [`encode_streamed`]: written in pieces, its length unknown beforehand.
pub struct StreamedValue<'a> {
    w: BufWriter<&'a File>,
    len: u64,
    /// Bytes of the value to overwrite once it is complete (offset in the value).
    patches: Vec<(u64, Vec<u8>)>,
}

impl StreamedValue<'_> {
    /// Replaces the bytes at `at` of the value (already written) with `bytes`
    /// once the value is complete: a count known only at the end.
    pub fn patch(&mut self, at: u64, bytes: &[u8]) {
        self.patches.push((at, bytes.to_vec()));
    }

    /// Bytes of the value written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Nothing written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Write for StreamedValue<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.w.write(buf)?;
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

/// Writes `cp` to `file` followed by one more entry, `name`, whose value `stream`
/// writes in pieces (so that a large value is never held whole); returns the bytes
/// written. `stream` returning `false` or writing nothing leaves the entry out. The
/// lengths are written once known and the checksum is computed by reading the file
/// back (from the page cache): the bytes are those [`encode`] writes for `cp` with the
/// entry added.
pub(crate) fn encode_streamed(
    cp: &Checkpoint,
    name: &str,
    file: &File,
    stream: impl FnOnce(&mut StreamedValue<'_>) -> io::Result<bool>,
) -> io::Result<u64> {
    if cp.extra.contains_key(name) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("extra {name:?} given twice"),
        ));
    }
    let mut w = BufWriter::with_capacity(STREAM_BUFFER_BYTES, file);
    w.write_all(MAGIC)?;
    w.write_all(&VERSION.to_le_bytes())?;
    w.write_all(&0u64.to_le_bytes())?;
    put_body(cp, cp.extra.len() + 1, &mut |b| w.write_all(b))?;
    let entry_at = HEADER_LEN as u64 + body_len(cp);
    w.write_all(&count(name.len(), "name bytes")?.to_le_bytes())?;
    w.write_all(name.as_bytes())?;
    w.write_all(&0u64.to_le_bytes())?;
    let value_at = entry_at + 4 + name.len() as u64 + 8;
    let mut value = StreamedValue {
        w,
        len: 0,
        patches: Vec::new(),
    };
    let keep = stream(&mut value)? && !value.is_empty();
    value.w.flush()?;
    let StreamedValue { len, patches, .. } = value;
    let end = if keep {
        for (at, bytes) in patches {
            if at + bytes.len() as u64 > len {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("patch at {at} past the end of extra {name:?} ({len} bytes)"),
                ));
            }
            file.write_all_at(&bytes, value_at + at)?;
        }
        file.write_all_at(&len.to_le_bytes(), value_at - 8)?;
        value_at + len
    } else {
        let extra_count_at = entry_at - extra_len(cp) - 4;
        file.write_all_at(
            &count(cp.extra.len(), "extra entries")?.to_le_bytes(),
            extra_count_at,
        )?;
        entry_at
    };
    file.set_len(end)?;
    file.write_all_at(&(end - HEADER_LEN as u64).to_le_bytes(), 8)?;
    let mut crc = Crc32c::default();
    let mut buf = vec![0u8; STREAM_BUFFER_BYTES];
    let mut at = 0;
    while at < end {
        let n = (end - at).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], at)?;
        crc.update(&buf[..n]);
        at += n as u64;
    }
    file.write_all_at(&crc.finish().to_le_bytes(), end)?;
    Ok(end + TRAILER_LEN as u64)
}

/// Buffer of [`encode_streamed`]'s writes and checksum reads.
const STREAM_BUFFER_BYTES: usize = 256 * 1024;

/// Parses a whole binary checkpoint (starting with [`MAGIC`]). The error says what is
/// wrong and where. The largest state value takes over the buffer of `bytes` (moved to
/// its start, not copied elsewhere), so a large plugin state is not held twice.
pub(crate) fn decode(mut bytes: Vec<u8>) -> Result<Checkpoint, String> {
    let (files, extra, largest) = parse(&bytes)?;
    let mut extra: BTreeMap<String, Vec<u8>> = extra
        .into_iter()
        .map(|(name, range)| (name, bytes[range].to_vec()))
        .collect();
    if let Some((name, range)) = largest {
        bytes.truncate(range.end);
        bytes.drain(..range.start);
        extra.insert(name, bytes);
    }
    Ok(Checkpoint { files, extra })
}

/// Where each state value lies in the buffer; the largest one apart.
type Parsed = (
    Vec<FileCheckpoint>,
    Vec<(String, Range<usize>)>,
    Option<(String, Range<usize>)>,
);

fn parse(bytes: &[u8]) -> Result<Parsed, String> {
    if bytes.len() < HEADER_LEN + TRAILER_LEN {
        return Err(format!(
            "truncated: {} bytes, shorter than a header and checksum ({} bytes)",
            bytes.len(),
            HEADER_LEN + TRAILER_LEN
        ));
    }
    let mut r = Reader { bytes, pos: 4 };
    let version = r.u32("version")?;
    if version != VERSION {
        return Err(format!("unsupported binary version {version}"));
    }
    let body = r.u64("body length")?;
    let want = (HEADER_LEN + TRAILER_LEN) as u64 + body;
    if bytes.len() as u64 != want {
        let how = if (bytes.len() as u64) < want {
            "truncated"
        } else {
            "trailing bytes"
        };
        return Err(format!(
            "{how}: the header announces {want} bytes, the file has {}",
            bytes.len()
        ));
    }
    let (data, trailer) = bytes.split_at(bytes.len() - TRAILER_LEN);
    let stored = u32::from_le_bytes(trailer.try_into().expect("4 bytes"));
    let actual = crc32c(data);
    if stored != actual {
        return Err(format!(
            "checksum mismatch: stored {stored:08x}, computed {actual:08x}"
        ));
    }
    let mut r = Reader {
        bytes: data,
        pos: HEADER_LEN,
    };
    let n = r.u32("file count")?;
    let mut files = Vec::with_capacity((n as usize).min(data.len() / FILE_FIXED as usize));
    for i in 0..n {
        let at = |f: &str| format!("files[{i}].{f}");
        let dev = r.u64(&at("dev"))?;
        let ino = r.u64(&at("ino"))?;
        let fingerprint = r.u64(&at("fingerprint"))?;
        let offset = r.u64(&at("offset"))?;
        let size = r.u64(&at("size"))?;
        let len = r.u32(&at("path length"))?;
        let path = r.take(u64::from(len), &at("path"))?;
        files.push(FileCheckpoint {
            file: FileKey::from_parts(dev, ino, fingerprint),
            path: PathBuf::from(OsStr::from_bytes(path)),
            offset,
            size,
        });
    }
    let n = r.u32("extra count")?;
    let mut extra: Vec<(String, Range<usize>)> = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for i in 0..n {
        let len = r.u32(&format!("extra[{i}].name length"))?;
        let name = r.take(u64::from(len), &format!("extra[{i}].name"))?;
        let name = std::str::from_utf8(name)
            .map_err(|e| format!("extra[{i}].name is not UTF-8: {e}"))?
            .to_owned();
        let len = r.u64(&format!("extra {name:?} length"))?;
        let start = r.pos;
        r.take(len, &format!("extra {name:?}"))?;
        if !names.insert(name.clone()) {
            return Err(format!("extra {name:?} appears twice"));
        }
        extra.push((name, start..r.pos));
    }
    if r.pos != data.len() {
        return Err(format!(
            "{} unexplained bytes after the last entry",
            data.len() - r.pos
        ));
    }
    let largest = (0..extra.len())
        .max_by_key(|&i| extra[i].1.len())
        .map(|i| extra.swap_remove(i));
    Ok((files, extra, largest))
}

/// Bounded little-endian reads over the checksummed bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], String> {
        let left = self.bytes.len() - self.pos;
        match usize::try_from(n) {
            Ok(n) if n <= left => {
                let s = &self.bytes[self.pos..self.pos + n];
                self.pos += n;
                Ok(s)
            }
            _ => Err(format!(
                "{what} at byte {} needs {n} bytes, only {left} left",
                self.pos
            )),
        }
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
}
