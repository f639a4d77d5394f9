//! Compression round trips, property style: many random series including
//! edge values (0, -0.0, huge, tiny, subnormal, equal runs), irregular
//! timestamps and large gaps, through the disk column codec, the bucket codec
//! and the streaming head codec; plus the size goal on realistic data.

mod common;

use common::Rng;
use wasmeter_tsdb::Bucket;
use wasmeter_tsdb::codec::{
    decode_buckets, decode_samples, encode_buckets, encode_samples, head_round_trip,
};

const EDGE: [f64; 14] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    f64::MAX,
    f64::MIN,
    f64::MIN_POSITIVE,
    5e-324,
    -5e-324,
    1e300,
    -1e-300,
    0.1,
    0.30000000000000004,
    123_456_789.123_456_78,
];

fn random_value(rng: &mut Rng, prev: f64) -> f64 {
    match rng.below(8) {
        0 => EDGE[rng.below(EDGE.len() as u64) as usize],
        1 => prev,                                                         // equal run
        2 => (prev * 100.0 + (rng.below(5) as f64 - 2.0)).round() / 100.0, // price ticks
        3 => f64::from_bits(rng.next_u64() & !(0x7ffu64 << 52) | ((rng.below(2046) + 1) << 52)), // any finite
        4 => (rng.below(1 << 20)) as f64, // integers
        5 => rng.unit() * 1e6,
        6 => -rng.unit(),
        _ => prev + rng.unit() - 0.5,
    }
}

fn random_timestamps(rng: &mut Rng, n: usize) -> Vec<i64> {
    let mut t = (rng.next_u64() as i64) >> 20; // anywhere, negative included
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(t);
        let step = match rng.below(6) {
            0 => 1,
            1 => 1000,
            2 => 1000 + rng.below(200) as i64 - 100,
            3 => rng.below(100_000) as i64 + 1,
            4 => rng.below(1 << 40) as i64 + 1, // large gap
            _ => 15_000,
        };
        t += step;
    }
    out
}

