//! Query types, tier choice, and the evaluation of Prometheus
//! instant-vector-selector semantics over samples or buckets.

use crate::labels::Labels;
use crate::tier::{Bucket, Tier};

/// Prometheus' default lookback delta: 5 minutes.
pub const DEFAULT_LOOKBACK_MS: i64 = 5 * 60_000;

/// Which tier answers a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TierChoice {
    /// Raw where raw covers the range and the step is finer than a minute;
    /// otherwise the coarsest tier whose bucket width is at most the step and
    /// which still covers the range; otherwise the finest coarser tier that
    /// covers it; otherwise the tier reaching furthest back.
    #[default]
    Auto,
    /// This tier, whatever it holds.
    Fixed(Tier),
}

/// A range query (`query_range`); an instant query is one with `start == end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeQuery {
    /// First evaluation time (Unix ms).
    pub start_ms: i64,
    /// Last evaluation time (inclusive, Unix ms).
    pub end_ms: i64,
    /// Distance between evaluation times (ms, > 0).
    pub step_ms: i64,
    /// The value at `t` is the newest sample (or bucket end) in `(t - lookback, t]`.
    pub lookback_ms: i64,
    /// Tier selection.
    pub tier: TierChoice,
}

/// The value of a series at one evaluation time.
///
/// From raw data: `value` is the sample, `min == max == sum == value`, `count == 1`.
/// From a tier: the aggregates of the newest bucket ending in `(t - lookback, t]`;
/// `value` is its `last`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Evaluation time (Unix ms).
    pub t_ms: i64,
    /// The value (last sample of the bucket for tiers).
    pub value: f64,
    /// Smallest sample in the bucket.
    pub min: f64,
    /// Largest sample in the bucket.
    pub max: f64,
    /// Sum of the samples in the bucket.
    pub sum: f64,
    /// Number of samples in the bucket.
    pub count: u64,
}

impl Point {
    /// Mean of the samples in the bucket.
    pub fn avg(&self) -> f64 {
        self.sum / self.count as f64
    }
}

/// One series of a query result.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoints {
    /// The series.
    pub labels: Labels,
    /// Its points, oldest first; evaluation times with no data are left out.
    pub points: Vec<Point>,
}

/// Counters of the work a query did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Series matched by the selector (before dropping those without points).
    pub series_selected: usize,
    /// Chunks read from partition files.
    pub chunks_read: u64,
    /// Samples or buckets decoded.
    pub items_decoded: u64,
    /// Chunks skipped because they failed their checksum or did not decode.
    pub corrupt_chunks: u64,
}

/// The result of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// The tier that answered.
    pub tier: Tier,
    /// Series with at least one point, in series-id order.
    pub series: Vec<SeriesPoints>,
    /// Work done.
    pub stats: QueryStats,
}

/// Validates a range query and returns its number of steps.
pub(crate) fn steps(q: &RangeQuery) -> Result<u64, String> {
    if q.step_ms <= 0 {
        return Err(format!("step must be positive (got {} ms)", q.step_ms));
    }
    if q.end_ms < q.start_ms {
        return Err(format!("end {} is before start {}", q.end_ms, q.start_ms));
    }
    if q.lookback_ms <= 0 {
        return Err(format!(
            "lookback must be positive (got {} ms)",
            q.lookback_ms
        ));
    }
    let span = (i128::from(q.end_ms) - i128::from(q.start_ms)) / i128::from(q.step_ms) + 1;
    Ok(u64::try_from(span).unwrap_or(u64::MAX))
}

/// Chooses the tier for `q` given, per tier, the oldest timestamp it holds
/// (`i64::MAX` if empty).
pub(crate) fn choose_tier(q: &RangeQuery, tier_min: &[i64; 4]) -> Tier {
    if let TierChoice::Fixed(t) = q.tier {
        return t;
    }
    let earliest = earliest_held(tier_min);
    if earliest == i64::MAX {
        return Tier::Raw;
    }
    // A tier covers the range if it holds everything any tier holds from the
    // range's start on.
    let need = q.start_ms.max(earliest);
    let covers = |t: Tier| tier_min[t.index()] <= t.bucket_start(need);
    if q.step_ms < Tier::Minute.width_ms() && covers(Tier::Raw) {
        return Tier::Raw;
    }
    let mut fine: Vec<Tier> = Tier::DOWNSAMPLED
        .into_iter()
        .filter(|t| t.width_ms() <= q.step_ms)
        .collect();
    fine.reverse();
    if let Some(t) = fine.into_iter().find(|&t| covers(t)) {
        return t;
    }
    if let Some(t) = Tier::DOWNSAMPLED
        .into_iter()
        .filter(|t| t.width_ms() > q.step_ms)
        .find(|&t| covers(t))
    {
        return t;
    }
    if covers(Tier::Raw) {
        return Tier::Raw;
    }
    Tier::ALL
        .into_iter()
        .min_by_key(|t| tier_min[t.index()])
        .unwrap_or(Tier::Raw)
}

/// The time from which the store surely holds data, given each tier's oldest
/// item (`Store::tier_min_ms`); `i64::MAX` if it holds none. A downsampled
/// tier's oldest item is the start of its oldest bucket, whose data may begin up
/// to a bucket width later: on a store younger than an hour, the hour tier's
/// is the hour's start, before any sample, and must not pass for the tier
/// reaching furthest back.
pub fn earliest_held(tier_min: &[i64; 4]) -> i64 {
    Tier::ALL
        .into_iter()
        .map(|t| match tier_min[t.index()] {
            i64::MAX => i64::MAX,
            m if t == Tier::Raw => m,
            m => m.saturating_add(t.width_ms() - 1),
        })
        .min()
        .unwrap_or(i64::MAX)
}

