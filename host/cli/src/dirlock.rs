//! One host per data directory: the host holds an exclusive `flock(2)` on
//! `<data_dir>/wasmeter.lock` (with its pid written in it) for as long as it
//! runs. A second host on the same directory would tail the same files into the
//! same checkpoints, rewrite them under the first and overwrite its admin token:
//! it refuses to start instead, naming the holder. The kernel drops the lock when
//! the holder exits, however it exits, so a crash leaves no stale lock.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "wasmeter.lock";

/// Why the data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error(
        "the data directory {dir} is in use by another wasmeter (pid {holder}): stop it, or give \
         this host a directory of its own (--data-dir, or data_dir in the config)"
    )]
    InUse {
        /// The directory.
        dir: PathBuf,
        /// The holder's pid as it wrote it (`unknown` if it could not be read).
        holder: String,
    },
    /// The lock file could not be opened or locked.
    #[error("cannot lock the data directory {dir} ({file}): {source}")]
    Io {
        /// The directory.
        dir: PathBuf,
        /// The lock file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// Takes the lock on `dir` (which must exist) or says who holds it.
pub fn lock(dir: &Path) -> Result<DirLock, LockError> {
    let path = dir.join(LOCK_FILE);
    let io = |source| LockError::Io {
        dir: dir.to_path_buf(),
        file: path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::WouldBlock {
            return Err(io(error));
        }
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        return Err(LockError::InUse {
            dir: dir.to_path_buf(),
            holder: if holder.is_empty() {
                "unknown".into()
            } else {
                holder.into()
            },
        });
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    Ok(DirLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder_and_the_first_release_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path()).unwrap();
        let err = lock(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "in use by another wasmeter (pid {})",
                std::process::id()
            )),
            "{err}"
        );
        drop(first);
        assert!(lock(dir.path()).is_ok());
    }
}