fn bits(vs: &[f64]) -> Vec<u64> {
    vs.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn samples_round_trip_random_series() {
    let mut rng = Rng(1);
    for case in 0..3000 {
        let n = 1 + rng.below(300) as usize;
        let ts = random_timestamps(&mut rng, n);
        let mut vs = Vec::with_capacity(n);
        let mut prev = 100.0;
        for _ in 0..n {
            prev = random_value(&mut rng, prev);
            vs.push(prev);
        }
        let enc = encode_samples(&ts, &vs);
        let (t2, v2) =
            decode_samples(&enc).unwrap_or_else(|| panic!("case {case} does not decode"));
        assert_eq!(t2, ts, "case {case}");
        assert_eq!(bits(&v2), bits(&vs), "case {case}");

        let pairs: Vec<(i64, f64)> = ts.iter().copied().zip(vs.iter().copied()).collect();
        let (back, _) = head_round_trip(&pairs);
        assert_eq!(back.len(), pairs.len(), "case {case}");
        for (a, b) in back.iter().zip(&pairs) {
            assert_eq!((a.0, a.1.to_bits()), (b.0, b.1.to_bits()), "case {case}");
        }
    }
}

#[test]
fn single_value_columns_round_trip() {
    // Every edge value alone and in constant runs, where the encoders take
    // their shortest paths.
    for &v in &EDGE {
        for n in [1usize, 2, 3, 130] {
            let ts: Vec<i64> = (0..n as i64).map(|i| i * 1000).collect();
            let vs = vec![v; n];
            let (t2, v2) = decode_samples(&encode_samples(&ts, &vs)).unwrap();
            assert_eq!(t2, ts);
            assert_eq!(bits(&v2), bits(&vs), "value {v:e} x {n}");
        }
    }
}

#[test]
fn buckets_round_trip_random() {
    let mut rng = Rng(2);
    for case in 0..1000 {
        let width = [1000i64, 60_000, 3_600_000][rng.below(3) as usize];
        let n = 1 + rng.below(200) as usize;
        let mut idx = (rng.next_u64() as i64) >> 40;
        let mut bs = Vec::with_capacity(n);
        let mut prev = 1.0;
        for _ in 0..n {
            let mut b = Bucket::new(idx * width, random_value(&mut rng, prev));
            for _ in 0..rng.below(4) {
                prev = random_value(&mut rng, prev);
                b.add(prev);
            }
            bs.push(b);
            idx += 1 + if rng.below(4) == 0 {
                rng.below(1000) as i64
            } else {
                0
            };
        }
        let back = decode_buckets(&encode_buckets(&bs, width), width)
            .unwrap_or_else(|| panic!("case {case}"));
        assert_eq!(back.len(), bs.len());
        for (a, b) in back.iter().zip(&bs) {
            assert_eq!(a.start_ms, b.start_ms, "case {case}");
            assert_eq!(a.count, b.count, "case {case}");
            for (x, y) in [
                (a.min, b.min),
                (a.max, b.max),
                (a.sum, b.sum),
                (a.last, b.last),
            ] {
                assert_eq!(x.to_bits(), y.to_bits(), "case {case}");
            }
        }
    }
}

#[test]
fn corrupt_chunks_never_panic() {
    let mut rng = Rng(3);
    let ts: Vec<i64> = (0..120)
        .map(|i| 1_700_000_000_000 + i * 1000 + (i * 7) % 13)
        .collect();
    let vs: Vec<f64> = (0..120).map(|i| 100.0 + (i % 9) as f64 * 0.25).collect();
    let enc = encode_samples(&ts, &vs);
    for _ in 0..5000 {
        let mut bad = enc.clone();
        let i = rng.below(bad.len() as u64) as usize;
        bad[i] ^= 1 << rng.below(8);
        if rng.below(4) == 0 {
            bad.truncate(rng.below(bad.len() as u64) as usize);
        }
        let _ = decode_samples(&bad); // must not panic; may decode to other values
        let _ = decode_buckets(&bad, 1000);
    }
    // Bucket chunks with every form: one sample, two (short form), more, and
    // buckets whose short form would not be exact (per-bucket flags).
    let mut bs = Vec::new();
    for i in 0..120i64 {
        let mut b = Bucket::new(
            1_700_000_000_000 + i * 1000,
            64_000.0 + (i % 5) as f64 * 0.01,
        );
        for k in 0..i % 4 {
            b.add(64_000.0 - k as f64 * 0.01);
        }
        if i % 17 == 0 {
            b.sum += 1.0;
        }
        bs.push(b);
    }
    let enc = encode_buckets(&bs, 1000);
    let back = decode_buckets(&enc, 1000).unwrap();
    for (a, b) in back.iter().zip(&bs) {
        assert_eq!(
            (a.count, a.min, a.max, a.sum.to_bits()),
            (b.count, b.min, b.max, b.sum.to_bits())
        );
    }
    for _ in 0..5000 {
        let mut bad = enc.clone();
        let i = rng.below(bad.len() as u64) as usize;
        bad[i] ^= 1 << rng.below(8);
        if rng.below(4) == 0 {
            bad.truncate(rng.below(bad.len() as u64) as usize);
        }
        let _ = decode_buckets(&bad, 1000);
        let _ = decode_samples(&bad);
    }
}

/// Realistic data, encoded in 120-sample chunks: bytes per sample of the chunk
/// codec alone (the store's per-chunk overhead is measured by the benchmark).
fn bytes_per_sample(make: impl Fn(&mut Rng, usize) -> (i64, f64), n: usize) -> f64 {
    let mut rng = Rng(7);
    let all: Vec<(i64, f64)> = (0..n).map(|i| make(&mut rng, i)).collect();
    let mut total = 0usize;
    for c in all.chunks(120) {
        let ts: Vec<i64> = c.iter().map(|p| p.0).collect();
        let vs: Vec<f64> = c.iter().map(|p| p.1).collect();
        total += encode_samples(&ts, &vs).len();
    }
    total as f64 / n as f64
}

#[test]
fn realistic_data_compresses_under_two_bytes() {
    use std::cell::Cell;
    // A price moving by 0.01 ticks at irregular ms timestamps (0.2-1.8 s apart).
    let t = Cell::new(1_700_000_000_000i64);
    let p = Cell::new(64_000.0f64);
    let prices = bytes_per_sample(
        |r, _| {
            t.set(t.get() + 200 + r.below(1600) as i64);
            p.set(((p.get() * 100.0).round() + r.below(7) as f64 - 3.0) / 100.0);
            (t.get(), p.get())
        },
        120_000,
    );
    // A counter scraped every second with a few ms of jitter.
    let c = Cell::new(0.0f64);
    let counters = bytes_per_sample(
        |r, i| {
            c.set(c.get() + r.below(50) as f64);
            (
                1_700_000_000_000 + i as i64 * 1000 + r.below(5) as i64,
                c.get(),
            )
        },
        120_000,
    );
    // A constant gauge every 15 s.
    let constant = bytes_per_sample(
        |_, i| (1_700_000_000_000 + i as i64 * 15_000, 42.0),
        120_000,
    );
    println!("bytes/sample: prices {prices:.3}, counters {counters:.3}, constant {constant:.3}");
    assert!(prices <= 2.0, "prices: {prices}");
    assert!(counters <= 2.0, "counters: {counters}");
    assert!(constant <= 0.2, "constant: {constant}");
}
