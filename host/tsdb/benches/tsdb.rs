//! Benchmarks: bytes per stored sample, write throughput, query latency.
//!
//! Run with `cargo bench -p wasmeter-tsdb`. The figures that are not
//! latencies (bytes/sample, samples/s, open time) are printed as `RESULT` lines.
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use wasmeter_tsdb::{Labels, Matcher, MetricKind, Options, Sample, SeriesRef, Store, Tier};

/// The system allocator, counting the bytes held: what the store keeps in
/// memory (its head above all) per series.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to `System` unchanged; only a counter is kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            HELD.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) };
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            HELD.fetch_add(new_size, Ordering::Relaxed);
            HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const T0: i64 = 1_700_000_000_000;
const SERIES: usize = 1000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Realistic series, a third of each kind: a price moving by 0.01 ticks at
/// irregular ms timestamps (every 1 s +/- 300 ms), a counter scraped every
/// `interval` with a few ms of jitter, a constant gauge every `interval`.
struct Gen {
    rng: Rng,
    price: Vec<f64>,
    counter: Vec<f64>,
}

impl Gen {
    fn new() -> Gen {
        Gen {
            rng: Rng(42),
            price: vec![64_000.0; SERIES],
            counter: vec![0.0; SERIES],
        }
    }

    fn sample(&mut self, k: usize, i: i64, interval: i64) -> Sample {
        let base = T0 + i * interval;
        match k % 3 {
            0 => {
                let p = ((self.price[k] * 100.0).round() + self.rng.below(5) as f64 - 2.0) / 100.0;
                self.price[k] = p;
                Sample::new(base + self.rng.below(600) as i64 - 300, p)
            }
            1 => {
                self.counter[k] += self.rng.below(100) as f64;
                Sample::new(base + self.rng.below(4) as i64, self.counter[k])
            }
            _ => Sample::new(base, 1.0),
        }
    }
}

fn refs(store: &Store) -> Vec<SeriesRef> {
    (0..SERIES)
        .map(|k| {
            let kind = ["price", "requests_total", "up"][k % 3];
            let l = Labels::new(
                kind,
                [("instance", format!("i{k}")), ("job", "bench".into())],
            )
            .unwrap();
            store.series_ref(&l, MetricKind::Gauge).unwrap()
        })
        .collect()
}

/// Writes `steps` samples per series (one per series per step, batched per
/// step), committing every `commit_every` steps. Returns samples written and
/// the time taken.
fn write(store: &Store, steps: i64, interval: i64, commit_every: i64) -> (u64, Duration) {
    let refs = refs(store);
    let mut g = Gen::new();
    let mut batch = Vec::with_capacity(SERIES);
    let mut n = 0u64;
    let start = Instant::now();
    for i in 0..steps {
        batch.clear();
        for (k, r) in refs.iter().enumerate() {
            batch.push((*r, g.sample(k, i, interval)));
        }
        let out = store.append_refs(&batch).unwrap();
        n += out.accepted;
        if (i + 1) % commit_every == 0 {
            store.commit().unwrap();
        }
    }
    store.commit().unwrap();
    (n, start.elapsed())
}

fn dir_bytes(dir: &Path) -> u64 {
    files_bytes(dir, |_| true)
}

/// Bytes of the files under `dir` whose path `keep` accepts.
fn files_bytes(dir: &Path, keep: impl Fn(&Path) -> bool) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else if keep(&e.path()) {
                total += m.len();
            }
        }
    }
    total
}

fn opts() -> Options {
    Options {
        commit_interval: None,
        max_future_ms: None,
        ..Options::default()
    }
}

/// `cargo bench` runs the full data set; `cargo test --all-targets` only writes
/// a small one and measures its size, as a smoke test fit for a debug build.
fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn bench_steps(full: i64) -> i64 {
    if full_run() { full } else { full.min(120) }
}

