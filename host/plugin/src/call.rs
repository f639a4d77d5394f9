//! One guest call under supervision: the wall-clock bound, the classification of
//! a failure, and the failure accounting (health counters, streaks, quarantine).
//!
//! # Two bounds on a call
//! - The **epoch deadline** (`sandbox.rs`): checked at every epoch tick while guest
//!   code runs; past `call_timeout` the guest traps. It never fires while the guest
//!   waits inside a host call: WASI's monotonic-clock `subscribe-*` and `poll` are
//!   linked (Rust's `std::thread::sleep` uses them) and wait on tokio timers.
//! - The **wall-clock bound** ([`bounded`]): every guest call future (instantiate,
//!   `describe`, `init`, each world's calls, export/import state) runs under
//!   `tokio::time::timeout(call_timeout + ABANDON_GRACE)`. A guest still parked in
//!   a host call then is abandoned: its future is dropped, its `Store` is
//!   considered poisoned, and the call fails with [`CallError::Deadline`], counted
//!   exactly like a deadline (the instance is dropped and rebuilt for the next
//!   call). The grace lets the epoch deadline, which reports a computing guest
//!   more precisely, win the race when both apply.

use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use wasmeter_core::validate::OutputError;
use wasmtime::Store;

use crate::error::CallError;
use crate::instance::{Instance, log_flood};
use crate::lifecycle::World;
use crate::limits::PluginLimits;
use crate::sandbox::StoreData;

/// Wall-clock time a call gets past its `call_timeout` before it is abandoned.
pub const ABANDON_GRACE: Duration = Duration::from_millis(50);

/// The kinds of guest calls. Failure streaks are counted per kind as well as
/// overall, so that one failing kind cannot hide behind the successes of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallKind {
    /// Building an instance (instantiate + `init`), also when rebuilding one.
    Init,
    Collect,
    Diff,
    Apply,
    OnSamples,
    OnTick,
    ExportState,
    ImportState,
}

/// Number of [`CallKind`]s.
pub(crate) const CALL_KINDS: usize = 8;

/// What happened to the last call, for [`Instance::record_failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LastCall {
    /// No call yet, or the last one failed.
    None,
    /// Succeeded; the streaks its success reset: overall and of its kind.
    Succeeded { overall: u32, kind: u32 },
    /// Succeeded, then the host refused its output.
    Refused,
}

/// Runs one guest call on an [`Instance`]: `enter`, the bounded call, `leave`.
///
/// `guest_call!(instance, kind, |bindings, store| <future>, |result, limits| <check>)`
macro_rules! guest_call {
    ($inst:expr, $kind:expr, |$b:ident, $store:ident| $call:expr, $check:expr) => {{
        let inst = $inst;
        match inst.enter($kind).await {
            Err(e) => Err(e),
            Ok(($b, $store, limit)) => {
                let raw = $crate::call::bounded(limit, $call).await;
                inst.leave(raw, $check)
            }
        }
    }};
}

pub(crate) use guest_call;

/// A guest call's outcome; `None` if it was abandoned at the wall-clock bound.
pub(crate) type Raw<R> = Option<wasmtime::Result<R>>;

/// Runs a guest call future for at most `limit` + [`ABANDON_GRACE`] of wall-clock
/// time; past that the future is dropped (the store must then be discarded).
pub(crate) async fn bounded<R>(
    limit: Duration,
    call: impl Future<Output = wasmtime::Result<R>>,
) -> Raw<R> {
    tokio::time::timeout(limit.saturating_add(ABANDON_GRACE), call)
        .await
        .ok()
}

/// The result of a call from its raw outcome: abandoned calls are deadline failures.
pub(crate) fn settle<R>(
    store: &Store<StoreData>,
    raw: Raw<R>,
    limits: &PluginLimits,
) -> Result<R, CallError> {
    match raw {
        Some(Ok(r)) => Ok(r),
        Some(Err(e)) => Err(classify(store, e, limits)),
        None => Err(deadline(limits)),
    }
}

fn deadline(limits: &PluginLimits) -> CallError {
    CallError::Deadline {
        limit_ms: limits.call_timeout.as_millis() as u64,
    }
}

/// Turns a wasmtime error from a guest call into a [`CallError`] that says what
/// happened: the deadline, the memory cap, or the trap and the plugin's last words.
pub(crate) fn classify(
    store: &Store<StoreData>,
    error: wasmtime::Error,
    limits: &PluginLimits,
) -> CallError {
    let data = store.data();
    if data.deadline_hit {
        return deadline(limits);
    }
    if let Some(requested_bytes) = data.memory.refused {
        return CallError::MemoryLimit {
            requested_bytes,
            limit_bytes: data.memory.limit_bytes,
        };
    }
    let mut message = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{error:#}"),
    };
    if let Some(stderr) = data.log.recent_stderr() {
        message = format!("{message}; plugin stderr: {stderr}");
    }
    CallError::Trap { message }
}

