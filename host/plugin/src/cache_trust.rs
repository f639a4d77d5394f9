//! Whether the compile cache on disk may be trusted.
//!
//! Loading a cached artifact runs the machine code in it (`Component::deserialize`
//! is unsafe by design), so the runtime only reads artifacts that nobody but this
//! user could have written:
//! - the cache directory is not a symlink, is a directory, is owned by the
//!   effective user, and is not writable by group or others (`mode & 0o022 == 0`);
//! - each artifact is opened without following a symlink (its `lstat` and the
//!   opened file's `fstat` must be the same inode), is a regular file, owned by the
//!   effective user, and not writable by group or others. The checks apply to the
//!   open file, so swapping the file after the check changes nothing.
//!
//! The runtime creates a missing directory (and missing parents) with mode 0700,
//! and writes artifacts with mode 0600.
//!
//! **Policy: an untrusted directory disables the disk cache, with a warning that
//! names the directory, its owner and its mode; the host keeps running with a
//! memory-only cache.** The cache only saves compile time, while refusing to start
//! would let any local user who creates the directory first (e.g. under a shared
//! `/tmp`) keep the host from running. An untrusted artifact in a trusted
//! directory is ignored (recompiled and replaced).

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Why a cache directory or artifact is not trusted; the message names the path,
/// its owner and its mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {path} (owner uid {uid}, mode {mode:04o}) is not trusted: {reason}")]
pub(crate) struct Untrusted {
    what: &'static str,
    path: String,
    uid: u32,
    mode: u32,
    reason: String,
}

/// The effective user id of this process.
fn euid() -> u32 {
    // SAFETY: `geteuid` has no preconditions, cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// Checks the metadata of `path` (from `lstat` or `fstat`) for `kind` of entry.
fn check(
    what: &'static str,
    path: &Path,
    meta: &Metadata,
    want_dir: bool,
) -> Result<(), Untrusted> {
    let fail = |reason: String| Untrusted {
        what,
        path: path.display().to_string(),
        uid: meta.uid(),
        mode: meta.mode() & 0o7777,
        reason,
    };
    let kind = meta.file_type();
    if kind.is_symlink() {
        return Err(fail("it is a symbolic link".into()));
    }
    if want_dir && !kind.is_dir() {
        return Err(fail("it is not a directory".into()));
    }
    if !want_dir && !kind.is_file() {
        return Err(fail("it is not a regular file".into()));
    }
    let me = euid();
    if meta.uid() != me {
        return Err(fail(format!("it is not owned by this user (uid {me})")));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(fail("it is writable by group or others".into()));
    }
    Ok(())
}

/// Creates `dir` with mode 0700 if it is missing, then checks it may be trusted.
pub(crate) fn prepare_dir(dir: &Path) -> Result<(), CacheDirError> {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == ErrorKind::NotFound => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| CacheDirError::Io(format!("cannot create {}: {e}", dir.display())))?,
        Err(e) => {
            return Err(CacheDirError::Io(format!(
                "cannot read {}: {e}",
                dir.display()
            )));
        }
        Ok(_) => {}
    }
    check_dir(dir)
}

/// Checks that `dir` may be trusted (without creating it).
pub(crate) fn check_dir(dir: &Path) -> Result<(), CacheDirError> {
    let meta = fs::symlink_metadata(dir)
        .map_err(|e| CacheDirError::Io(format!("cannot read {}: {e}", dir.display())))?;
    check("compile cache directory", dir, &meta, true).map_err(CacheDirError::Untrusted)
}

/// Why the cache directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CacheDirError {
    /// It could not be created or read.
    #[error("{0}")]
    Io(String),
    /// It is not safe to load code from.
    #[error(transparent)]
    Untrusted(Untrusted),
}

/// Reads the artifact at `path` if it exists and may be trusted. `Ok(None)`: there
/// is none. The checks apply to the opened file (see the module docs).
pub(crate) fn read_artifact(path: &Path) -> Result<Option<Vec<u8>>, ArtifactError> {
    let linked = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ArtifactError::Io(e)),
    };
    check("cached artifact", path, &linked, false).map_err(ArtifactError::Untrusted)?;
    let mut file = File::open(path).map_err(ArtifactError::Io)?;
    let opened = file.metadata().map_err(ArtifactError::Io)?;
    if (opened.dev(), opened.ino()) != (linked.dev(), linked.ino()) {
        return Err(ArtifactError::Untrusted(Untrusted {
            what: "cached artifact",
            path: path.display().to_string(),
            uid: opened.uid(),
            mode: opened.mode() & 0o7777,
            reason: "it was replaced while being opened".into(),
        }));
    }
    check("cached artifact", path, &opened, false).map_err(ArtifactError::Untrusted)?;
    let mut bytes = Vec::with_capacity(opened.len() as usize);
    file.read_to_end(&mut bytes).map_err(ArtifactError::Io)?;
    Ok(Some(bytes))
}

/// Why a cached artifact was not loaded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ArtifactError {
    /// It could not be read.
    #[error("{0}")]
    Io(std::io::Error),
    /// It is not safe to load code from.
    #[error(transparent)]
    Untrusted(Untrusted),
}

/// Creates `path` for writing with mode 0600; never follows or reuses an existing
/// entry (a stale one, e.g. left by a crash, is removed first).
pub(crate) fn create_private(path: &Path) -> std::io::Result<File> {
    let open = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
    };
    match open() {
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            fs::remove_file(path)?;
            open()
        }
        other => other,
    }
}

/// Writes `bytes` to a new private file at `path` and flushes it to disk.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = create_private(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn creates_missing_directories_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/cache");
        prepare_dir(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn refuses_shared_and_linked_directories_naming_owner_and_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let err = prepare_dir(&dir).unwrap_err().to_string();
        let expected = format!(
            "compile cache directory {} (owner uid {}, mode 0777) is not trusted: it is writable by group or others",
            dir.display(),
            euid()
        );
        assert_eq!(err, expected);

        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        prepare_dir(&dir).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let err = check_dir(&link).unwrap_err().to_string();
        assert!(err.ends_with("it is a symbolic link"), "{err}");
    }

    #[test]
    fn artifacts_must_be_private_regular_files() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.cwasm");
        assert!(read_artifact(&path).unwrap().is_none());
        write_private(&path, b"code").unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(read_artifact(&path).unwrap().unwrap(), b"code");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        let err = read_artifact(&path).unwrap_err().to_string();
        assert!(err.contains("mode 0666"), "{err}");

        let link = tmp.path().join("b.cwasm");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let err = read_artifact(&link).unwrap_err().to_string();
        assert!(err.ends_with("it is a symbolic link"), "{err}");
    }
}
