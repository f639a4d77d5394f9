//! The checkpoint file: committed file offsets plus opaque state the pipeline saves
//! with them, written atomically.
//!
//! Format (JSON, versioned):
//! ```json
//! { "version": 1,
//!   "files": [ { "file": { "dev": 2049, "ino": 1234, "fingerprint": "0800..." },
//!                "path": "/data/trades/a.csv", "offset": 4096 } ],
//!   "extra": { "plugin:csv": "<hex bytes>" } }
//! ```
//! [`Checkpoint::save`] writes a temporary file in the same directory, fsyncs it, renames
//! it over the checkpoint and fsyncs the directory: a crash leaves either the old or the
//! new checkpoint, never a torn one.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::SourceError;
use crate::event::FileCheckpoint;

/// The format version this build writes and reads.
pub const CHECKPOINT_VERSION: u64 = 1;

/// Everything needed to resume after a restart without losing or repeating records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Committed position of every tailed file.
    pub files: Vec<FileCheckpoint>,
    /// Opaque state saved with the offsets (e.g. plugin state), by name.
    pub extra: BTreeMap<String, Vec<u8>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    version: u64,
    files: Vec<FileCheckpoint>,
    #[serde(default)]
    extra: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct VersionOnly {
    version: u64,
}

impl Checkpoint {
    /// Reads the checkpoint at `path`; `Ok(None)` if there is none. A file that is not a
    /// valid checkpoint is an error naming the file and the problem. Blocking.
    pub fn load(path: &Path) -> Result<Option<Checkpoint>, SourceError> {
        let text = match fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(SourceError::io("read checkpoint", path, e)),
        };
        let corrupt = |problem: String| SourceError::CheckpointCorrupt {
            path: path.to_owned(),
            problem,
        };
        let version: VersionOnly =
            serde_json::from_slice(&text).map_err(|e| corrupt(e.to_string()))?;
        if version.version != CHECKPOINT_VERSION {
            return Err(SourceError::CheckpointVersion {
                path: path.to_owned(),
                version: version.version,
            });
        }
        let stored: Stored = serde_json::from_slice(&text).map_err(|e| corrupt(e.to_string()))?;
        let mut extra = BTreeMap::new();
        for (name, value) in stored.extra {
            let bytes = hex::decode(&value)
                .map_err(|e| corrupt(format!("extra {name:?} is not hex: {e}")))?;
            extra.insert(name, bytes);
        }
        Ok(Some(Checkpoint {
            files: stored.files,
            extra,
        }))
    }

    /// Atomically replaces the checkpoint at `path` (tmp + fsync + rename + fsync of the
    /// directory). Blocking: call it from `spawn_blocking`.
    pub fn save(&self, path: &Path) -> Result<(), SourceError> {
        let stored = Stored {
            version: CHECKPOINT_VERSION,
            files: self.files.clone(),
            extra: self
                .extra
                .iter()
                .map(|(k, v)| (k.clone(), hex::encode(v)))
                .collect(),
        };
        let json = serde_json::to_vec_pretty(&stored).expect("checkpoint serializes");
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
        let mut f = File::create(&tmp).map_err(|e| SourceError::io("create", &tmp, e))?;
        f.write_all(&json)
            .map_err(|e| SourceError::io("write", &tmp, e))?;
        f.sync_all()
            .map_err(|e| SourceError::io("fsync", &tmp, e))?;
        drop(f);
        fs::rename(&tmp, path).map_err(|e| SourceError::io("rename into place", path, e))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| SourceError::io("fsync directory", &dir, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Checkpoint::load(&dir.path().join("none.json")).unwrap(),
            None
        );
    }

    #[test]
    fn extra_round_trips_as_hex() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        let mut cp = Checkpoint::default();
        cp.extra.insert("plugin:csv".into(), vec![0, 1, 0xfe, 0xff]);
        cp.save(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"0001feff\""), "{text}");
        assert_eq!(Checkpoint::load(&path).unwrap(), Some(cp));
        assert!(!dir.path().join("cp.json.tmp").exists());
    }

    #[test]
    fn corrupt_and_future_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        fs::write(&path, "{\"version\":1,\"files\":[{\"oops\":").unwrap();
        let err = Checkpoint::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("cp.json") && err.contains("corrupt") && err.contains("EOF"),
            "{err}"
        );
        fs::write(&path, r#"{"version":2,"files":[]}"#).unwrap();
        let err = Checkpoint::load(&path).unwrap_err().to_string();
        assert!(err.contains("unsupported version 2"), "{err}");
        fs::write(&path, r#"{"version":1,"files":[],"extra":{"x":"zz"}}"#).unwrap();
        let err = Checkpoint::load(&path).unwrap_err().to_string();
        assert!(err.contains("extra \"x\" is not hex"), "{err}");
    }
}
