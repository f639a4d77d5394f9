//! Finding files by identity: where in the watched directories do given `(dev, inode)`s
//! live now? Used for a file renamed while it was not tailed (rotated while the host
//! was stopped, or while its descriptor was closed under the budget), whose new name
//! the patterns may no longer match (`app.log` -> `app.log.1`).
//!
//! One pass over the directories answers for every wanted id: `readdir` gives inode
//! numbers without a `stat`, only candidates are `stat`ed (for the device and type).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::discover::WatchRoot;

/// Most directory entries looked at in one search (a bound on a runaway tree).
const MAX_ENTRIES: usize = 1 << 20;

/// `(dev, inode)` of a file.
pub(crate) type Id = (u64, u64);

/// Where the regular files `wanted` are now, among the entries of the watch roots
/// (recursively for recursive roots). Ids not found are absent from the result.
pub(crate) fn locate(roots: &[WatchRoot], wanted: &HashSet<Id>) -> HashMap<Id, PathBuf> {
    let mut found = HashMap::new();
    if wanted.is_empty() {
        return found;
    }
    let inos: HashSet<u64> = wanted.iter().map(|&(_, ino)| ino).collect();
    let mut budget = MAX_ENTRIES;
    for root in roots {
        let mut dirs = vec![root.dir.clone()];
        while let Some(dir) = dirs.pop() {
            visit(
                &dir,
                root.recursive,
                &inos,
                wanted,
                &mut found,
                &mut dirs,
                &mut budget,
            );
            if found.len() == wanted.len() || budget == 0 {
                return found;
            }
        }
    }
    found
}

fn visit(
    dir: &Path,
    recursive: bool,
    inos: &HashSet<u64>,
    wanted: &HashSet<Id>,
    found: &mut HashMap<Id, PathBuf>,
    dirs: &mut Vec<PathBuf>,
    budget: &mut usize,
) {
    let Ok(entries) = fs::read_dir(dir) else {
        return; // gone or unreadable: nothing of ours can be found there
    };
    for entry in entries.flatten() {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir {
            if recursive {
                dirs.push(entry.path());
            }
            continue;
        }
        if !inos.contains(&entry.ino()) {
            continue;
        }
        let path = entry.path();
        if let Ok(m) = fs::symlink_metadata(&path)
            && m.is_file()
            && wanted.contains(&(m.dev(), m.ino()))
        {
            found.entry((m.dev(), m.ino())).or_insert(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(p: &Path) -> Id {
        let m = fs::metadata(p).unwrap();
        (m.dev(), m.ino())
    }

    #[test]
    fn finds_renamed_files_by_identity() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        fs::write(dir.path().join("a.log.1"), "a\n").unwrap();
        fs::write(sub.join("b"), "b\n").unwrap();
        fs::write(dir.path().join("other"), "o\n").unwrap();
        let a = id(&dir.path().join("a.log.1"));
        let b = id(&sub.join("b"));
        let wanted: HashSet<Id> = [a, b, (a.0, u64::MAX)].into();
        let flat = [WatchRoot {
            dir: dir.path().to_path_buf(),
            recursive: false,
        }];
        let got = locate(&flat, &wanted);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[&a], dir.path().join("a.log.1"));
        let deep = [WatchRoot {
            dir: dir.path().to_path_buf(),
            recursive: true,
        }];
        let got = locate(&deep, &wanted);
        assert_eq!(got[&b], sub.join("b"), "recursive roots are walked");
    }
}
