//! What a follower reports about itself.

use std::sync::Mutex;
use std::time::SystemTime;

/// A follower's state and counters, for status pages and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerStatus {
    /// Subscribed to the change channel and hydrated: the replica follows Redis.
    pub connected: bool,
    /// When `connected` last changed (or the follower started).
    pub since: SystemTime,
    /// The last error met (connect, command, unreadable frame), kept after recovery.
    pub last_error: Option<String>,
    /// Messages applied to the replica (in order, continuous or not).
    pub applied: u64,
    /// Messages dropped because the replica already held them.
    pub duplicates: u64,
    /// Gaps filled from the history stream (each missing message applied in order).
    pub gaps_repaired: u64,
    /// Gaps the history no longer covered: the newest message applied with
    /// `continuous = false` (subscribers get a snapshot).
    pub gaps_reset: u64,
    /// Topics brought up to date while (re)hydrating after a subscribe.
    pub hydrated: u64,
    /// Reconnects after the PUB/SUB connection was lost or failed.
    pub reconnects: u64,
    /// Periodic position checks run.
    pub checks: u64,
    /// Topics removed from the replica (removal notices, expiry found by checks).
    pub removals: u64,
    /// Messages lost because the follower fell behind its bounded buffer (each
    /// triggers a full position check).
    pub overflows: u64,
}

/// The status shared by the follower's task and its owner.
#[derive(Debug)]
pub(crate) struct StatusCell(Mutex<FollowerStatus>);

impl StatusCell {
    pub(crate) fn new() -> Self {
        Self(Mutex::new(FollowerStatus {
            connected: false,
            since: SystemTime::now(),
            last_error: None,
            applied: 0,
            duplicates: 0,
            gaps_repaired: 0,
            gaps_reset: 0,
            hydrated: 0,
            reconnects: 0,
            checks: 0,
            removals: 0,
            overflows: 0,
        }))
    }

    pub(crate) fn get(&self) -> FollowerStatus {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut FollowerStatus)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }

    pub(crate) fn set_connected(&self, connected: bool, error: Option<String>) {
        self.update(|s| {
            if s.connected != connected {
                s.connected = connected;
                s.since = SystemTime::now();
            }
            if error.is_some() {
                s.last_error = error;
            }
        });
    }

    pub(crate) fn error(&self, e: String) {
        self.update(|s| s.last_error = Some(e));
    }
}
