//! The checkpoint file: committed file offsets plus opaque state the pipeline saves
//! with them, written atomically.
//!
//! The format is binary and versioned (see `binary`): a header with a magic number,
//! the file positions and identities, the plugin states as raw bytes, and a CRC-32C
//! verified on load. Version 1 files (JSON with hex-encoded states, see `legacy`) are
//! still read, so a host upgraded in place resumes from its old checkpoint; the next
//! save writes version 2.
//!
//! [`Checkpoint::save`] streams into a temporary file in the same directory, fsyncs
//! it, renames it over the checkpoint and fsyncs the directory: a crash leaves either
//! the old or the new checkpoint, never a torn one.

mod binary;
mod crc;
mod legacy;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};

pub use binary::StreamedValue;
use std::path::{Path, PathBuf};

use crate::error::SourceError;
use crate::event::FileCheckpoint;
use legacy::JsonError;

/// The format version this build writes (it also reads version 1, JSON).
pub const CHECKPOINT_VERSION: u64 = binary::VERSION as u64;

/// Write buffer of [`Checkpoint::save`]: large values bypass it.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Everything needed to resume after a restart without losing or repeating records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Committed position of every tailed file.
    pub files: Vec<FileCheckpoint>,
    /// Opaque state saved with the offsets (e.g. plugin state), by name.
    pub extra: BTreeMap<String, Vec<u8>>,
}

impl Checkpoint {
    /// Reads the checkpoint at `path` (binary version 2, or JSON version 1); `Ok(None)`
    /// if there is none. A file that is not a valid checkpoint (bad checksum, truncated,
    /// unknown version, malformed) is an error naming the file and the problem. Blocking.
    pub fn load(path: &Path) -> Result<Option<Checkpoint>, SourceError> {
        let bytes = match fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(SourceError::io("read checkpoint", path, e)),
        };
        let corrupt = |problem: String| SourceError::CheckpointCorrupt {
            path: path.to_owned(),
            problem,
        };
        if bytes.starts_with(binary::MAGIC) || binary::MAGIC.starts_with(&bytes) {
            if let Some(v) = bytes.get(4..8) {
                let version = u32::from_le_bytes(v.try_into().expect("4 bytes"));
                if version != binary::VERSION {
                    return Err(SourceError::CheckpointVersion {
                        path: path.to_owned(),
                        version: u64::from(version),
                    });
                }
            }
            return binary::decode(bytes).map(Some).map_err(corrupt);
        }
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            return match legacy::decode(&bytes) {
                Ok(cp) => Ok(Some(cp)),
                Err(JsonError::Corrupt(problem)) => Err(corrupt(problem)),
                Err(JsonError::Version(version)) => Err(SourceError::CheckpointVersion {
                    path: path.to_owned(),
                    version,
                }),
            };
        }
        let head = &bytes[..bytes.len().min(4)];
        Err(corrupt(format!(
            "not a checkpoint: starts with {head:02x?}, neither the binary magic \"WMCP\" nor JSON"
        )))
    }

    /// Size of this checkpoint once encoded, in bytes (what [`Checkpoint::save`] writes).
    pub fn encoded_len(&self) -> u64 {
        binary::encoded_len(self)
    }

    /// Atomically replaces the checkpoint at `path` (tmp + fsync + rename + fsync of the
    /// directory). Blocking: call it from `spawn_blocking`.
    pub fn save(&self, path: &Path) -> Result<(), SourceError> {
        self.save_sized(path).map(|_| ())
    }

    /// [`Checkpoint::save`], returning the bytes written: a caller can space its
    /// checkpoints by their size (a large plugin state need not be written every
    /// second). Blocking.
    pub fn save_sized(&self, path: &Path) -> Result<u64, SourceError> {
        replace_atomically(path, |f| {
            let mut w = BufWriter::with_capacity(WRITE_BUFFER_BYTES, f);
            let written = binary::encode(self, &mut w)?;
            w.flush()?;
            Ok(written)
        })
    }

    /// [`Checkpoint::save_sized`] with one more state, `name`, whose bytes `stream`
    /// writes in pieces (a large state is then never held whole); `stream` returning
    /// `false` or writing nothing leaves it out. The file is the one
    /// [`Checkpoint::save`] writes with that state in `extra`. Blocking.
    pub fn save_streamed(
        &self,
        path: &Path,
        name: &str,
        stream: impl FnOnce(&mut StreamedValue<'_>) -> io::Result<bool>,
    ) -> Result<u64, SourceError> {
        replace_atomically(path, |f| binary::encode_streamed(self, name, f, stream))
    }
}

