//! Glob expansion: which paths the source should tail, and which directories to watch.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use glob::{MatchOptions, Pattern};

use crate::error::SourceError;

const OPTIONS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: true,
};

/// A directory to watch for one include pattern.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct WatchRoot {
    /// The longest directory prefix of the pattern without glob characters.
    pub dir: PathBuf,
    /// Whether matches can lie below `dir`'s direct children.
    pub recursive: bool,
}

/// The compiled include and exclude patterns of one source.
#[derive(Debug)]
pub(crate) struct Globs {
    include: Vec<(String, Pattern)>,
    exclude: Vec<Exclude>,
    roots: Vec<WatchRoot>,
}

#[derive(Debug)]
enum Exclude {
    Name(Pattern),
    Path(Pattern),
}

impl Globs {
    /// Compiles the patterns; relative ones are resolved against `cwd`.
    pub(crate) fn new(
        source_name: &str,
        include: &[String],
        exclude: &[String],
        cwd: &Path,
    ) -> Result<Globs, SourceError> {
        let bad = |pattern: &str, problem: String| SourceError::BadPattern {
            source_name: source_name.to_owned(),
            pattern: pattern.to_owned(),
            problem,
        };
        let compile = |raw: &str, text: &str| {
            Pattern::new(text).map_err(|e| bad(raw, format!("{} at position {}", e.msg, e.pos)))
        };
        let mut inc = Vec::new();
        let mut roots = BTreeSet::new();
        for raw in include {
            if raw.is_empty() {
                return Err(bad(raw, "empty pattern".to_owned()));
            }
            let abs = cwd.join(raw);
            let text = if !has_magic(raw) && abs.is_dir() {
                format!("{}/*", Pattern::escape(&abs.to_string_lossy()))
            } else {
                abs.to_string_lossy().into_owned()
            };
            let pattern = compile(raw, &text)?;
            roots.insert(watch_root(Path::new(&text)));
            inc.push((text, pattern));
        }
        let mut exc = Vec::new();
        for raw in exclude {
            if raw.contains('/') {
                exc.push(Exclude::Path(compile(
                    raw,
                    &cwd.join(raw).to_string_lossy(),
                )?));
            } else {
                exc.push(Exclude::Name(compile(raw, raw)?));
            }
        }
        // A root below a recursive root is already covered by it.
        let covered = |r: &WatchRoot| {
            roots
                .iter()
                .any(|o| o.recursive && o.dir != r.dir && r.dir.starts_with(&o.dir))
        };
        let roots = roots.iter().filter(|r| !covered(r)).cloned().collect();
        Ok(Globs {
            include: inc,
            exclude: exc,
            roots,
        })
    }

    /// Directories to watch (deduplicated).
    pub(crate) fn roots(&self) -> &[WatchRoot] {
        &self.roots
    }

    /// Whether `path` is included and not excluded.
    pub(crate) fn matches(&self, path: &Path) -> bool {
        self.include
            .iter()
            .any(|(_, p)| p.matches_path_with(path, OPTIONS))
            && !self.excluded(path)
    }

    fn excluded(&self, path: &Path) -> bool {
        self.exclude.iter().any(|e| match e {
            Exclude::Path(p) => p.matches_path_with(path, OPTIONS),
            Exclude::Name(p) => path
                .file_name()
                .is_some_and(|n| p.matches_with(&n.to_string_lossy(), OPTIONS)),
        })
    }

    /// Every existing path matching the patterns, sorted. Unreadable directories are
    /// passed over (returned in the second list, for logging).
    pub(crate) fn expand(&self) -> (Vec<PathBuf>, Vec<String>) {
        let mut found = BTreeSet::new();
        let mut problems = Vec::new();
        for (text, _) in &self.include {
            let Ok(paths) = glob::glob_with(text, OPTIONS) else {
                continue; // compiled fine in `new`; cannot fail here
            };
            for entry in paths {
                match entry {
                    Ok(path) if !self.excluded(&path) => {
                        found.insert(path);
                    }
                    Ok(_) => {}
                    Err(e) => problems.push(e.to_string()),
                }
            }
        }
        (found.into_iter().collect(), problems)
    }
}

/// Whether a pattern has glob syntax.
fn has_magic(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The directory to watch for an absolute pattern: its literal prefix, and whether the
/// glob part spans several components.
fn watch_root(pattern: &Path) -> WatchRoot {
    let mut dir = PathBuf::new();
    let comps: Vec<Component<'_>> = pattern.components().collect();
    for (i, c) in comps.iter().enumerate() {
        if has_magic(&c.as_os_str().to_string_lossy()) {
            return WatchRoot {
                dir,
                recursive: i + 1 < comps.len(),
            };
        }
        dir.push(c);
    }
    // No glob at all: a single file; watch its directory.
    WatchRoot {
        dir: pattern.parent().unwrap_or(Path::new("/")).to_path_buf(),
        recursive: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globs(include: &[&str], exclude: &[&str], cwd: &Path) -> Globs {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Globs::new("t", &s(include), &s(exclude), cwd).unwrap()
    }

    #[test]
    fn roots_follow_the_literal_prefix() {
        let g = globs(
            &["/a/b/*.csv", "/a/**/x.log", "/c/d.log", "rel/*.txt"],
            &[],
            Path::new("/w"),
        );
        let roots: Vec<_> = g
            .roots()
            .iter()
            .map(|r| (r.dir.to_str().unwrap(), r.recursive))
            .collect();
        assert_eq!(roots, vec![("/a", true), ("/c", false), ("/w/rel", false)]);
    }

    #[test]
    fn matching_and_exclusion() {
        let g = globs(&["/d/*.log"], &["*.gz", "/d/skip*"], Path::new("/"));
        assert!(g.matches(Path::new("/d/a.log")));
        assert!(!g.matches(Path::new("/d/.hidden.log")));
        assert!(!g.matches(Path::new("/d/sub/a.log")));
        assert!(!g.matches(Path::new("/d/skip.log")));
        let g = globs(&["/d/*"], &["*.gz"], Path::new("/"));
        assert!(!g.matches(Path::new("/d/a.log.gz")));
    }

    #[test]
    fn a_directory_means_its_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("one"), "x").unwrap();
        std::fs::write(dir.path().join("two.gz"), "x").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/three"), "x").unwrap();
        let g = globs(&[dir.path().to_str().unwrap()], &["*.gz"], Path::new("/"));
        let (found, problems) = g.expand();
        assert!(problems.is_empty());
        // Directories match too; the caller keeps regular files only.
        assert_eq!(found, vec![dir.path().join("one"), dir.path().join("sub")]);
    }

    #[test]
    fn bad_pattern_is_named() {
        let err = Globs::new("trades", &["/x/[a".into()], &[], Path::new("/")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\"/x/[a\"") && msg.contains("trades"), "{msg}");
    }
}
