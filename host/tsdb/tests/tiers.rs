//! Three simulated days at one sample per second (irregular ms timestamps)
//! for a few series; `query_range` must answer exactly what an independent,
//! naive computation over the written samples says, at every tier.

mod common;

use common::{DAY, HOUR, Rng, T0, test_options};
use wasmeter_tsdb::{
    Labels, Matcher, MetricKind, Options, Point, RangeQuery, Sample, SeriesPoints, Store,
    StoreStats, Tier, TierChoice,
};

/// The written samples of each series.
struct Data {
    labels: Vec<Labels>,
    samples: Vec<Vec<Sample>>,
}

fn generate(days: i64) -> Data {
    let mut rng = Rng(11);
    let names = [
        ("price", "gauge"),
        ("requests_total", "counter"),
        ("temperature", "gauge"),
    ];
    let mut labels = Vec::new();
    let mut samples = Vec::new();
    for (k, (name, _)) in names.iter().enumerate() {
        labels.push(Labels::new(name, [("host", "a")]).unwrap());
        let mut v: f64 = match k {
            0 => 64_000.0,
            1 => 0.0,
            _ => 20.0,
        };
        let mut s = Vec::new();
        let n = days * 86_400;
        for i in 0..n {
            // One sample per second on average, at irregular milliseconds:
            // some seconds get none, some two.
            let t = T0 + i * 1000 + rng.below(1000) as i64;
            v = match k {
                0 => ((v * 100.0).round() + rng.below(5) as f64 - 2.0) / 100.0,
                1 => v + rng.below(20) as f64,
                _ => 20.0 + (i as f64 / 3600.0).sin() * 5.0 + rng.unit() * 0.1,
            };
            s.push(Sample::new(t, v));
        }
        // Timestamps must increase: sort (jitter can reorder neighbours) and
        // drop equal ones.
        s.sort_by_key(|x: &Sample| x.timestamp_ms);
        s.dedup_by_key(|x| x.timestamp_ms);
        samples.push(s);
    }
    Data { labels, samples }
}

/// Naive raw evaluation: the newest sample in (t - lookback, t].
fn expect_raw(s: &[Sample], q: &RangeQuery) -> Vec<Point> {
    let mut out = Vec::new();
    let mut t = q.start_ms;
    while t <= q.end_ms {
        // Binary search for the newest sample at or before t.
        let i = s.partition_point(|x| x.timestamp_ms <= t);
        if let Some(x) = i
            .checked_sub(1)
            .map(|i| &s[i])
            .filter(|x| x.timestamp_ms > t - q.lookback_ms)
        {
            let v = x.value;
            out.push(Point {
                t_ms: t,
                value: v,
                min: v,
                max: v,
                sum: v,
                count: 1,
            });
        }
        t += q.step_ms;
    }
    out
}

/// Naive tier evaluation: build every bucket from the samples, then take the
/// newest bucket whose end lies in (t - lookback, t].
fn expect_tier(s: &[Sample], width: i64, q: &RangeQuery) -> Vec<Point> {
    let mut buckets: Vec<(i64, f64, f64, f64, u64, f64)> = Vec::new(); // start, min, max, sum, count, last
    for x in s {
        let b = x.timestamp_ms.div_euclid(width) * width;
        match buckets.last_mut() {
            Some(l) if l.0 == b => {
                l.1 = l.1.min(x.value);
                l.2 = l.2.max(x.value);
                l.3 += x.value;
                l.4 += 1;
                l.5 = x.value;
            }
            _ => buckets.push((b, x.value, x.value, x.value, 1, x.value)),
        }
    }
    let mut out = Vec::new();
    let mut t = q.start_ms;
    while t <= q.end_ms {
        let i = buckets.partition_point(|b| b.0 + width <= t);
        if let Some(b) = i
            .checked_sub(1)
            .map(|i| &buckets[i])
            .filter(|b| b.0 + width > t - q.lookback_ms)
        {
            out.push(Point {
                t_ms: t,
                value: b.5,
                min: b.1,
                max: b.2,
                sum: b.3,
                count: b.4,
            });
        }
        t += q.step_ms;
    }
    out
}

