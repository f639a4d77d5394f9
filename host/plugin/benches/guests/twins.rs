//! The per-call cost of the Python and JavaScript twins of the collector, metric and
//! delta plugins against the Rust ones, same calls, same input: `twins/<call>/<lang>`.
//! Skipped (with a message) when `scripts/build-guest-plugins.sh` has not built them,
//! and outside `cargo bench`.
//! Compiled code is cached in `target/guest-plugins/bench-cache`, so only the first
//! run pays the guests' compile (7-12 s each).

use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use criterion::{Bencher, BenchmarkId, Criterion};
use wasmeter_plugin::{CollectorWorld, DeltaWorld, MetricWorld, Runtime, RuntimeConfig};

/// A plugin in each language: (label, component file) for Rust, Python, JavaScript.
struct Twins {
    files: [(&'static str, PathBuf); 3],
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn twins(rust: &str, python: &str, js: &str) -> Twins {
    let guests = root().join("target/guest-plugins");
    Twins {
        files: [
            ("rust", super::component(rust)),
            ("python", guests.join("python").join(python)),
            ("js", guests.join("js").join(js)),
        ],
    }
}

/// Calls measured per instance: after this many, the next calls go to a fresh
/// instance (made outside the measurement), since the JavaScript guests' memory grows
/// with every call until the cap (see [`calls_until_the_cap`]). The first calls of an
/// instance are slower (its memory image is touched for the first time); 1,000 calls
/// amortise them, as in a host where instances live long. The same for every language.
const CALLS_PER_INSTANCE: u64 = 1000;

/// Times `call` on instances from `fresh`, [`CALLS_PER_INSTANCE`] calls each; only
/// the calls are timed.
fn on_instances<I, R>(
    b: &mut Bencher<'_>,
    fresh: impl Fn() -> I,
    mut call: impl FnMut(&mut I) -> R,
) {
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        let mut instance = fresh();
        for i in 0..iters {
            if i > 0 && i % CALLS_PER_INSTANCE == 0 {
                instance = fresh();
            }
            let started = Instant::now();
            std::hint::black_box(call(&mut instance));
            total += started.elapsed();
        }
        total
    });
}

/// How many calls of `call` a fresh instance takes before one fails (the memory cap:
/// 64 MiB by default), up to `max`; prints the answer.
fn calls_until_the_cap<E: std::fmt::Debug>(
    what: &str,
    max: u32,
    mut call: impl FnMut() -> Result<(), E>,
) {
    for n in 1..=max {
        if let Err(e) = call() {
            eprintln!("twins: {what}: call {n} failed: {e:?}");
            return;
        }
    }
    eprintln!("twins: {what}: {max} calls, none failed");
}

/// The twins' benchmarks: collect 1 and 100 trades, on-samples of 1 sample, a diff
/// of one topic.
pub fn bench(c: &mut Criterion) {
    // `cargo test --all-targets` runs benches once as tests: loading the guests would
    // compile six 12-18 MB components there (7-15 s each) for nothing.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("twins: skipped outside `cargo bench`");
        return;
    }
    let collectors = twins("csv_collector", "csv_collector.wasm", "csv-collector.wasm");
    let metrics = twins("ewma", "ewma.wasm", "ewma.wasm");
    let deltas = twins("field_delta", "field_delta.wasm", "field-delta.wasm");
    let all = [&collectors, &metrics, &deltas];
    if let Some(missing) = all
        .iter()
        .flat_map(|t| t.files.iter())
        .find(|(_, path)| !path.is_file())
    {
        eprintln!(
            "twins: skipped, {} is not built (scripts/build-plugins.sh, scripts/build-guest-plugins.sh)",
            missing.1.display()
        );
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(root().join("target/guest-plugins/bench-cache")),
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::new(config).unwrap();

    let mut group = c.benchmark_group("twins");
    for (lang, path) in &collectors.files {
        let plugin = rt
            .block_on(runtime.load::<CollectorWorld>(path.clone()))
            .unwrap();
        let fresh = || rt.block_on(plugin.instantiate("bench", vec![])).unwrap();
        for n in [1u64, 100] {
            let chunk = super::trades(0..n, 8);
            let id = BenchmarkId::new(format!("collect {n} trades"), lang);
            group.bench_with_input(id, &chunk, |b, chunk| {
                on_instances(b, fresh, |csv| {
                    rt.block_on(csv.collect("bench", chunk)).unwrap()
                });
            });
        }
        let (mut csv, chunk) = (fresh(), super::trades(0..100, 8));
        calls_until_the_cap(&format!("{lang} collect 100 trades"), 3000, || {
            rt.block_on(csv.collect("bench", &chunk)).map(drop)
        });
    }
    let sample = super::price_sample();
    for (lang, path) in &metrics.files {
        let plugin = rt
            .block_on(runtime.load::<MetricWorld>(path.clone()))
            .unwrap();
        let fresh = || rt.block_on(plugin.instantiate("bench", vec![])).unwrap();
        let id = BenchmarkId::new("on_samples 1 sample", lang);
        group.bench_function(id, |b| {
            on_instances(b, fresh, |ewma| {
                rt.block_on(ewma.on_sample_list(&sample)).unwrap()
            });
        });
    }
    let (before, after) = (super::trade(100.25, 1.0), super::trade(100.5, 2.0));
    for (lang, path) in &deltas.files {
        let plugin = rt
            .block_on(runtime.load::<DeltaWorld>(path.clone()))
            .unwrap();
        let fresh = || rt.block_on(plugin.instantiate("bench", vec![])).unwrap();
        let id = BenchmarkId::new("diff 6 fields", lang);
        group.bench_function(id, |b| {
            on_instances(b, fresh, |delta| {
                rt.block_on(delta.diff("trades/S1", &before, &after))
                    .unwrap()
            });
        });
    }
    group.finish();
}
