//! The JSON checkpoint format of version 1, read for migration (a host upgraded in
//! place resumes from its old checkpoint; the next save writes the binary format):
//!
//! ```json
//! { "version": 1,
//!   "files": [ { "file": { "dev": 2049, "ino": 1234, "fingerprint": "0800..." },
//!                "path": "/data/trades/a.csv", "offset": 4096 } ],
//!   "extra": { "plugin:csv": "<hex bytes>" } }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Checkpoint;
use crate::event::FileCheckpoint;

/// The JSON format's version.
pub(crate) const VERSION: u64 = 1;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    #[allow(dead_code)] // checked through `VersionOnly` first
    version: u64,
    files: Vec<FileCheckpoint>,
    #[serde(default)]
    extra: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct VersionOnly {
    version: u64,
}

/// What is wrong with a JSON checkpoint.
pub(crate) enum JsonError {
    /// Not a valid version 1 checkpoint.
    Corrupt(String),
    /// Valid JSON declaring a version this build does not read as JSON.
    Version(u64),
}

/// Parses a version 1 JSON checkpoint.
pub(crate) fn decode(text: &[u8]) -> Result<Checkpoint, JsonError> {
    let version: VersionOnly =
        serde_json::from_slice(text).map_err(|e| JsonError::Corrupt(e.to_string()))?;
    if version.version != VERSION {
        return Err(JsonError::Version(version.version));
    }
    let stored: Stored =
        serde_json::from_slice(text).map_err(|e| JsonError::Corrupt(e.to_string()))?;
    let mut extra = BTreeMap::new();
    for (name, value) in stored.extra {
        let bytes = hex::decode(&value)
            .map_err(|e| JsonError::Corrupt(format!("extra {name:?} is not hex: {e}")))?;
        extra.insert(name, bytes);
    }
    Ok(Checkpoint {
        files: stored.files,
        extra,
    })
}
