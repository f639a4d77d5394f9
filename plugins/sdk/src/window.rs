//! Rolling time windows kept as a fixed number of time buckets, so that a window's memory
//! and exported state depend on its length in buckets, never on how many samples fell in it.
//!
//! A [`BucketSpec`] cuts the time axis into buckets of `width_ms = ceil(window_ms /
//! buckets)` milliseconds (at least 1), aligned on the Unix epoch: bucket `i` covers
//! `[i * width_ms, (i + 1) * width_ms)`. A [`BucketWindow`] keeps one [`Aggregate`] per
//! bucket that received a value. Relative to a reference time `t` (the newest value, or
//! the clock on a tick), the window is `[t - window_ms, t]`; a bucket is dropped once all
//! of it is older than `t - window_ms`. So a value is in the window from its arrival
//! until it is at least `window_ms` and at most `window_ms + width_ms - 1` ms older than
//! the reference: the window's old edge moves in steps of one bucket, and a window holds
//! at most `buckets + 1` buckets (the oldest one partly outside the window).
//!
//! Windows only move forward: a value older than the newest of its window is counted at
//! the newest timestamp.
//!
//! ```
//! use wasmeter_sdk::window::{Aggregate, BucketSpec, BucketWindow};
//!
//! #[derive(Debug, Clone, PartialEq)]
//! struct Sum(f64);
//! impl Aggregate for Sum {
//!     fn merge(&mut self, other: &Self) {
//!         self.0 += other.0;
//!     }
//! }
//!
//! let spec = BucketSpec::new(1000, 10).unwrap(); // 10 buckets of 100 ms
//! let mut w = BucketWindow::new();
//! w.add(&spec, 1_000, Sum(1.0));
//! w.add(&spec, 1_050, Sum(2.0)); // same bucket as 1_000
//! w.add(&spec, 1_500, Sum(4.0));
//! assert_eq!((w.len(), w.total()), (2, Some(&Sum(7.0))));
//! assert!(!w.expire(&spec, 2_099)); // [1000, 1100) still overlaps [1099, 2099]
//! assert!(w.expire(&spec, 2_100));
//! assert_eq!(w.total(), Some(&Sum(4.0)));
//! ```

use std::collections::VecDeque;

use crate::Config;
use crate::state::{StateReader, StateWriter};

/// Buckets per window when the config does not say (key `buckets`).
pub const DEFAULT_BUCKETS: u32 = 60;

/// The largest accepted number of buckets per window.
pub const MAX_BUCKETS: u32 = 3600;

/// A window's length and how it is cut into buckets; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketSpec {
    window_ms: i64,
    width_ms: i64,
}

// The methods are `#[inline]`: only code-generated in the plugins that call them, so the
// plugins that keep no window build byte for byte as before this module existed (the
// built-in components are checked against fresh builds).
impl BucketSpec {
    /// A window of `window_ms` (> 0) cut into `buckets` (1 to [`MAX_BUCKETS`]) buckets.
    #[inline]
    pub fn new(window_ms: i64, buckets: u32) -> Result<Self, String> {
        if window_ms <= 0 {
            return Err(format!("window_ms: {window_ms} must be > 0"));
        }
        if !(1..=MAX_BUCKETS).contains(&buckets) {
            return Err(format!(
                "buckets: {buckets} must be between 1 and {MAX_BUCKETS}"
            ));
        }
        Ok(BucketSpec {
            window_ms,
            width_ms: (window_ms - 1) / i64::from(buckets) + 1,
        })
    }

    /// Reads the config keys `window_ms` (default `default_window_ms`, > 0) and `buckets`
    /// (default [`DEFAULT_BUCKETS`], 1 to [`MAX_BUCKETS`]); errors name the key and value.
    #[inline]
    pub fn from_config(config: &Config, default_window_ms: i64) -> Result<Self, String> {
        let window_ms =
            config.parse_checked("window_ms", Some(default_window_ms), |w| *w > 0, "> 0")?;
        let range = format!("an integer between 1 and {MAX_BUCKETS}");
        let buckets = config.parse_checked(
            "buckets",
            Some(DEFAULT_BUCKETS),
            |b| (1..=MAX_BUCKETS).contains(b),
            &range,
        )?;
        BucketSpec::new(window_ms, buckets)
    }

    /// The window's length in milliseconds.
    #[inline]
    pub fn window_ms(&self) -> i64 {
        self.window_ms
    }

    /// The width of a bucket in milliseconds: `ceil(window_ms / buckets)`.
    #[inline]
    pub fn width_ms(&self) -> i64 {
        self.width_ms
    }

    /// The index of the bucket holding `ts`.
    #[inline]
    pub fn index_of(&self, ts: i64) -> i64 {
        ts.div_euclid(self.width_ms)
    }

    /// The oldest bucket still in the window of `reference`: the one holding
    /// `reference - window_ms`.
    #[inline]
    fn first_live(&self, reference: i64) -> i64 {
        self.index_of(reference.saturating_sub(self.window_ms))
    }
}

