//! Configuration: retention, partitioning, limits, commit policy.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::tier::Tier;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// Retention and partitioning of one tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierOptions {
    /// Data older than this (relative to the newest sample written) is deleted,
    /// a whole partition file at a time.
    pub retention_ms: i64,
    /// Time span of one partition file. Must be a multiple of the finer tier's
    /// partition span and of the tier's bucket width, and at most half the
    /// retention (the current and the previous partition are kept open).
    pub partition_ms: i64,
    /// If set, a chunk of this tier is also cut once its encoding in memory
    /// reaches this many bytes (besides [`Options::chunk_items`]): it bounds
    /// what the head holds per series for the tier. Set for the 1 min and 1 h
    /// tiers, whose 120-bucket chunks span 2 hours and 5 days: ~1.7 KB per
    /// series each, in their write-side encoding, for a varying series.
    pub chunk_bytes: Option<u32>,
}

/// Query limits, checked before any data is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Most series one query may select.
    pub max_series: usize,
    /// Most steps per series (Prometheus: 11,000).
    pub max_points_per_series: u64,
    /// Most points in one query result (series x steps).
    pub max_total_points: u64,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_series: 20_000,
            max_points_per_series: 11_000,
            max_total_points: 50_000_000,
        }
    }
}

/// Store configuration. `Options::default()` gives: raw 6 h, 1 s for 14 days,
/// 1 min for 90 days, 1 h for 2 years, 1 GiB on disk, 100,000 series, chunks of
/// 120 samples or buckets (the 1 min and 1 h tiers' cut at 512 bytes in memory
/// sooner), a commit every second by an internal thread.
#[derive(Debug, Clone)]
pub struct Options {
    /// Raw samples.
    pub raw: TierOptions,
    /// 1-second buckets.
    pub second: TierOptions,
    /// 1-minute buckets.
    pub minute: TierOptions,
    /// 1-hour buckets.
    pub hour: TierOptions,
    /// Upper bound of the store's size on disk; when over it, whole partition
    /// files are deleted, oldest data first.
    pub max_disk_bytes: u64,
    /// Most series; new series beyond it are refused (and counted).
    pub max_series: usize,
    /// Samples (or buckets) per chunk before it is cut and written to its
    /// partition file (a series' first chunk in a partition is cut sooner, at
    /// a point between half of this and all of it that depends on the series).
    pub chunk_items: u32,
    /// If set, the store owns a thread that commits (fsyncs) at this interval;
    /// it is stopped and joined by [`crate::Store::close`] or on drop. If `None`,
    /// the caller must call [`crate::Store::commit`] itself.
    pub commit_interval: Option<Duration>,
    /// Write a head checkpoint (and drop the write-ahead log before it) once
    /// the log has grown by this many bytes.
    pub checkpoint_wal_bytes: u64,
    /// Samples more than this far ahead of the wall clock are refused (and
    /// counted); `None` accepts any timestamp.
    pub max_future_ms: Option<i64>,
    /// Query limits.
    pub limits: QueryLimits,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            raw: TierOptions {
                retention_ms: 6 * HOUR,
                partition_ms: HOUR,
                chunk_bytes: None,
            },
            second: TierOptions {
                retention_ms: 14 * DAY,
                partition_ms: DAY,
                chunk_bytes: None,
            },
            minute: TierOptions {
                retention_ms: 90 * DAY,
                partition_ms: 7 * DAY,
                chunk_bytes: Some(512),
            },
            hour: TierOptions {
                retention_ms: 730 * DAY,
                partition_ms: 28 * DAY,
                chunk_bytes: Some(512),
            },
            max_disk_bytes: 1 << 30,
            max_series: 100_000,
            chunk_items: 120,
            commit_interval: Some(Duration::from_secs(1)),
            checkpoint_wal_bytes: 64 << 20,
            max_future_ms: Some(10 * 60_000),
            limits: QueryLimits::default(),
        }
    }
}

impl Options {
    /// The options of `tier`.
    pub fn tier(&self, tier: Tier) -> &TierOptions {
        match tier {
            Tier::Raw => &self.raw,
            Tier::Second => &self.second,
            Tier::Minute => &self.minute,
            Tier::Hour => &self.hour,
        }
    }

    /// Checks that the options can work together.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidOptions(m));
        let mut prev_part = 0i64;
        for tier in Tier::ALL {
            let t = self.tier(tier);
            if t.partition_ms <= 0 || t.retention_ms <= 0 {
                return bad(format!(
                    "tier {tier}: retention and partition span must be positive"
                ));
            }
            if tier.width_ms() > 0 && t.partition_ms % tier.width_ms() != 0 {
                return bad(format!(
                    "tier {tier}: partition span {} ms is not a multiple of the bucket width",
                    t.partition_ms
                ));
            }
            if prev_part > 0 && t.partition_ms % prev_part != 0 {
                return bad(format!(
                    "tier {tier}: partition span {} ms is not a multiple of the finer tier's {prev_part} ms",
                    t.partition_ms
                ));
            }
            if t.retention_ms < 2 * t.partition_ms {
                return bad(format!(
                    "tier {tier}: retention {} ms is shorter than two partitions ({} ms)",
                    t.retention_ms,
                    2 * t.partition_ms
                ));
            }
            if t.chunk_bytes.is_some_and(|b| !(64..=1 << 20).contains(&b)) {
                return bad(format!(
                    "tier {tier}: chunk_bytes {:?} must be in 64..=1048576",
                    t.chunk_bytes
                ));
            }
            prev_part = t.partition_ms;
        }
        if self.chunk_items < 2 || self.chunk_items > 65_536 {
            return bad(format!(
                "chunk_items {} must be in 2..=65536",
                self.chunk_items
            ));
        }
        if self.max_series == 0 || self.max_series > u32::MAX as usize / 2 {
            return bad(format!("max_series {} out of range", self.max_series));
        }
        if self.commit_interval.is_some_and(|d| d.is_zero()) {
            return bad("commit_interval must be positive".into());
        }
        if self.limits.max_points_per_series == 0 || self.limits.max_series == 0 {
            return bad("query limits must be positive".into());
        }
        Ok(())
    }

    /// Start of the partition of `tier` that holds `t`.
    pub(crate) fn partition_start(&self, tier: Tier, t: i64) -> i64 {
        let p = self.tier(tier).partition_ms;
        t.div_euclid(p) * p
    }

    /// Oldest partition start of `tier` still open for writes when the newest
    /// sample is at `now`: the current partition and the one before it.
    pub(crate) fn open_from(&self, tier: Tier, now: i64) -> i64 {
        self.partition_start(tier, now)
            .saturating_sub(self.tier(tier).partition_ms)
    }
}
