//! How many records one collector call gets.
//!
//! A chunk from a file holds up to `max_chunk_bytes` (1 MiB by default) of whole
//! records: tens of thousands of short ones. One call over all of them can
//! produce more output than the plugin's limits allow (100,000 samples are
//! 25,000 trades of the CSV collector) or run past its deadline. Such a call is
//! refused and retried record by record: slowly, and, for a stateful collector
//! whose state already took the chunk in, twice. So the pipeline learns, from the
//! calls that succeeded, how much output and time a record costs this collector,
//! and splits file chunks so that each call stays within a fraction of the
//! limits. The split is at record boundaries; the records are the same, in the
//! same order, so the output is too.

use std::time::Duration;

use wasmeter_plugin::PluginLimits;

/// Records in a call before anything is known of the collector.
const FIRST_CALL_RECORDS: usize = 64;

/// The share of a limit a call is sized to use: room for records that cost more
/// than those seen so far.
const HEADROOM: f64 = 0.25;

/// How fast a high cost seen once is forgotten, per call.
const DECAY: f64 = 0.98;

/// What a record has cost the collector at most (decaying), per kind of cost.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallSizer {
    /// Samples per record.
    samples: f64,
    /// Topic updates per record.
    updates: f64,
    /// Nanoseconds per record.
    nanos: f64,
    /// Whether a call was seen yet.
    known: bool,
}

impl CallSizer {
    /// Records the next call may take under `limits` (at least one).
    pub fn records_per_call(&self, limits: &PluginLimits) -> usize {
        if !self.known {
            return FIRST_CALL_RECORDS;
        }
        let within = |limit: f64, per_record: f64| {
            if per_record > 0.0 {
                limit * HEADROOM / per_record
            } else {
                f64::INFINITY
            }
        };
        let records = within(limits.output.max_samples as f64, self.samples)
            .min(within(limits.output.max_updates as f64, self.updates))
            .min(within(limits.call_timeout.as_nanos() as f64, self.nanos));
        // Saturating: an infinite or huge bound is "all of the chunk".
        (records as usize).max(1)
    }

    /// Learns from a call over `records` records that succeeded.
    pub fn observe(&mut self, records: usize, samples: usize, updates: usize, took: Duration) {
        if records == 0 {
            return;
        }
        let n = records as f64;
        let keep = |old: f64, new: f64| new.max(old * DECAY);
        self.samples = keep(self.samples, samples as f64 / n);
        self.updates = keep(self.updates, updates as f64 / n);
        self.nanos = keep(self.nanos, took.as_nanos() as f64 / n);
        self.known = true;
    }

    /// A call over `records` records was refused for its output: the next ones
    /// get at most half as many.
    pub fn refused(&mut self, records: usize, limits: &PluginLimits) {
        if records <= 1 {
            return;
        }
        // As if each record had cost twice what fits `records / 2` of them.
        let per_record = |limit: usize| limit as f64 * HEADROOM / (records as f64 / 2.0);
        self.samples = self.samples.max(per_record(limits.output.max_samples));
        self.updates = self.updates.max(per_record(limits.output.max_updates));
        self.known = true;
    }
}

/// The length of the first `n` records of `data` (all of `data` if it holds
/// fewer), and how many records that is.
pub(crate) fn first_records(data: &[u8], n: usize) -> (usize, usize) {
    match memchr::memchr_iter(b'\n', data).take(n).enumerate().last() {
        Some((i, end)) if i + 1 == n => (end + 1, n),
        Some((i, _)) => (data.len(), i + 1 + usize::from(!data.ends_with(b"\n"))),
        None => (data.len(), usize::from(!data.is_empty())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_split_at_line_ends() {
        let data = b"a\nbb\nccc\n";
        assert_eq!(first_records(data, 1), (2, 1));
        assert_eq!(first_records(data, 2), (5, 2));
        assert_eq!(first_records(data, 3), (9, 3));
        assert_eq!(first_records(data, 10), (9, 3));
        assert_eq!(first_records(b"a\nb", 10), (3, 2));
        assert_eq!(first_records(b"", 10), (0, 0));
    }

    #[test]
    fn calls_are_sized_to_a_share_of_the_limits() {
        let limits = PluginLimits::default();
        let mut sizer = CallSizer::default();
        assert_eq!(sizer.records_per_call(&limits), FIRST_CALL_RECORDS);
        // Four samples and one update per record, 5 µs each: the sample cap binds.
        sizer.observe(100, 400, 100, Duration::from_micros(500));
        let samples_bound = (limits.output.max_samples as f64 * HEADROOM / 4.0) as usize;
        let time_bound = (limits.call_timeout.as_nanos() as f64 * HEADROOM / 5_000.0) as usize;
        assert_eq!(
            sizer.records_per_call(&limits),
            samples_bound.min(time_bound)
        );
        // A slower call lowers it; a cheap one raises it only slowly.
        sizer.observe(10, 40, 10, Duration::from_millis(10));
        let slow = sizer.records_per_call(&limits);
        assert!(slow < samples_bound.min(time_bound));
        sizer.observe(100, 0, 0, Duration::from_nanos(100));
        assert!(sizer.records_per_call(&limits) < slow * 2);
    }

    #[test]
    fn a_refused_call_halves_the_next_ones() {
        let limits = PluginLimits::default();
        let mut sizer = CallSizer::default();
        sizer.observe(10, 10, 10, Duration::from_nanos(10));
        sizer.refused(1_000, &limits);
        assert!(sizer.records_per_call(&limits) <= 500);
    }
}