/// Evaluation times of `q`.
fn times(q: &RangeQuery) -> impl Iterator<Item = i64> {
    let (start, end, step) = (q.start_ms, q.end_ms, q.step_ms);
    std::iter::successors(Some(start), move |&t| {
        t.checked_add(step).filter(|&n| n <= end)
    })
}

/// Points of raw samples (sorted by time) under `q`.
pub(crate) fn eval_raw(ts: &[i64], vs: &[f64], q: &RangeQuery) -> Vec<Point> {
    let mut out = Vec::new();
    let mut j = 0;
    for t in times(q) {
        while j < ts.len() && ts[j] <= t {
            j += 1;
        }
        if j > 0 && ts[j - 1] > t.saturating_sub(q.lookback_ms) {
            let v = vs[j - 1];
            out.push(Point {
                t_ms: t,
                value: v,
                min: v,
                max: v,
                sum: v,
                count: 1,
            });
        }
    }
    out
}

/// Points of buckets (sorted by start) of width `width` under `q`: the newest
/// bucket whose end lies in `(t - lookback, t]`.
pub(crate) fn eval_buckets(bs: &[Bucket], width: i64, q: &RangeQuery) -> Vec<Point> {
    let mut out = Vec::new();
    let mut j = 0;
    for t in times(q) {
        while j < bs.len() && bs[j].start_ms.saturating_add(width) <= t {
            j += 1;
        }
        if j > 0 {
            let b = &bs[j - 1];
            if b.start_ms.saturating_add(width) > t.saturating_sub(q.lookback_ms) {
                out.push(Point {
                    t_ms: t,
                    value: b.last,
                    min: b.min,
                    max: b.max,
                    sum: b.sum,
                    count: b.count,
                });
            }
        }
    }
    out
}

/// The time range of stored items a query over `tier` needs: raw samples in
/// `(start - lookback, end]`, or buckets whose end lies there.
pub(crate) fn item_range(q: &RangeQuery, tier: Tier) -> (i64, i64) {
    let w = tier.width_ms();
    let from = q
        .start_ms
        .saturating_sub(q.lookback_ms)
        .saturating_sub(w)
        .saturating_add(1);
    let to = q.end_ms.saturating_sub(w);
    (from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(start: i64, end: i64, step: i64, lookback: i64) -> RangeQuery {
        RangeQuery {
            start_ms: start,
            end_ms: end,
            step_ms: step,
            lookback_ms: lookback,
            tier: TierChoice::Auto,
        }
    }

    #[test]
    fn raw_semantics() {
        let ts = [10, 20, 30];
        let vs = [1.0, 2.0, 3.0];
        let p = eval_raw(&ts, &vs, &q(0, 50, 10, 15));
        let got: Vec<(i64, f64)> = p.iter().map(|p| (p.t_ms, p.value)).collect();
        assert_eq!(got, vec![(10, 1.0), (20, 2.0), (30, 3.0), (40, 3.0)]);
    }

    #[test]
    fn bucket_semantics() {
        let bs = [Bucket::new(0, 1.0), Bucket::new(1000, 2.0)];
        let p = eval_buckets(&bs, 1000, &q(500, 3500, 500, 1000));
        let got: Vec<(i64, f64)> = p.iter().map(|p| (p.t_ms, p.value)).collect();
        assert_eq!(
            got,
            vec![(1000, 1.0), (1500, 1.0), (2000, 2.0), (2500, 2.0)]
        );
    }

    #[test]
    fn tier_choice() {
        let all = [0i64; 4];
        assert_eq!(choose_tier(&q(0, 3_600_000, 1000, 1), &all), Tier::Raw);
        assert_eq!(choose_tier(&q(0, 3_600_000, 60_000, 1), &all), Tier::Minute);
        assert_eq!(
            choose_tier(&q(0, 3_600_000, 7_200_000, 1), &all),
            Tier::Hour
        );
        // Raw deleted before the range: the 1 s tier answers a 1 s step.
        let raw_gone = [5_000_000, 0, 0, 0];
        assert_eq!(
            choose_tier(&q(1_000_000, 3_600_000, 1000, 1), &raw_gone),
            Tier::Second
        );
        // A young store (its first sample at 12:59:33; the tiers' oldest
        // buckets start at 12:59:33, 12:59:00 and 12:00): a range starting
        // before any data is answered by the tier the step asks for, not by the
        // hour tier because its bucket starts first.
        let (h, m, s) = (3_600_000, 60_000, 1000);
        let young = [
            12 * h + 59 * m + 33 * s,
            12 * h + 59 * m + 33 * s,
            12 * h + 59 * m,
            12 * h,
        ];
        let now = 13 * h;
        assert_eq!(choose_tier(&q(now - h, now, 1000, 1), &young), Tier::Raw);
        assert_eq!(choose_tier(&q(now - h, now, m, 1), &young), Tier::Minute);
        assert_eq!(choose_tier(&q(now - 24 * h, now, h, 1), &young), Tier::Hour);
        // 1 min tier deleted too: fall back to the hour tier.
        let only_hour = [5_000_000, 5_000_000, 5_000_000, 0];
        assert_eq!(
            choose_tier(&q(1_000_000, 9_000_000, 60_000, 1), &only_hour),
            Tier::Hour
        );
    }
}