fn check(store: &Store, data: &Data, q: RangeQuery, want_tier: Tier) {
    for (labels, samples) in data.labels.iter().zip(&data.samples) {
        let m = [Matcher::metric(labels.metric_name()).unwrap()];
        let got = store.query_range_with(&m, &q).unwrap();
        assert_eq!(got.tier, want_tier, "{q:?}");
        let want = match want_tier {
            Tier::Raw => expect_raw(samples, &q),
            t => expect_tier(samples, t.width_ms(), &q),
        };
        let got_points: &[Point] = got.series.first().map_or(&[], |s: &SeriesPoints| &s.points);
        assert!(!want.is_empty(), "the test range must hold data: {q:?}");
        assert_eq!(got_points.len(), want.len(), "{labels} {q:?}");
        for (g, w) in got_points.iter().zip(&want) {
            assert_eq!(g.t_ms, w.t_ms);
            assert_eq!(
                g.value.to_bits(),
                w.value.to_bits(),
                "{labels} at {}: {g:?} vs {w:?}",
                g.t_ms
            );
            assert_eq!(g.count, w.count, "{labels} at {}", g.t_ms);
            assert_eq!(g.min.to_bits(), w.min.to_bits(), "{labels} at {}", g.t_ms);
            assert_eq!(g.max.to_bits(), w.max.to_bits(), "{labels} at {}", g.t_ms);
            assert_eq!(
                g.sum.to_bits(),
                w.sum.to_bits(),
                "{labels} at {}: {} vs {}",
                g.t_ms,
                g.sum,
                w.sum
            );
        }
    }
}

fn write_all(store: &Store, data: &Data) {
    // Interleave the series in one-minute slices, committing every hour, as a
    // live writer would.
    let mut pos = vec![0usize; data.samples.len()];
    let end = data
        .samples
        .iter()
        .map(|s| s.last().unwrap().timestamp_ms)
        .max()
        .unwrap();
    let mut until = T0 + 60_000;
    loop {
        for (k, s) in data.samples.iter().enumerate() {
            let from = pos[k];
            while pos[k] < s.len() && s[pos[k]].timestamp_ms < until {
                pos[k] += 1;
            }
            let out = store
                .append_series(&data.labels[k], MetricKind::Gauge, &s[from..pos[k]])
                .unwrap();
            assert_eq!(out.refused(), 0, "{out:?}");
        }
        if (until - T0) % HOUR == 0 {
            store.commit().unwrap();
        }
        if until > end {
            break;
        }
        until += 60_000;
    }
    store.commit().unwrap();
}

fn queries(store: &Store, data: &Data, end: i64) {
    let q = |start: i64, stop: i64, step: i64, lookback: i64, tier: TierChoice| RangeQuery {
        start_ms: start,
        end_ms: stop,
        step_ms: step,
        lookback_ms: lookback,
        tier,
    };
    let auto = TierChoice::Auto;
    // Raw: the last hour at 1 s steps (raw keeps 6 h).
    check(
        store,
        data,
        q(end - HOUR, end, 1000, 300_000, auto),
        Tier::Raw,
    );
    // Raw with a short lookback at an odd step: points go missing where
    // seconds had no sample.
    check(
        store,
        data,
        q(end - 2 * HOUR, end, 777, 900, auto),
        Tier::Raw,
    );
    // 1 s tier: two days ago (beyond raw), 10 min at 1 s.
    check(
        store,
        data,
        q(end - 2 * DAY, end - 2 * DAY + 600_000, 1000, 5000, auto),
        Tier::Second,
    );
    // 1 s tier forced, with a step of 5 s over the last hour.
    check(
        store,
        data,
        q(end - HOUR, end, 5000, 5000, TierChoice::Fixed(Tier::Second)),
        Tier::Second,
    );
    // 1 min tier: the whole period at 1 min steps.
    check(store, data, q(T0, end, 60_000, 300_000, auto), Tier::Minute);
    // 1 h tier: the whole period at 1 h steps.
    check(store, data, q(T0, end, HOUR, 2 * HOUR, auto), Tier::Hour);
    // A step between the tiers' widths picks the coarsest fitting tier.
    check(
        store,
        data,
        q(T0, end, 10 * 60_000, 600_000, auto),
        Tier::Minute,
    );
}

