//! File-system helpers: atomic whole-file replacement and directory fsync.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};

/// Suffix of files being written before their rename into place.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// fsyncs a directory so that creations, renames and deletions in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Deletes `paths`, all in one directory, and fsyncs it if any was deleted.
pub(crate) fn remove_all(paths: &[PathBuf]) -> Result<()> {
    for path in paths {
        fs::remove_file(path).at(path)?;
    }
    match paths.first().and_then(|p| p.parent()) {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

/// Replaces `path` with `bytes` atomically: write `path.tmp`, fsync it,
/// rename it over `path`, fsync the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(TMP_SUFFIX);
    let tmp = Path::new(&tmp);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(tmp)
            .at(tmp)?;
        f.write_all(bytes).at(tmp)?;
        f.sync_all().at(tmp)?;
    }
    fs::rename(tmp, path).at(path)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Opens (creating if needed) a file for positional reads and writes.
pub(crate) fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .at(path)
}

/// Size of a file, 0 if it cannot be read.
pub(crate) fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}
