//! The descriptor budget: how many tailed files may be open at once.
//!
//! Two caps apply to every open: the source's own (`FileSourceConfig::max_open_files`)
//! and one shared by all file sources of the process (the largest configured cap, set
//! when a source is created; by default half the soft `RLIMIT_NOFILE`, see
//! [`crate::limits`]). A [`Permit`] is taken before `open(2)` and released when the
//! [`OpenFile`] holding it drops, so the counts can never drift from the descriptors
//! actually held. Opening is attempted only with a permit: a file beyond the budget
//! waits (see `queue`) instead of failing with `EMFILE`.

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::stats::SourceStats;

/// Tailed files open in the whole process.
static PROCESS_OPEN: AtomicUsize = AtomicUsize::new(0);
/// The process-wide cap (0 until the first source sets it).
static PROCESS_CAP: AtomicUsize = AtomicUsize::new(0);

/// Raises the process-wide cap to at least `cap` (every source's cap fits in it).
pub(crate) fn widen_process_cap(cap: usize) {
    PROCESS_CAP.fetch_max(cap, Ordering::Relaxed);
}

/// One source's share of the budget.
#[derive(Debug)]
pub(crate) struct Budget {
    cap: usize,
    stats: Arc<SourceStats>,
}

/// The right to hold one descriptor; released on drop.
#[derive(Debug)]
pub(crate) struct Permit {
    stats: Arc<SourceStats>,
}

/// An open file and the permit it was opened under.
#[derive(Debug)]
pub(crate) struct OpenFile {
    /// Declared first: closed before the permit is returned.
    pub file: File,
    _permit: Permit,
}

impl Budget {
    /// A budget of `cap` open files for the source counting into `stats`.
    pub(crate) fn new(cap: usize, stats: Arc<SourceStats>) -> Budget {
        let cap = cap.max(1);
        widen_process_cap(cap);
        stats.set_open_budget(cap);
        Budget { cap, stats }
    }

    /// Takes a permit if both the source and the process are below their caps.
    pub(crate) fn try_acquire(&self) -> Option<Permit> {
        if self.stats.open_files() >= self.cap {
            return None;
        }
        let cap = PROCESS_CAP.load(Ordering::Relaxed).max(self.cap);
        PROCESS_OPEN
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < cap).then_some(n + 1)
            })
            .ok()?;
        self.stats.file_opened();
        Some(Permit {
            stats: self.stats.clone(),
        })
    }
}

impl Permit {
    /// Binds the permit to the file opened under it.
    pub(crate) fn hold(self, file: File) -> OpenFile {
        OpenFile {
            file,
            _permit: self,
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        PROCESS_OPEN.fetch_sub(1, Ordering::AcqRel);
        self.stats.file_released();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_capped_and_returned_on_drop() {
        let stats = Arc::new(SourceStats::default());
        let budget = Budget::new(2, stats.clone());
        let a = budget.try_acquire().expect("first");
        let b = budget.try_acquire().expect("second");
        assert!(budget.try_acquire().is_none(), "cap reached");
        assert_eq!(stats.snapshot().files_open, 2);
        drop(a);
        assert_eq!(stats.snapshot().files_open, 1);
        let c = budget.try_acquire().expect("a released permit is reusable");
        drop((b, c));
        assert_eq!(stats.snapshot().files_open, 0);
        assert_eq!(stats.snapshot().open_budget, 2);
    }
}
