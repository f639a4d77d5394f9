//! The health of a supervised instance: counters the owning task updates on every
//! call and any other task can read through a [`HealthHandle`].

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::call::{CALL_KINDS, CallKind};
use crate::error::CallError;

/// Counters and state of a supervised instance, copied at one moment
/// ([`HealthHandle::snapshot`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    /// Calls made (including failed ones).
    pub calls: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Failures since the last success; once quarantined, the streak that led to
    /// it (overall, or of one kind of call: see [`crate::Instance`]).
    pub consecutive_failures: u32,
    /// Times the instance was rebuilt after a trap, timeout or OOM.
    pub rebuilds: u64,
    /// Times the instance was replaced by a fresh one carrying its state
    /// because its memory had grown past three quarters of its cap.
    pub recycles: u64,
    /// True once the plugin is quarantined; calls then fail at once.
    pub quarantined: bool,
    /// Times the plugin was quarantined (automatically or by hand).
    pub quarantines: u64,
    /// The last failure's message.
    pub last_error: Option<String>,
    /// Time spent inside the plugin.
    pub busy: Duration,
    /// Log lines (its `log` import, stdout and stderr) dropped for exceeding the
    /// instance's log quota.
    pub log_lines_suppressed: u64,
    /// Bytes of the log lines dropped for exceeding the quota.
    pub log_bytes_suppressed: u64,
}

/// The live counters of one instance, shared: the owning task updates them on
/// every call (relaxed atomic adds; the lock is taken only when a call fails), and
/// anyone holding a [`HealthHandle`] (`/metrics`, `/api/plugins`) reads them.
#[derive(Debug, Default)]
pub(crate) struct HealthCells {
    pub(crate) calls: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) consecutive_failures: AtomicU32,
    pub(crate) rebuilds: AtomicU64,
    pub(crate) recycles: AtomicU64,
    pub(crate) quarantined: AtomicBool,
    pub(crate) quarantines: AtomicU64,
    pub(crate) busy_nanos: AtomicU64,
    pub(crate) log_lines_suppressed: AtomicU64,
    pub(crate) log_bytes_suppressed: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
    /// Consecutive failures per kind of call (`call::CallKind`).
    pub(crate) kind_streaks: [AtomicU32; CALL_KINDS],
}

/// A cheap, cloneable read handle on an instance's health, usable from any task.
#[derive(Debug, Clone, Default)]
pub struct HealthHandle(pub(crate) Arc<HealthCells>);

impl HealthHandle {
    /// The counters now.
    pub fn snapshot(&self) -> Health {
        let c = &*self.0;
        Health {
            calls: c.calls.load(Relaxed),
            failures: c.failures.load(Relaxed),
            consecutive_failures: c.consecutive_failures.load(Relaxed),
            rebuilds: c.rebuilds.load(Relaxed),
            recycles: c.recycles.load(Relaxed),
            quarantined: c.quarantined.load(Relaxed),
            quarantines: c.quarantines.load(Relaxed),
            last_error: self.last_error(),
            busy: Duration::from_nanos(c.busy_nanos.load(Relaxed)),
            log_lines_suppressed: c.log_lines_suppressed.load(Relaxed),
            log_bytes_suppressed: c.log_bytes_suppressed.load(Relaxed),
        }
    }

    /// Whether the plugin is quarantined now.
    pub fn quarantined(&self) -> bool {
        self.0.quarantined.load(Relaxed)
    }

    /// Quarantines the instance from any task: its calls fail at once until
    /// [`HealthHandle::release`].
    pub fn quarantine(&self, reason: &str) {
        self.set_last_error(reason.to_string());
        self.set_quarantined();
    }

    /// Lifts a quarantine from any task: the next call rebuilds the instance if
    /// needed and tries again.
    pub fn release(&self) {
        self.0.consecutive_failures.store(0, Relaxed);
        for streak in &self.0.kind_streaks {
            streak.store(0, Relaxed);
        }
        self.0.quarantined.store(false, Relaxed);
    }