fn benches(c: &mut Criterion) {
    // 1) 1000 series x 6 h at 1 sample/s: write throughput and bytes/sample.
    let dir = tempfile::tempdir().unwrap();
    let held_before = HELD.load(Ordering::Relaxed);
    let (store, _) = Store::open(dir.path(), opts()).unwrap();
    let steps = bench_steps(6 * 3600);
    // A commit every 100 steps (100,000 samples): far more often than the
    // once a second the store needs at this rate.
    let (n, took) = write(&store, steps, 1000, 100);
    let rate = n as f64 / took.as_secs_f64();
    println!(
        "RESULT write: {n} samples in {:.2} s = {:.0} samples/s ({:.2}x the 1,000,000 goal)",
        took.as_secs_f64(),
        rate,
        rate / 1e6
    );
    let held = HELD.load(Ordering::Relaxed).saturating_sub(held_before);
    let live = store.stats();
    let chunks: u64 = live.chunks.iter().sum();
    println!(
        "RESULT memory after the write: {held} bytes held = {:.0} bytes/series; {chunks} chunks on disk ({:.0} per series, {:?} by tier)",
        held as f64 / SERIES as f64,
        chunks as f64 / SERIES as f64,
        live.chunks,
    );
    println!(
        "RESULT disk while open (after commit): {} bytes = {:.3} bytes/sample (wal {} B, checkpoint {} B, catalog {} B)",
        live.disk_bytes,
        live.disk_bytes as f64 / n as f64,
        live.wal_bytes,
        live.checkpoint_bytes,
        live.catalog_bytes
    );
    if !full_run() {
        store.close().unwrap();
        return;
    }
    // Queries on the 1 h store (raw covers the last 6 h).
    let end = T0 + (steps - 1) * 1000;
    let one = [
        Matcher::metric("price").unwrap(),
        Matcher::equal("instance", "i0").unwrap(),
    ];
    let all = [Matcher::equal("job", "bench").unwrap()];
    let r = store
        .query_range(&one, end - 3_600_000, end, 1000, 300_000)
        .unwrap();
    assert_eq!(r.tier, Tier::Raw);
    assert_eq!(r.series[0].points.len(), 3601);
    let mut g = c.benchmark_group("query_1h_1s_step");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    g.bench_function("1_series", |b| {
        b.iter(|| {
            black_box(
                store
                    .query_range(&one, end - 3_600_000, end, 1000, 300_000)
                    .unwrap(),
            )
        })
    });
    g.sample_size(10);
    g.bench_function("1000_series", |b| {
        b.iter(|| {
            black_box(
                store
                    .query_range(&all, end - 3_600_000, end, 1000, 300_000)
                    .unwrap(),
            )
        })
    });
    g.finish();
    store.close().unwrap();
    let closed = dir_bytes(dir.path());
    let is_index = |p: &Path| p.extension().is_some_and(|e| e == "idx");
    let raw_bytes = files_bytes(&dir.path().join("raw"), |p| !is_index(p));
    println!(
        "RESULT disk after close: {closed} bytes for {n} samples = {:.3} bytes/sample, all tiers and files ({:.2}x the 2-byte goal); raw tier alone {:.3} bytes/sample",
        closed as f64 / n as f64,
        (closed as f64 / n as f64) / 2.0,
        raw_bytes as f64 / n as f64
    );
    // Per tier, in bytes per raw sample written (the tiers' bucket counts
    // differ; what matters for the disk is their cost per sample ingested).
    let mut accounted = 0;
    for t in ["raw", "1s", "1m", "1h", "wal"] {
        let bytes = files_bytes(&dir.path().join(t), |p| !is_index(p));
        accounted += bytes;
        println!(
            "RESULT   {t:>4}: {bytes:>9} bytes = {:.3} bytes/sample",
            bytes as f64 / n as f64
        );
    }
    let indexes = files_bytes(dir.path(), is_index);
    accounted += indexes;
    println!(
        "RESULT   chunk indexes: {indexes:>9} bytes = {:.3} bytes/sample",
        indexes as f64 / n as f64
    );
    let rest = closed - accounted;
    println!(
        "RESULT   checkpoint + catalog: {rest:>9} bytes = {:.3} bytes/sample",
        rest as f64 / n as f64
    );
    println!(
        "RESULT   whole store: {closed:>9} bytes = {:.3} bytes/sample",
        closed as f64 / n as f64
    );
    let t = Instant::now();
    let (store, rec) = Store::open(dir.path(), opts()).unwrap();
    println!(
        "RESULT open (reads and checks every frame): {:.3} s, {rec}",
        t.elapsed().as_secs_f64()
    );
    drop(store);

    // 2) 1000 series x 7 days at 1 sample/min: the 7-day queries (1 min tier).
    let dir7 = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir7.path(), opts()).unwrap();
    let steps = bench_steps(7 * 24 * 60);
    let (n7, took7) = write(&store, steps, 60_000, 60);
    println!(
        "RESULT write (7 d at 1/min): {n7} samples in {:.2} s = {:.0} samples/s",
        took7.as_secs_f64(),
        n7 as f64 / took7.as_secs_f64()
    );
    let end = T0 + (steps - 1) * 60_000;
    let r = store
        .query_range(&one, end - 7 * 86_400_000 + 60_000, end, 60_000, 300_000)
        .unwrap();
    assert_eq!(r.tier, Tier::Minute);
    assert!(r.series[0].points.len() > 10_000);
    let mut g = c.benchmark_group("query_7d_1m_step");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    g.bench_function("1_series", |b| {
        b.iter(|| {
            black_box(
                store
                    .query_range(&one, end - 7 * 86_400_000 + 60_000, end, 60_000, 300_000)
                    .unwrap(),
            )
        })
    });
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("1000_series", |b| {
        b.iter(|| {
            black_box(
                store
                    .query_range(&all, end - 7 * 86_400_000 + 60_000, end, 60_000, 300_000)
                    .unwrap(),
            )
        })
    });
    g.finish();
    store.close().unwrap();

    // 3) 50,000 series, each sampled ten times a second, in batches of 500
    // from all over the series (the 10,000-symbol feed's shape: five series a
    // symbol): the series' heads no longer fit in the caches.
    let dir_wide = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir_wide.path(), opts()).unwrap();
    let (n, took) = write_wide(&store, 50_000, 240, 500);
    let rate = n as f64 / took.as_secs_f64();
    println!(
        "RESULT write (50,000 series, batches of 500 from all over them): {n} samples in {:.2} s = {rate:.0} samples/s ({:.2}x the 500,000 samples/s of 100,000 records/s at five series a record)",
        took.as_secs_f64(),
        rate / 500_000.0
    );
    // Closing writes a checkpoint: every series' open chunks, each in an
    // allocation of its own.
    let started = Instant::now();
    store.close().unwrap();
    println!(
        "RESULT close (commit and a checkpoint of 50,000 series' open chunks): {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
}