/// What a bucket keeps of its values (sums, extremes...).
pub trait Aggregate: Clone {
    /// Folds `other` (a later value, or a later bucket) into `self`.
    fn merge(&mut self, other: &Self);
}

/// The buckets of one series' window, oldest first; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct BucketWindow<A> {
    newest: Option<i64>,
    buckets: VecDeque<(i64, A)>,
    /// All buckets merged, oldest first (recomputed when a bucket is dropped).
    total: Option<A>,
}

impl<A> Default for BucketWindow<A> {
    fn default() -> Self {
        BucketWindow {
            newest: None,
            buckets: VecDeque::new(),
            total: None,
        }
    }
}

/// Equal if the newest timestamps and the buckets are equal (the cached total may differ
/// in rounding after a state round trip).
impl<A: PartialEq> PartialEq for BucketWindow<A> {
    fn eq(&self, other: &Self) -> bool {
        self.newest == other.newest && self.buckets == other.buckets
    }
}

impl<A: Aggregate> BucketWindow<A> {
    /// An empty window.
    pub fn new() -> Self {
        Self::default()
    }

    /// Merges `value` into the bucket of `ts` (or of the newest timestamp, if later), then
    /// drops the buckets that left the window of the newest timestamp. Returns the
    /// timestamp the value was counted at.
    pub fn add(&mut self, spec: &BucketSpec, ts: i64, value: A) -> i64 {
        let ts = self.newest.map_or(ts, |n| ts.max(n));
        self.newest = Some(ts);
        let index = spec.index_of(ts);
        match self.buckets.back_mut() {
            Some((i, agg)) if *i == index => agg.merge(&value),
            _ => self.buckets.push_back((index, value.clone())),
        }
        match &mut self.total {
            Some(total) => total.merge(&value),
            None => self.total = Some(value),
        }
        self.expire(spec, ts);
        ts
    }

    /// Drops the buckets wholly older than `reference - window_ms`; true if any was dropped.
    pub fn expire(&mut self, spec: &BucketSpec, reference: i64) -> bool {
        let first = spec.first_live(reference);
        let before = self.buckets.len();
        while self.buckets.front().is_some_and(|(i, _)| *i < first) {
            self.buckets.pop_front();
        }
        let dropped = self.buckets.len() != before;
        if dropped {
            self.total = self.fold();
        }
        dropped
    }

    fn fold(&self) -> Option<A> {
        let mut it = self.buckets.iter().map(|(_, a)| a);
        let mut total = it.next()?.clone();
        it.for_each(|a| total.merge(a));
        Some(total)
    }

    /// Every bucket merged, oldest first; `None` if the window is empty.
    pub fn total(&self) -> Option<&A> {
        self.total.as_ref()
    }

    /// The newest timestamp counted (kept after its bucket is dropped).
    pub fn newest(&self) -> Option<i64> {
        self.newest
    }

    /// True if no bucket is left.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The number of buckets held (at most `buckets + 1`).
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// The buckets, oldest first: (bucket index, aggregate).
    pub fn iter(&self) -> impl Iterator<Item = (i64, &A)> {
        self.buckets.iter().map(|(i, a)| (*i, a))
    }

    /// Writes the window: newest timestamp, count, then each bucket's index followed by
    /// what `item` writes of its aggregate. Record the spec's
    /// [`width_ms`](BucketSpec::width_ms) once in the state too, for [`read`](Self::read).
    pub fn write(&self, w: &mut StateWriter, mut item: impl FnMut(&mut StateWriter, &A)) {
        w.i64(self.newest.unwrap_or(i64::MIN))
            .count(self.buckets.len());
        for (index, agg) in &self.buckets {
            w.i64(*index);
            item(w, agg);
        }
    }

    /// Reads a window written by [`write`](Self::write) with buckets of `width_ms`. If that
    /// is not `spec`'s width (the config changed), each bucket is counted as of its last
    /// millisecond (at most the newest timestamp). Buckets outside the window of the
    /// newest timestamp are dropped as they are read, so memory stays bounded by `spec`.
    pub fn read(
        r: &mut StateReader<'_>,
        spec: &BucketSpec,
        width_ms: i64,
        mut item: impl FnMut(&mut StateReader<'_>) -> Result<A, String>,
    ) -> Result<Self, String> {
        if width_ms <= 0 {
            return Err(format!("state: bucket width {width_ms} ms must be > 0"));
        }
        let newest = r.i64()?;
        let mut window = BucketWindow::new();
        let mut previous: Option<i64> = None;
        for _ in 0..r.count()? {
            let index = r.i64()?;
            let agg = item(r)?;
            if let Some(p) = previous.filter(|p| index <= *p) {
                return Err(format!(
                    "state: bucket {index} after bucket {p} (indexes must increase)"
                ));
            }
            previous = Some(index);
            let last = index
                .saturating_mul(width_ms)
                .saturating_add(width_ms - 1)
                .min(newest);
            window.add(spec, last, agg);
        }
        if window.newest.is_some() {
            window.newest = Some(newest);
            window.expire(spec, newest);
        }
        Ok(window)
    }
}

#[cfg(test)]
mod tests;