    /// Runs one call of a stand-in for a plugin instance (an in-process
    /// implementation of a plugin's calls, as in tests) under the failure
    /// accounting of an [`Instance`](crate::Instance): while quarantined the call
    /// fails at once with [`CallError::Quarantined`] and is not counted (except
    /// `export-state`: a live instance may export its state); otherwise `call` runs
    /// and is counted, a success resets the failure streaks (overall and of `kind`),
    /// and a failure is counted, kept as the last error, and quarantines after
    /// `quarantine_after` consecutive failures overall or of `kind`.
    ///
    /// `kind` is the WIT name of the call: `init`, `collect`, `diff`, `apply`,
    /// `on-samples`, `on-tick`, `export-state` or `import-state`.
    ///
    /// # Panics
    /// On any other `kind`.
    pub fn count_call<T>(
        &self,
        kind: &str,
        quarantine_after: u32,
        call: impl FnOnce() -> Result<T, CallError>,
    ) -> Result<T, CallError> {
        let kind = match kind {
            "init" => CallKind::Init,
            "collect" => CallKind::Collect,
            "diff" => CallKind::Diff,
            "apply" => CallKind::Apply,
            "on-samples" => CallKind::OnSamples,
            "on-tick" => CallKind::OnTick,
            "export-state" => CallKind::ExportState,
            "import-state" => CallKind::ImportState,
            other => panic!("no kind of plugin call is named `{other}`"),
        };
        if self.quarantined() && kind != CallKind::ExportState {
            return Err(self.quarantined_error());
        }
        self.0.calls.fetch_add(1, Relaxed);
        let result = call();
        match &result {
            Ok(_) => {
                self.count_success(kind);
            }
            Err(error) => {
                self.count_failure(kind, error, quarantine_after);
            }
        }
        result
    }

    /// The error of a call refused because the instance is quarantined.
    pub(crate) fn quarantined_error(&self) -> CallError {
        CallError::Quarantined {
            failures: self.0.consecutive_failures.load(Relaxed),
            last_error: self.last_error().unwrap_or_default(),
        }
    }

    /// Counts a successful call of `kind`: its failure streaks (overall and of
    /// `kind`) end. Returns them as they were, so that a refusal of the call's
    /// output can restore them.
    pub(crate) fn count_success(&self, kind: CallKind) -> (u32, u32) {
        let cells = &self.0;
        let overall = cells.consecutive_failures.swap(0, Relaxed);
        let of_kind = cells.kind_streaks[kind as usize].swap(0, Relaxed);
        (overall, of_kind)
    }

    /// Restores failure streaks that a success ended (see [`Self::count_success`]).
    pub(crate) fn restore_streaks(&self, kind: CallKind, (overall, of_kind): (u32, u32)) {
        let cells = &self.0;
        cells.consecutive_failures.store(overall, Relaxed);
        cells.kind_streaks[kind as usize].store(of_kind, Relaxed);
    }

    /// Counts a failed call of `kind` and keeps `error` as the last error; after
    /// `quarantine_after` consecutive failures, overall or of `kind`, quarantines
    /// the instance. Returns the longer streak and whether it quarantined.
    pub(crate) fn count_failure(
        &self,
        kind: CallKind,
        error: &CallError,
        quarantine_after: u32,
    ) -> (u32, bool) {
        let cells = &self.0;
        cells.failures.fetch_add(1, Relaxed);
        let overall = cells.consecutive_failures.fetch_add(1, Relaxed) + 1;
        let of_kind = cells.kind_streaks[kind as usize].fetch_add(1, Relaxed) + 1;
        self.set_last_error(error.to_string());
        let streak = overall.max(of_kind);
        let quarantine = streak >= quarantine_after;
        if quarantine {
            // Report the streak that led to the quarantine, whichever it was.
            cells.consecutive_failures.store(streak, Relaxed);
            self.set_quarantined();
        }
        (streak, quarantine)
    }

    pub(crate) fn last_error(&self) -> Option<String> {
        self.0
            .last_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub(crate) fn set_last_error(&self, message: String) {
        *self
            .0
            .last_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(message);
    }

    pub(crate) fn set_quarantined(&self) {
        if !self.0.quarantined.swap(true, Relaxed) {
            self.0.quarantines.fetch_add(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail() -> Result<(), CallError> {
        Err(CallError::Plugin("no".into()))
    }

    #[test]
    fn count_call_quarantines_after_a_streak_of_one_kind_and_refuses_until_released() {
        let health = HealthHandle::default();
        for _ in 0..2 {
            assert!(health.count_call("export-state", 3, fail).is_err());
            // Another kind of call succeeding resets only the overall streak.
            assert!(health.count_call("on-tick", 3, || Ok(())).is_ok());
        }
        assert!(!health.quarantined());
        assert!(health.count_call("export-state", 3, fail).is_err());
        assert!(health.quarantined());
        let at_quarantine = health.snapshot();
        assert_eq!((at_quarantine.calls, at_quarantine.failures), (5, 3));
        assert_eq!(at_quarantine.consecutive_failures, 3);

        // Refused at once, uncounted; an export still runs.
        let mut ran = false;
        let refused = health.count_call("collect", 3, || {
            ran = true;
            Ok(())
        });
        assert!(matches!(
            refused,
            Err(CallError::Quarantined { failures: 3, .. })
        ));
        assert!(!ran);
        assert_eq!(health.snapshot().calls, 5);
        assert!(health.count_call("export-state", 3, || Ok(())).is_ok());

        health.release();
        assert!(health.count_call("collect", 3, || Ok(())).is_ok());
        assert_eq!(health.snapshot().quarantines, 1);
    }
}