impl<W: World> Instance<W> {
    /// Prepares a guest call: refuses it if quarantined, rebuilds the instance if
    /// the last call poisoned it, and arms the deadline. Returns the bindings, the
    /// store and the call's timeout. Use [`guest_call!`].
    pub(crate) async fn enter(
        &mut self,
        kind: CallKind,
    ) -> Result<(&W::Bindings, &mut Store<StoreData>, Duration), CallError> {
        let cells = &self.health.0;
        // A quarantined instance that is still alive keeps what it processed: its
        // state may be exported (for a checkpoint, or a swap to a fixed version).
        let exportable = kind == CallKind::ExportState && self.live.is_some();
        if cells.quarantined.load(Relaxed) && !exportable {
            return Err(self.health.quarantined_error());
        }
        cells.calls.fetch_add(1, Relaxed);
        self.last = LastCall::None;
        if self.live.is_none() {
            cells.rebuilds.fetch_add(1, Relaxed);
            self.current = CallKind::Init;
            match Self::start(&self.plugin, &self.log, &self.config, &self.limits).await {
                Ok(live) => self.live = Some(live),
                Err(e) => {
                    self.fail(&e);
                    return Err(e);
                }
            }
        }
        if !matches!(kind, CallKind::ExportState | CallKind::ImportState) {
            self.recycle_if_grown().await;
        }
        self.current = kind;
        let live = self.live.as_mut().expect("just ensured");
        self.call_started = Instant::now();
        StoreData::arm(
            &mut live.store,
            self.call_started + self.limits.call_timeout,
        );
        Ok((&live.bindings, &mut live.store, self.limits.call_timeout))
    }

    /// Finishes a guest call: classifies a failure, `check`s the result, fails a
    /// call that flooded the log, and records success or failure.
    pub(crate) fn leave<R, T>(
        &mut self,
        raw: Raw<R>,
        check: impl FnOnce(R, &PluginLimits) -> Result<T, CallError>,
    ) -> Result<T, CallError> {
        let busy = self.call_started.elapsed().as_nanos() as u64;
        self.health.0.busy_nanos.fetch_add(busy, Relaxed);
        let flood = self.log.end_call();
        let live = self.live.as_ref().expect("entered");
        let mut result =
            settle(&live.store, raw, &self.limits).and_then(|r| check(r, &self.limits));
        if let (Ok(_), Some(problem)) = (&result, flood) {
            result = Err(log_flood(problem));
        }
        match &result {
            Ok(_) => self.succeed(),
            Err(e) => self.fail(e),
        }
        result
    }

    /// The host refused the output of the last call (a topic another pipeline
    /// owns, a quota of the pipeline, ...): counts it exactly like a call whose
    /// output was invalid. The failure counter, the last error (`message`) and the
    /// failure streaks see it, and the plugin is quarantined after
    /// `quarantine_after` consecutive failures. The last call's success is undone:
    /// a plugin whose every output is refused is quarantined although each call
    /// succeeded. Refusing the same call again only updates the last error; called
    /// when the last call failed (or none was made) it counts as a failure of its own.
    /// The instance is kept (refused output does not poison it).
    pub fn record_failure(&mut self, message: &str) {
        let error = CallError::InvalidOutput(OutputError {
            item: "output refused by the host".into(),
            problem: message.into(),
        });
        match self.last {
            LastCall::Refused => {
                self.health.set_last_error(error.to_string());
                tracing::warn!(plugin = %self.name, %error, "plugin output refused");
            }
            LastCall::Succeeded { overall, kind } => {
                self.health.restore_streaks(self.current, (overall, kind));
                self.fail(&error);
                self.last = LastCall::Refused;
            }
            LastCall::None => self.fail(&error),
        }
    }

    fn succeed(&mut self) {
        let (overall, kind) = self.health.count_success(self.current);
        self.last = LastCall::Succeeded { overall, kind };
    }

    /// Counts a failure of the current kind of call; drops a poisoned instance;
    /// quarantines after `quarantine_after` consecutive failures (overall or of
    /// this kind).
    fn fail(&mut self, error: &CallError) {
        let (streak, quarantined) =
            self.health
                .count_failure(self.current, error, self.limits.quarantine_after);
        self.last = LastCall::None;
        if error.poisons_instance() {
            // A trapped or abandoned component instance is unusable; drop it (and
            // its memory) now, rebuild on the next call.
            self.live = None;
        }
        if quarantined {
            tracing::error!(plugin = %self.name, failures = streak, call = ?self.current, %error, "plugin quarantined");
        } else {
            tracing::warn!(plugin = %self.name, call = ?self.current, %error, "plugin call failed");
        }
    }
}
