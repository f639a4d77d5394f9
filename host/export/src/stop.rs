//! A stop flag threads can wait on with a bound.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Set once; waiters wake at once.
#[derive(Debug, Default)]
pub struct Stop {
    set: Mutex<bool>,
    cv: Condvar,
}

impl Stop {
    /// Sets it.
    pub fn set(&self) {
        *self.set.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }

    /// Whether it is set.
    pub fn is_set(&self) -> bool {
        *self.set.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits up to `bound`; true if it is set.
    pub fn wait(&self, bound: Duration) -> bool {
        let set = self.set.lock().unwrap_or_else(|e| e.into_inner());
        let (set, _) = self
            .cv
            .wait_timeout_while(set, bound, |set| !*set)
            .unwrap_or_else(|e| e.into_inner());
        *set
    }
}
