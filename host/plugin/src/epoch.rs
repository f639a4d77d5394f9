//! The epoch ticker: advances the engine's epoch, on a thread of its own, while a
//! guest call may be running, and sleeps otherwise.
//!
//! Each tick runs the deadline check of every guest that is computing (past its
//! deadline it traps; before it, it yields so other tasks on its thread run). A
//! thread, not a task: when every runtime worker is busy inside guest code, a timer
//! task would never run and a looping plugin would never be interrupted.
//!
//! Every call is armed with its deadline first ([`Ticking::keep_until`]): the
//! ticker ticks until one tick past the latest deadline armed, then parks until the
//! next call. An idle host woke the ticker 930 times a second for nothing (1.5% of
//! a core).

use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

/// What the ticker and the calls it serves share.
#[derive(Debug)]
pub(crate) struct Ticking {
    base: Instant,
    /// The latest deadline armed, in nanoseconds since `base`.
    until_ns: AtomicU64,
    /// The ticker is parked, or about to: an arming call must wake it.
    parked: AtomicBool,
    stop: AtomicBool,
    thread: OnceLock<Thread>,
}

impl Ticking {
    /// Keeps the epoch advancing until one tick past `deadline`, waking the ticker
    /// if it sleeps. Call before the guest call it is the deadline of.
    pub(crate) fn keep_until(&self, deadline: Instant) {
        let ns = deadline.saturating_duration_since(self.base).as_nanos();
        self.until_ns
            .fetch_max(u64::try_from(ns).unwrap_or(u64::MAX), SeqCst);
        // After the deadline is published: a ticker that looked before it is
        // parked (or about to) by now, and is woken.
        if self.parked.load(SeqCst)
            && let Some(thread) = self.thread.get()
        {
            thread.unpark();
        }
    }

    /// Whether the ticker sleeps (no armed call can still need a tick).
    #[cfg(test)]
    fn is_parked(&self) -> bool {
        self.parked.load(SeqCst)
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// The ticker's thread; stops it when dropped.
pub(crate) struct EpochTicker {
    ticking: Arc<Ticking>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts a ticker that runs `tick` every `every` while calls need it.
    pub(crate) fn start(every: Duration, tick: impl Fn() + Send + 'static) -> Self {
        let ticking = Arc::new(Ticking {
            base: Instant::now(),
            until_ns: AtomicU64::new(0),
            parked: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            thread: OnceLock::new(),
        });
        let shared = ticking.clone();
        let every_ns = u64::try_from(every.as_nanos()).unwrap_or(u64::MAX);
        let thread = std::thread::Builder::new()
            .name("wasmeter-epoch".into())
            .spawn(move || {
                let _ = shared.thread.set(std::thread::current());
                while !shared.stop.load(SeqCst) {
                    let until = shared.until_ns.load(SeqCst);
                    if shared.now_ns() > until.saturating_add(every_ns) {
                        // Announce the sleep, then look again: a call armed in
                        // between either is seen here or sees `parked` and wakes us.
                        shared.parked.store(true, SeqCst);
                        if shared.until_ns.load(SeqCst) == until && !shared.stop.load(SeqCst) {
                            std::thread::park();
                        }
                        shared.parked.store(false, SeqCst);
                        continue;
                    }
                    std::thread::park_timeout(every);
                    tick();
                }
            })
            .expect("cannot spawn the epoch ticker thread");
        Self {
            ticking,
            thread: Some(thread),
        }
    }

    /// What calls arm their deadlines with.
    pub(crate) fn ticking(&self) -> Arc<Ticking> {
        self.ticking.clone()
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.ticking.stop.store(true, SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use super::*;

    /// Waits (bounded, 10 s) until `done`.
    fn until(what: &str, done: impl Fn() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < Duration::from_secs(10), "{what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn ticks_only_while_an_armed_call_may_run() {
        let ticks = Arc::new(AtomicU64::new(0));
        let counted = ticks.clone();
        let ticker = EpochTicker::start(Duration::from_millis(1), move || {
            counted.fetch_add(1, Relaxed);
        });
        let ticking = ticker.ticking();
        until("idle at the start", || ticking.is_parked());
        let idle = ticks.load(Relaxed);
        assert!(idle <= 1, "ticked {idle} times with no call armed");

        for _ in 0..3 {
            // A call armed: ticks until past its deadline, then sleeps again.
            let before = ticks.load(Relaxed);
            ticking.keep_until(Instant::now() + Duration::from_millis(30));
            until("ticking for the armed call", || {
                ticks.load(Relaxed) >= before + 5
            });
            until("asleep past the deadline", || ticking.is_parked());
        }
        drop(ticker); // stops and joins the thread
    }
}
