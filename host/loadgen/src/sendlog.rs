//! Every record the producer wrote, by record number: when it was written. The
//! timing connections look up, for each frame, the send time of every record the
//! frame stands for (those merged into it included), so that latency is measured
//! per record and coverage (records represented in delivered frames / records
//! produced) is exact.
//!
//! Record `n` belongs to topic `n % topics` (round robin), so a frame's record
//! number alone says which topic's records it covers.

use std::sync::Mutex;

/// Send times, one entry per `write(2)` (its records share one time).
#[derive(Debug, Default)]
pub struct SendLog {
    /// `(first record number of the write, send time in µs)`, ascending.
    writes: Mutex<Vec<(u64, u64)>>,
    /// The next record number.
    next: Mutex<u64>,
}

impl SendLog {
    /// Records that records `first..end` were written at `sent_us`.
    pub fn wrote(&self, first: u64, end: u64, sent_us: u64) {
        if first == end {
            return;
        }
        lock(&self.writes).push((first, sent_us));
        *lock(&self.next) = end;
    }

    /// The number the next record will get (= records written so far).
    pub fn next(&self) -> u64 {
        *lock(&self.next)
    }

    /// When record `n` was written, if it was.
    pub fn sent_us(&self, n: u64) -> Option<u64> {
        if n >= self.next() {
            return None;
        }
        let writes = lock(&self.writes);
        let at = writes.partition_point(|(first, _)| *first <= n);
        at.checked_sub(1).map(|i| writes[i].1)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_write_of_each_record() {
        let log = SendLog::default();
        log.wrote(0, 3, 100);
        log.wrote(3, 3, 150);
        log.wrote(3, 10, 200);
        assert_eq!(log.next(), 10);
        assert_eq!(
            [0, 2, 3, 9].map(|n| log.sent_us(n)),
            [Some(100), Some(100), Some(200), Some(200)]
        );
        assert_eq!(log.sent_us(10), None);
    }
}
