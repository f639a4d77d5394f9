//! The sender thread: the queue's oldest frame to the database, again and again
//! with exponential backoff (and jitter) while the database fails, until sent,
//! refused for good, or the output stops.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use crate::client::{Client, Outcome};
use crate::output::OutputStats;
use crate::queue::Queue;
use crate::stop::Stop;

/// Backoff between tries of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// After the first failure.
    pub min: Duration,
    /// At most.
    pub max: Duration,
}

impl Backoff {
    /// The wait after `failures` failures in a row, with up to 25 % jitter.
    pub fn after(&self, failures: u32, seed: u64) -> Duration {
        let base = self
            .min
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16));
        let base = base.min(self.max);
        let jitter = (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % 256;
        base - base * jitter as u32 / 1024
    }
}

/// Runs until `stop`: sends what the queue holds.
pub fn run(
    name: &str,
    queue: &Queue,
    client: &Client,
    backoff: Backoff,
    stop: &Stop,
    stats: &Arc<OutputStats>,
) {
    let mut seed = 0u64;
    while !stop.is_set() {
        let (place, frame) = match queue.head(Duration::from_millis(200)) {
            Ok(Some(head)) => head,
            Ok(None) => continue,
            Err(error) => {
                tracing::error!(output = name, %error, "output buffer unreadable; retrying");
                stats.buffer_errors.fetch_add(1, Relaxed);
                stop.wait(backoff.max);
                continue;
            }
        };
        let mut failures = 0u32;
        loop {
            match client.post(&frame.body) {
                Outcome::Sent => {
                    stats.sent.fetch_add(u64::from(frame.samples), Relaxed);
                    stats.requests.fetch_add(1, Relaxed);
                    break;
                }
                Outcome::Refused(why) => {
                    stats.requests.fetch_add(1, Relaxed);
                    stats.failed_requests.fetch_add(1, Relaxed);
                    stats
                        .dropped_refused
                        .fetch_add(u64::from(frame.samples), Relaxed);
                    tracing::error!(output = name, samples = frame.samples, %why, "the database refused a batch; it is dropped");
                    break;
                }
                Outcome::Retry(why) => {
                    stats.requests.fetch_add(1, Relaxed);
                    stats.failed_requests.fetch_add(1, Relaxed);
                    failures += 1;
                    seed = seed.wrapping_add(1);
                    let wait = backoff.after(failures, seed);
                    if failures == 1 || failures.is_power_of_two() {
                        tracing::warn!(output = name, failures, ?wait, %why, "output failed; retrying");
                    }
                    if stop.wait(wait) {
                        return; // the frame stays queued: spilled to disk at close
                    }
                    stats.retries.fetch_add(1, Relaxed);
                }
            }
        }
        if let Err(error) = queue.done(place) {
            tracing::error!(output = name, %error, "output buffer: cannot mark a batch sent");
            stats.buffer_errors.fetch_add(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_bound_with_some_jitter() {
        let b = Backoff {
            min: Duration::from_millis(100),
            max: Duration::from_secs(5),
        };
        let waits: Vec<u128> = (1..=8).map(|n| b.after(n, 0).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        for seed in 0..100 {
            let w = b.after(3, seed);
            assert!(
                w <= Duration::from_millis(400) && w >= Duration::from_millis(300),
                "{w:?}"
            );
        }
    }
}
