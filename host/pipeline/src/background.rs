//! Work that may wait: run on a thread of lower scheduling weight, so that the
//! runtime's workers take the cores first while it runs.
//!
//! A checkpoint is encoded and written once a second per shard, on a blocking
//! thread: 0.5-1 ms of CPU with 100 topics, more with 10,000. On two cores that
//! was a core the workers waited for (at 10,000 symbols the subscribers' p99 was
//! 1.18-1.35x what it is with the writer at a lower priority). The blocking pool's
//! threads are shared and an unprivileged thread cannot raise its priority back,
//! so the work gets a thread of its own, which exits with it.

use std::sync::{Arc, Mutex, PoisonError};

/// The nice value added for background work (0 to 19 on Linux: 10 weighs about a
/// tenth of a normal thread when both want a core).
const NICENESS: libc::c_int = 10;

/// Runs `work` on a thread of its own at lower priority and returns its result
/// (a panic in it is resumed here). Blocks the calling thread: call it from a
/// blocking context. If no thread can be started, runs `work` here.
pub(crate) fn at_low_priority<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    let slot = Arc::new(Mutex::new(Some(work)));
    let theirs = slot.clone();
    let spawned = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            lower_priority();
            take(&theirs)()
        });
    match spawned {
        Ok(thread) => thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        Err(error) => {
            tracing::debug!(%error, "cannot start a background thread; the work runs here");
            take(&slot)()
        }
    }
}

/// The work, taken out of its slot (by whichever thread runs it).
fn take<F>(slot: &Mutex<Option<F>>) -> F {
    slot.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .expect("the work is taken once")
}

/// Adds [`NICENESS`] to the calling thread's nice value (Linux's nice values are
/// per thread). Raising it needs no privilege; failing leaves it as it was.
fn lower_priority() {
    // SAFETY: plain system calls on the calling thread, no pointers.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(libc::PRIO_PROCESS, tid, (now + NICENESS).min(19));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nice_of_this_thread() -> libc::c_int {
        // SAFETY: a plain system call on the calling thread.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    #[test]
    fn runs_the_work_at_a_lower_priority_and_leaves_the_caller_s() {
        let before = nice_of_this_thread();
        let (nice, name) = at_low_priority("background-test", || {
            let name = std::thread::current().name().map(str::to_owned);
            (nice_of_this_thread(), name)
        });
        assert_eq!(nice, (before + NICENESS).min(19));
        assert_eq!(
            name.as_deref(),
            Some("background-test"),
            "on a thread of its own"
        );
        assert_eq!(nice_of_this_thread(), before, "the caller's is unchanged");
    }

    #[test]
    fn a_panic_in_the_work_reaches_the_caller() {
        let caught =
            std::panic::catch_unwind(|| at_low_priority("background-test", || panic!("boom")));
        let payload = caught.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
    }
}
