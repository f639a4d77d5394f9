//! Tiers: raw samples and the 1 s, 1 min and 1 h downsampled buckets.

use std::fmt;

/// One resolution of stored data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// Every sample as written.
    Raw,
    /// 1-second buckets (min, max, sum, count, last).
    Second,
    /// 1-minute buckets.
    Minute,
    /// 1-hour buckets.
    Hour,
}

impl Tier {
    /// All tiers, finest first.
    pub const ALL: [Tier; 4] = [Tier::Raw, Tier::Second, Tier::Minute, Tier::Hour];
    /// The downsampled tiers, finest first.
    pub const DOWNSAMPLED: [Tier; 3] = [Tier::Second, Tier::Minute, Tier::Hour];

    /// Bucket width in milliseconds (0 for raw).
    pub fn width_ms(self) -> i64 {
        match self {
            Tier::Raw => 0,
            Tier::Second => 1_000,
            Tier::Minute => 60_000,
            Tier::Hour => 3_600_000,
        }
    }

    /// Short name, also the tier's directory name: `raw`, `1s`, `1m`, `1h`.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Raw => "raw",
            Tier::Second => "1s",
            Tier::Minute => "1m",
            Tier::Hour => "1h",
        }
    }

    /// Position in [`Tier::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The tier stored in byte form in file headers.
    pub(crate) fn from_index(i: u8) -> Option<Tier> {
        Tier::ALL.get(usize::from(i)).copied()
    }

    /// Start of the bucket holding `t` (`t` itself for raw).
    pub fn bucket_start(self, t: i64) -> i64 {
        match self.width_ms() {
            0 => t,
            w => t.div_euclid(w) * w,
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One downsampled bucket: the aggregate of the samples with timestamps in
/// `[start_ms, start_ms + width)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Start of the bucket (a multiple of the tier's width).
    pub start_ms: i64,
    /// Number of samples.
    pub count: u64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Sum of the values.
    pub sum: f64,
    /// Value of the newest sample.
    pub last: f64,
}

impl Bucket {
    /// A bucket holding one sample.
    pub fn new(start_ms: i64, v: f64) -> Self {
        Bucket {
            start_ms,
            count: 1,
            min: v,
            max: v,
            sum: v,
            last: v,
        }
    }

    /// Adds a sample newer than every one already in the bucket.
    pub fn add(&mut self, v: f64) {
        self.count += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += v;
        self.last = v;
    }

    /// Mean of the values (`sum / count`).
    pub fn avg(&self) -> f64 {
        self.sum / self.count as f64
    }
}
