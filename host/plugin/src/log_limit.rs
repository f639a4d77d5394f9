//! Bounds on what a plugin may write into the host's log: the size of one line,
//! its fields, and the volume per second.
//!
//! - **Size**: a message (a `log` call's message, or one line of stdout/stderr)
//!   keeps its first [`MAX_MESSAGE_BYTES`] bytes, followed by a marker saying how
//!   many bytes were cut. A `log` call keeps at most [`MAX_LOG_FIELDS`] fields,
//!   each name and value cut at [`MAX_FIELD_BYTES`].
//! - **Rate**: each instance has a token bucket of `log_bytes_per_sec` bytes
//!   (`PluginLimits`), refilled continuously and holding one second of quota;
//!   a line costs its bytes plus [`LINE_OVERHEAD_BYTES`]. The bucket belongs to
//!   the supervised instance, so rebuilding it after a trap does not refill it.
//!   Lines beyond the quota are suppressed and counted (the instance's health:
//!   `log_lines_suppressed`, `log_bytes_suppressed`); a warning "N log lines
//!   (M bytes) suppressed" is logged when logging resumes (bounded by the lines the
//!   quota lets through), and at the end of a call: the first call that suppressed
//!   anything, then at most once per [`SUMMARY_EVERY`].
//! - **Flood**: a call that tries to log more than [`LOG_FLOOD_FACTOR`] seconds of
//!   quota (counting every byte it handed over, before cutting) fails with
//!   "invalid output: log output: ...", which counts toward quarantine like any
//!   failed call. Deterministic (per call, not per wall-clock interval), so a
//!   plugin cannot stay just under a time window.

use std::time::{Duration, Instant};

use crate::limits::LOG_FLOOD_FACTOR;

/// Longest message (or stdout/stderr line) kept, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Fields kept per `log` call.
pub const MAX_LOG_FIELDS: usize = 16;
/// Longest field name or value kept, in bytes.
pub const MAX_FIELD_BYTES: usize = 256;
/// What a line costs on top of its bytes, so that floods of empty lines are bounded too.
pub const LINE_OVERHEAD_BYTES: u64 = 64;
/// Shortest interval between two "suppressed" summaries while a flood lasts.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(1);

/// Cuts `text` to `max` bytes (on a character boundary), saying how much was cut.
pub(crate) fn cap_text(text: &str, max: usize) -> String {
    cap_text_after(text, max, 0)
}

/// Like [`cap_text`], for a text of which `already_cut` bytes were dropped earlier.
pub(crate) fn cap_text_after(text: &str, max: usize, already_cut: usize) -> String {
    if text.len() <= max && already_cut == 0 {
        return text.to_string();
    }
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text.len() - end + already_cut;
    format!("{}… [{cut} bytes cut]", &text[..end])
}

/// Caps a `log` call's fields: at most [`MAX_LOG_FIELDS`], names and values cut at
/// [`MAX_FIELD_BYTES`]; a last field `dropped_fields` counts the ones left out.
pub(crate) fn cap_fields(fields: Vec<(String, String)>) -> Vec<(String, String)> {
    let dropped = fields.len().saturating_sub(MAX_LOG_FIELDS);
    let mut kept: Vec<_> = fields
        .into_iter()
        .take(MAX_LOG_FIELDS)
        .map(|(k, v)| (cap_text(&k, MAX_FIELD_BYTES), cap_text(&v, MAX_FIELD_BYTES)))
        .collect();
    if dropped > 0 {
        kept.push(("dropped_fields".into(), dropped.to_string()));
    }
    kept
}

/// Lines and bytes suppressed since the last summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Suppressed {
    pub(crate) lines: u64,
    pub(crate) bytes: u64,
}

/// The token bucket and suppression accounting of one instance.
#[derive(Debug)]
pub(crate) struct LogLimiter {
    rate: u64,
    tokens: f64,
    refilled: Instant,
    pending: Suppressed,
    last_summary: Option<Instant>,
    attempted_this_call: u64,
}

impl LogLimiter {
    /// A full bucket of `rate` bytes per second.
    pub(crate) fn new(rate: u64, now: Instant) -> Self {
        Self {
            rate,
            tokens: rate as f64,
            refilled: now,
            pending: Suppressed::default(),
            last_summary: None,
            attempted_this_call: 0,
        }
    }

    /// Starts a call: its flood accounting starts from zero.
    pub(crate) fn begin_call(&mut self) {
        self.attempted_this_call = 0;
    }

    /// Notes `bytes` handed over by the guest (before any cutting), for the flood rule.
    pub(crate) fn attempted(&mut self, bytes: usize) {
        self.attempted_this_call = self.attempted_this_call.saturating_add(bytes as u64);
    }

    /// Whether a line of `bytes` may be logged now. `Ok(Some(s))`: yes, but first
    /// report `s`, the lines suppressed before it. `Err(())`: suppressed (counted).
    pub(crate) fn admit(&mut self, bytes: usize, now: Instant) -> Result<Option<Suppressed>, ()> {
        self.refill(now);
        let cost = bytes as u64 + LINE_OVERHEAD_BYTES;
        if self.tokens < cost as f64 {
            self.pending.lines += 1;
            self.pending.bytes += bytes as u64;
            return Err(());
        }
        self.tokens -= cost as f64;
        Ok(self.take_pending())
    }

