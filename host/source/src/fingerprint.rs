//! File identity: `(dev, inode)` plus a fingerprint of the file's first bytes.
//!
//! `(dev, inode)` follows a file through renames, but inodes are reused once a file is
//! deleted, so a checkpoint taken before a restart could otherwise resume a brand-new file
//! at a stale offset. The fingerprint catches that.
//!
//! # The fingerprint
//! It is taken once, as soon as the file's head holds a complete first line (or 256
//! bytes), over its first `L = min(size, 256)` bytes, and then never changes for that file
//! generation, so a [`FileKey`] is stable for as long as the file is tailed. `L` is stored
//! in the top 9 bits and a 55-bit FNV-1a hash of those bytes in the rest. To check a key
//! against a file (on resume, and after each read to notice a file that was truncated and
//! rewritten past the old offset) the same `L` bytes are hashed again. Until its first
//! line is complete a file has no key: no record could be delivered before that anyway,
//! and a key over a few bytes of a half-written line would identify almost nothing.
//! A generation keyed over one short line is protected by that line only (files that all
//! begin with the same CSV header and nothing else yet look alike; size checks still
//! catch their truncation). This is the trade Vector's checksum fingerprinter makes too,
//! and it is sound: a mismatch is always a different file.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use serde::{Deserialize, Serialize};

/// How many leading bytes of a file are fingerprinted (at most).
pub const FINGERPRINT_BYTES: usize = 256;

const LEN_SHIFT: u32 = 55;
const HASH_MASK: u64 = (1 << LEN_SHIFT) - 1;

/// Identity of a file generation that survives renames: `(dev, inode)` plus a fingerprint
/// of its first bytes (detects inode reuse and truncate-and-rewrite).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileKey {
    dev: u64,
    ino: u64,
    /// Hex in JSON: tools that read numbers as f64 would mangle a 64-bit hash.
    #[serde(with = "hex_u64")]
    fingerprint: u64,
}

impl FileKey {
    /// Device number of the file system holding the file.
    pub fn dev(&self) -> u64 {
        self.dev
    }

    /// Inode number.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// Fingerprint: bytes hashed (top 9 bits) and FNV-1a hash of them (low 55 bits).
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// How many leading bytes the fingerprint covers.
    pub fn fingerprint_len(&self) -> usize {
        (self.fingerprint >> LEN_SHIFT) as usize
    }

    /// A key from its stored parts (a checkpoint).
    pub(crate) fn from_parts(dev: u64, ino: u64, fingerprint: u64) -> FileKey {
        FileKey {
            dev,
            ino,
            fingerprint,
        }
    }

    /// Keys the file open as `file` (already known to be `(dev, ino)`) by its first bytes,
    /// or `None` while its head holds neither a complete line nor
    /// [`FINGERPRINT_BYTES`] bytes (nothing could be delivered yet anyway).
    pub(crate) fn compute(dev: u64, ino: u64, file: &File) -> io::Result<Option<FileKey>> {
        let mut head = [0u8; FINGERPRINT_BYTES];
        let n = read_full_at(file, &mut head, 0)?;
        if n < FINGERPRINT_BYTES && memchr::memchr(b'\n', &head[..n]).is_none() {
            return Ok(None);
        }
        Ok(Some(FileKey {
            dev,
            ino,
            fingerprint: fingerprint(&head[..n]),
        }))
    }

    /// Whether `file` still starts with the bytes this key was computed from.
    pub(crate) fn matches(&self, file: &File) -> io::Result<bool> {
        let len = self.fingerprint_len().min(FINGERPRINT_BYTES);
        let mut head = [0u8; FINGERPRINT_BYTES];
        let n = read_full_at(file, &mut head[..len], 0)?;
        Ok(n == len && fingerprint(&head[..n]) == self.fingerprint)
    }
}

impl fmt::Display for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{:016x}", self.dev, self.ino, self.fingerprint)
    }
}

/// Length-tagged 64-bit fingerprint of `head` (at most [`FINGERPRINT_BYTES`] long).
pub(crate) fn fingerprint(head: &[u8]) -> u64 {
    debug_assert!(head.len() <= FINGERPRINT_BYTES);
    ((head.len() as u64) << LEN_SHIFT) | (fnv1a(head) & HASH_MASK)
}

/// FNV-1a, 64-bit.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `pread` until `buf` is full or end of file; returns the bytes read.
pub(crate) fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(m) => n += m,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

mod hex_u64 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:016x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let s = String::deserialize(d)?;
        u64::from_str_radix(&s, 16).map_err(|e| D::Error::custom(format!("fingerprint {s:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn fnv1a_known_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn key_tracks_length_and_content() {
        let mut f = tempfile::tempfile().unwrap();
        assert_eq!(FileKey::compute(1, 2, &f).unwrap(), None, "empty: no key");
        f.write_all(b"first ").unwrap();
        assert_eq!(
            FileKey::compute(1, 2, &f).unwrap(),
            None,
            "partial line: no key yet"
        );
        f.write_all(b"line\n").unwrap();
        let key = FileKey::compute(1, 2, &f).unwrap().unwrap();
        assert_eq!(key.fingerprint_len(), 11);
        f.write_all(&[b'x'; 400]).unwrap();
        assert!(key.matches(&f).unwrap(), "growing keeps the key");
        let grown = FileKey::compute(1, 2, &f).unwrap().unwrap();
        assert_eq!(grown.fingerprint_len(), FINGERPRINT_BYTES);
        f.set_len(0).unwrap();
        f.write_all_at(b"other line\n", 0).unwrap();
        assert!(
            !key.matches(&f).unwrap(),
            "rewritten content is another file"
        );
        f.set_len(3).unwrap();
        assert!(!key.matches(&f).unwrap(), "shorter than the fingerprint");
    }

    #[test]
    fn serde_uses_hex_fingerprint() {
        let key = FileKey {
            dev: 1,
            ino: 2,
            fingerprint: u64::MAX,
        };
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(
            json,
            r#"{"dev":1,"ino":2,"fingerprint":"ffffffffffffffff"}"#
        );
        assert_eq!(serde_json::from_str::<FileKey>(&json).unwrap(), key);
    }
}