#[test]
fn three_days_every_tier_exact() {
    three_days_exact(Options {
        chunk_items: 120,
        ..test_options()
    });
}

/// The same with every tier's chunks cut at 64 bytes in memory: many more
/// chunks, every answer the same.
#[test]
fn three_days_every_tier_exact_with_chunks_cut_by_size() {
    let by_items = three_days_exact(Options {
        chunk_items: 120,
        ..test_options()
    });
    let mut opts = Options {
        chunk_items: 120,
        ..test_options()
    };
    for tier in [
        &mut opts.raw,
        &mut opts.second,
        &mut opts.minute,
        &mut opts.hour,
    ] {
        tier.chunk_bytes = Some(64);
    }
    let by_size = three_days_exact(opts);
    for tier in Tier::ALL {
        let i = tier.index();
        assert!(
            by_size.chunks[i] > by_items.chunks[i],
            "tier {tier}: {} chunks cut by size, {} by count",
            by_size.chunks[i],
            by_items.chunks[i]
        );
    }
}

/// Writes three days of data with `opts`, checks every tier's answers before
/// and after reopening, and gives the reopened store's stats.
fn three_days_exact(opts: Options) -> StoreStats {
    let data = generate(3);
    let dir = tempfile::tempdir().unwrap();
    let end = data
        .samples
        .iter()
        .map(|s| s.last().unwrap().timestamp_ms)
        .max()
        .unwrap();
    {
        let (store, rec) = Store::open(dir.path(), opts.clone()).unwrap();
        assert!(rec.is_clean());
        write_all(&store, &data);
        queries(&store, &data, end);
        store.close().unwrap();
    }
    // Everything again from disk after a clean close (checkpointed head).
    let (store, rec) = Store::open(dir.path(), opts).unwrap();
    assert!(rec.is_clean(), "{rec}");
    assert_eq!(rec.wal_samples, 0);
    queries(&store, &data, end);
    store.stats()
}

#[test]
fn instant_query_matches_range_query() {
    let data = generate(1);
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), test_options()).unwrap();
    write_all(&store, &data);
    let s = &data.samples[0];
    let m = [Matcher::metric("price").unwrap()];
    for &x in &s[s.len() - 50..] {
        let r = store.query(&m, x.timestamp_ms, 300_000).unwrap();
        assert_eq!(r.tier, Tier::Raw);
        assert_eq!(
            r.series[0].points,
            vec![Point {
                t_ms: x.timestamp_ms,
                value: x.value,
                min: x.value,
                max: x.value,
                sum: x.value,
                count: 1
            }]
        );
    }
    // Past the lookback: nothing.
    let last = s.last().unwrap().timestamp_ms;
    assert!(
        store
            .query(&m, last + 300_001, 300_000)
            .unwrap()
            .series
            .is_empty()
    );
}

/// A series that began inside the newest bucket of a tier (its first sample at
/// 22:13:20, the hour bucket from 22:00) is answered from that bucket, still
/// being filled: when the query's instant is the bucket's end, its last value.
#[test]
fn a_series_younger_than_its_bucket_is_answered_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), test_options()).unwrap();
    let labels = Labels::new("young", [("s", "a")]).unwrap();
    let samples: Vec<Sample> = (0..600)
        .map(|i| Sample::new(T0 + i * 1000, i as f64))
        .collect();
    store
        .append_series(&labels, MetricKind::Gauge, &samples)
        .unwrap();
    let hour_end = (T0 / HOUR + 1) * HOUR;
    let q = RangeQuery {
        start_ms: hour_end,
        end_ms: hour_end,
        step_ms: HOUR,
        lookback_ms: 300_000,
        tier: TierChoice::Fixed(Tier::Hour),
    };
    let r = store
        .query_range_with(&[Matcher::metric("young").unwrap()], &q)
        .unwrap();
    let points = &r.series[0].points;
    assert_eq!(points.len(), 1, "{points:?}");
    assert_eq!((points[0].value, points[0].count), (599.0, 600));
    assert_eq!((points[0].min, points[0].max), (0.0, 599.0));
}