/// Writes `steps` samples to each of `series` series (100 ms apart, prices in
/// cents), in batches of `batch` samples that visit the series in a fixed
/// scattered order, committing once a second of samples. Returns samples
/// written and the time taken.
fn write_wide(store: &Store, series: usize, steps: i64, batch: usize) -> (u64, Duration) {
    let refs: Vec<SeriesRef> = (0..series)
        .map(|k| {
            let l = Labels::new("price", [("symbol", format!("S{k}"))]).unwrap();
            store.series_ref(&l, MetricKind::Gauge).unwrap()
        })
        .collect();
    // A fixed permutation (an odd multiplier modulo a power of two, skipping
    // what falls outside): each step visits every series once, scattered.
    let span = series.next_power_of_two();
    let order: Vec<usize> = (0..span)
        .map(|i| i.wrapping_mul(0x9E37_79B9) % span)
        .filter(|&k| k < series)
        .collect();
    let mut rng = Rng(7);
    let mut pending = Vec::with_capacity(batch);
    let mut n = 0u64;
    let start = Instant::now();
    for i in 0..steps {
        for &k in &order {
            let t = T0 + i * 100 + (k % 97) as i64;
            let v = (6_400_000 + rng.below(200) as i64) as f64 / 100.0;
            pending.push((refs[k], Sample::new(t, v)));
            if pending.len() == batch {
                n += store.append_refs(&pending).unwrap().accepted;
                pending.clear();
            }
        }
        if (i + 1) % 10 == 0 {
            store.commit().unwrap();
        }
    }
    n += store.append_refs(&pending).unwrap().accepted;
    store.commit().unwrap();
    (n, start.elapsed())
}

criterion_group! {
    name = tsdb;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(tsdb);
