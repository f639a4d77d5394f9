//! The data directory holds checkpoints, the admin token and the compiled-code
//! cache, whose files the host deserializes and runs. So it must be private to
//! the user running the host: created with mode 0700; an existing one must be
//! owned by this user and not writable by group or others, or the host refuses
//! to start and says what to do. This holds for the demo's default directory, a
//! `--data-dir`, a config's `data_dir`, and the cache directory inside it.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A data directory that is not safe to use.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// It could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It could not be inspected.
    #[error("cannot inspect the data directory {path}: {source}")]
    Inspect {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It is something else than a directory.
    #[error("the data directory {path} is not a directory")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// Another user owns it (or the symbolic link to it).
    #[error(
        "refusing to use the data directory {path}: it is owned by uid {owner}, not by this user \
         (uid {uid}), who could plant files the host would load (compiled plugins, checkpoints). \
         Remove it, or pass --data-dir with a directory of your own"
    )]
    Owner {
        /// The directory.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// This process's effective uid.
        uid: u32,
    },
    /// Group or others may write into it.
    #[error(
        "refusing to use the data directory {path}: its mode is {mode:04o}, writable by group or \
         others, who could plant files the host would load (compiled plugins, checkpoints). \
         Run `chmod 700 {path}`, or use another directory"
    )]
    Writable {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// The demo's default data directory, per user: `$XDG_RUNTIME_DIR/wasmeter-demo`
/// when that variable names a directory, else `<temp dir>/wasmeter-demo-<uid>`.
pub fn default_demo_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() && dir.is_dir() => dir.join("wasmeter-demo"),
        _ => std::env::temp_dir().join(format!("wasmeter-demo-{}", current_uid())),
    }
}

/// Creates `dir` with mode 0700 if it does not exist (its missing parents with
/// the default mode), then checks it with [`check_private`].
pub fn ensure_private(dir: &Path) -> Result<(), DataDirError> {
    if std::fs::symlink_metadata(dir).is_err() {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| DataDirError::Create {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            // Created by someone else meanwhile: the check below decides.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(DataDirError::Create {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        }
    }
    check_private(dir)
}

/// Checks that `dir` is a directory owned by this user (a symbolic link to it
/// too) and not writable by group or others.
pub fn check_private(dir: &Path) -> Result<(), DataDirError> {
    let inspect = |source| DataDirError::Inspect {
        path: dir.to_path_buf(),
        source,
    };
    let uid = current_uid();
    let link = std::fs::symlink_metadata(dir).map_err(inspect)?;
    if link.file_type().is_symlink() && link.uid() != uid {
        return Err(DataDirError::Owner {
            path: dir.to_path_buf(),
            owner: link.uid(),
            uid,
        });
    }
    let meta = std::fs::metadata(dir).map_err(inspect)?;
    if !meta.is_dir() {
        return Err(DataDirError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    if meta.uid() != uid {
        return Err(DataDirError::Owner {
            path: dir.to_path_buf(),
            owner: meta.uid(),
            uid,
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(DataDirError::Writable {
            path: dir.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// This process's effective uid.
pub fn current_uid() -> u32 {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_new_directory_is_created_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/data");
        ensure_private(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        // Existing and private: accepted as it is.
        ensure_private(&dir).unwrap();
    }

    #[test]
    fn a_directory_others_can_write_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = ensure_private(&dir).unwrap_err().to_string();
        assert!(error.contains(&dir.display().to_string()), "{error}");
        assert!(error.contains("its mode is 0777"), "{error}");
        assert!(error.contains("chmod 700"), "{error}");
        // Group-writable is refused too; readable is fine.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o770)).unwrap();
        assert!(matches!(
            check_private(&dir),
            Err(DataDirError::Writable { mode: 0o770, .. })
        ));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        check_private(&dir).unwrap();
    }

    #[test]
    fn a_directory_of_another_user_is_refused() {
        if current_uid() != 0 {
            eprintln!("skipped: needs root to give a directory to another user");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(4321), Some(4321)).unwrap();
        let error = ensure_private(&dir).unwrap_err().to_string();
        assert!(
            error.contains("it is owned by uid 4321, not by this user (uid 0)"),
            "{error}"
        );
        assert!(error.contains(&dir.display().to_string()), "{error}");
        // A link to it, planted by that user, is refused for the same reason.
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        std::os::unix::fs::lchown(&link, Some(4321), Some(4321)).unwrap();
        assert!(matches!(
            check_private(&link),
            Err(DataDirError::Owner { owner: 4321, .. })
        ));
    }

    #[test]
    fn the_default_demo_directory_is_per_user() {
        let dir = default_demo_dir();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name == "wasmeter-demo" || name == format!("wasmeter-demo-{}", current_uid()),
            "{}",
            dir.display()
        );
        assert_ne!(dir, std::env::temp_dir().join("wasmeter-demo"));
    }
}