    /// Ends a call: the summary to report now, if any (the first time, then at most
    /// once per [`SUMMARY_EVERY`]; summaries on resuming do not count), and the
    /// flood verdict of the call.
    pub(crate) fn end_call(&mut self, now: Instant) -> (Option<Suppressed>, Option<String>) {
        let due = self
            .last_summary
            .is_none_or(|at| now.duration_since(at) >= SUMMARY_EVERY);
        let summary = if due { self.take_pending() } else { None };
        if summary.is_some() {
            self.last_summary = Some(now);
        }
        let allowed = self.rate.saturating_mul(LOG_FLOOD_FACTOR);
        let flood = (self.attempted_this_call > allowed).then(|| {
            format!(
                "the call tried to log {} bytes, more than {LOG_FLOOD_FACTOR} s of its quota of {} bytes/s (log_bytes_per_sec)",
                self.attempted_this_call, self.rate
            )
        });
        (summary, flood)
    }

    fn take_pending(&mut self) -> Option<Suppressed> {
        if self.pending.lines == 0 {
            return None;
        }
        Some(std::mem::take(&mut self.pending))
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + elapsed * self.rate as f64).min(self.rate as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_with_a_marker() {
        assert_eq!(cap_text("short", 10), "short");
        let cut = cap_text(&"x".repeat(5000), MAX_MESSAGE_BYTES);
        assert!(cut.starts_with(&"x".repeat(MAX_MESSAGE_BYTES)));
        assert!(cut.ends_with("… [904 bytes cut]"), "{cut}");
        // Never splits a character.
        assert_eq!(cap_text("ééé", 3), "é… [4 bytes cut]");
    }

    #[test]
    fn fields_are_capped_in_number_and_size() {
        let fields: Vec<_> = (0..20)
            .map(|i| (format!("k{i}"), "v".repeat(1000)))
            .collect();
        let capped = cap_fields(fields);
        assert_eq!(capped.len(), MAX_LOG_FIELDS + 1);
        assert!(capped[0].1.ends_with("[744 bytes cut]"), "{}", capped[0].1);
        assert_eq!(
            capped[MAX_LOG_FIELDS],
            ("dropped_fields".into(), "4".into())
        );
    }

    #[test]
    fn bucket_suppresses_beyond_the_rate_and_reports_when_resuming() {
        let t0 = Instant::now();
        let mut l = LogLimiter::new(1000, t0);
        // 1000 tokens: 936 + 64 fit, the next line does not.
        assert_eq!(l.admit(936, t0), Ok(None));
        assert_eq!(l.admit(0, t0), Err(()));
        assert_eq!(l.admit(10, t0), Err(()));
        // Half a second later, 500 tokens: logging resumes with a summary first.
        let resumed = l.admit(100, t0 + Duration::from_millis(500));
        assert_eq!(
            resumed,
            Ok(Some(Suppressed {
                lines: 2,
                bytes: 10
            }))
        );
        assert_eq!(l.admit(100, t0 + Duration::from_millis(500)), Ok(None));
    }

    #[test]
    fn a_summary_on_resuming_does_not_delay_the_one_at_the_call_end() {
        let t0 = Instant::now();
        let mut l = LogLimiter::new(1000, t0);
        l.begin_call();
        assert_eq!(l.admit(936, t0), Ok(None));
        assert_eq!(l.admit(10, t0), Err(()));
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(
            l.admit(0, t1),
            Ok(Some(Suppressed {
                lines: 1,
                bytes: 10
            }))
        );
        assert_eq!(l.admit(20, t1), Err(()));
        let (summary, _) = l.end_call(t1);
        assert_eq!(
            summary,
            Some(Suppressed {
                lines: 1,
                bytes: 20
            })
        );
    }

    #[test]
    fn summaries_at_call_end_are_spaced_and_floods_fail_the_call() {
        let t0 = Instant::now();
        let mut l = LogLimiter::new(100, t0);
        l.begin_call();
        for _ in 0..3 {
            l.attempted(1000);
            let _ = l.admit(1000, t0);
        }
        let (summary, flood) = l.end_call(t0);
        assert_eq!(
            summary,
            Some(Suppressed {
                lines: 3,
                bytes: 3000
            })
        );
        assert!(flood.unwrap().contains("tried to log 3000 bytes"));
        l.begin_call();
        let _ = l.admit(1000, t0);
        let (summary, flood) = l.end_call(t0 + Duration::from_millis(10));
        assert_eq!(summary, None, "not twice within a second");
        assert_eq!(flood, None, "attempts are counted per call");
        let (summary, _) = l.end_call(t0 + SUMMARY_EVERY);
        assert_eq!(
            summary,
            Some(Suppressed {
                lines: 1,
                bytes: 1000
            })
        );
    }
}