/// Replaces the file at `path` with what `write` writes: `path.tmp`, fsync,
/// rename into place, fsync of the directory.
fn replace_atomically(
    path: &Path,
    write: impl FnOnce(&File) -> io::Result<u64>,
) -> Result<u64, SourceError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| {
        SourceError::io("save checkpoint", path, io::ErrorKind::InvalidInput.into())
    })?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| SourceError::io("create", &tmp, e))?;
    let written = write(&f).map_err(|e| SourceError::io("write", &tmp, e))?;
    f.sync_all()
        .map_err(|e| SourceError::io("fsync", &tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| SourceError::io("rename into place", path, e))?;
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| SourceError::io("fsync directory", &dir, e))?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::FileKey;

    fn sample() -> Checkpoint {
        let mut cp = Checkpoint::default();
        cp.files.push(FileCheckpoint {
            file: FileKey::from_parts(2049, 1234, 0x0800_0000_0000_00ff),
            path: "/data/trades/a.csv".into(),
            offset: 4096,
            size: 5000,
        });
        cp.extra.insert("plugin:csv".into(), vec![0, 1, 0xfe, 0xff]);
        cp
    }

    #[test]
    fn encoded_len_is_what_is_written() {
        let cp = sample();
        let mut bytes = Vec::new();
        let n = binary::encode(&cp, &mut bytes).unwrap();
        assert_eq!(
            (n, cp.encoded_len()),
            (bytes.len() as u64, bytes.len() as u64)
        );
        assert_eq!(binary::decode(bytes).unwrap(), cp);
    }

    /// A state streamed in pieces (with a count patched at the end) makes the
    /// file `save` writes with that state in `extra`: byte for byte when its
    /// name sorts last, the same checkpoint read back otherwise; a stream that
    /// writes nothing or declines leaves the state out.
    #[test]
    fn a_streamed_state_is_saved_as_if_it_were_held() {
        let dir = tempfile::tempdir().unwrap();
        let value: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let stream = |v: &mut StreamedValue<'_>| -> io::Result<bool> {
            v.write_all(&[0; 4])?;
            for piece in value[4..].chunks(65_537) {
                v.write_all(piece)?;
            }
            v.patch(0, &value[..4]);
            Ok(true)
        };
        for name in ["zz:last", "a:first"] {
            let cp = sample();
            let path = dir.path().join(format!("{name}.ckpt"));
            let n = cp.save_streamed(&path, name, stream).unwrap();
            let mut held = cp.clone();
            held.extra.insert(name.into(), value.clone());
            assert_eq!(n, held.encoded_len());
            assert_eq!(Checkpoint::load(&path).unwrap(), Some(held.clone()));
            if name == "zz:last" {
                let mut bytes = Vec::new();
                binary::encode(&held, &mut bytes).unwrap();
                assert_eq!(fs::read(&path).unwrap(), bytes);
            }
        }
        for keep in [false, true] {
            let cp = sample();
            let path = dir.path().join("none.ckpt");
            let n = cp
                .save_streamed(&path, "topics", |v| {
                    if !keep {
                        v.write_all(b"discarded")?;
                    }
                    Ok(keep)
                })
                .unwrap();
            assert_eq!(n, cp.encoded_len());
            assert_eq!(Checkpoint::load(&path).unwrap(), Some(cp));
        }
    }

    #[test]
    fn the_largest_state_reuses_the_read_buffer() {
        let mut cp = sample();
        cp.extra.insert("plugin:big".into(), vec![7; 100_000]);
        let mut bytes = Vec::new();
        binary::encode(&cp, &mut bytes).unwrap();
        let buffer = bytes.as_ptr();
        let loaded = binary::decode(bytes).unwrap();
        assert_eq!(loaded, cp);
        assert_eq!(
            loaded.extra["plugin:big"].as_ptr(),
            buffer,
            "moved, not copied"
        );
    }

    #[test]
    fn lengths_are_bounded_even_with_a_valid_checksum() {
        // A consistent file (length and checksum right) whose inner length lies.
        let mut cp = sample();
        cp.extra.clear();
        let mut bytes = Vec::new();
        binary::encode(&cp, &mut bytes).unwrap();
        let path_len_at = 16 + 4 + 40;
        bytes[path_len_at..path_len_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let n = bytes.len() - 4;
        let crc = crc::crc32c(&bytes[..n]);
        bytes[n..].copy_from_slice(&crc.to_le_bytes());
        let err = binary::decode(bytes).unwrap_err();
        assert!(
            err.contains("files[0].path") && err.contains("only"),
            "{err}"
        );
    }
}
