//! Plugin call overhead per plugin kind (collector, delta, metric), instantiation,
//! and compile vs cached load; and the Python and JavaScript twins' calls against
//! the Rust ones (`twins/...`, see `guests/twins.rs`).
//!
//! Run with: `scripts/build-plugins.sh && cargo bench -p wasmeter-plugin --bench plugin_calls`
//! (the twins also need `scripts/build-guest-plugins.sh`; `-- twins` runs only them).

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::path::PathBuf;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wasmeter_core::field::{FieldValue, TopicState};
use wasmeter_core::sample::{Label, MetricKind, Sample};
use wasmeter_core::sample_batch::SampleBatch;
use wasmeter_plugin::{
    CollectorWorld, DeltaWorld, MetricWorld, PluginLimits, Runtime, RuntimeConfig, TopicDiff,
};
use wasmtime::component::Component;

#[path = "guests/twins.rs"]
mod twins;

fn component(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/plugins/wasm32-wasip2/release")
        .join(format!("{name}.wasm"))
}

/// `n` CSV trade lines (about 28 bytes each).
/// A trade topic's state: 6 fields, as the pipeline diffs it.
fn trade(price: f64, sent: f64) -> TopicState {
    [
        ("price", FieldValue::Number(price)),
        ("qty", FieldValue::Number(1.0)),
        ("ts", FieldValue::Number(1.7e12)),
        ("count", FieldValue::Number(42.0)),
        ("volume", FieldValue::Number(42.0)),
        ("sent", FieldValue::Number(sent)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// One `trade_price` sample, the input of the metric-plugin benches.
fn price_sample() -> [Sample; 1] {
    [Sample {
        name: "trade_price".into(),
        labels: vec![Label::new("symbol", "S1")],
        value: 100.25,
        kind: MetricKind::Gauge,
        timestamp_ms: 1_700_000_000_000,
    }]
}

/// The samples the CSV collector makes of `n` trades over `n` symbols (price,
/// quantity and the two running totals, labelled by symbol), their names
/// prefixed with `prefix`.
fn trade_samples(n: u64, prefix: &str) -> Vec<Sample> {
    let series = [
        ("trade_price", MetricKind::Gauge),
        ("trade_qty", MetricKind::Gauge),
        ("trades_total", MetricKind::Counter),
        ("trade_volume_total", MetricKind::Counter),
    ];
    (0..n)
        .flat_map(|i| {
            series.iter().map(move |(name, kind)| Sample {
                name: format!("{prefix}{name}").into(),
                labels: vec![Label::new("symbol", format!("SYM{i}"))],
                value: 100.0 + i as f64,
                kind: *kind,
                timestamp_ms: 1_700_000_000_000 + i as i64,
            })
        })
        .collect()
}

/// Trades numbered `numbers`, trade `i` of symbol `SYM<i % symbols>`.
fn trades(numbers: std::ops::Range<u64>, symbols: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity((numbers.end - numbers.start) as usize * 40);
    for i in numbers {
        let line = format!(
            "SYM{},{}.25,{},{}\n",
            i % symbols,
            100 + i % 50,
            1 + i % 3,
            1_700_000_000_000 + i
        );
        out.extend_from_slice(line.as_bytes());
    }
    out
}

/// `n` bytes that the CSV collector skips (one comment line): the cost of moving
/// the chunk into the guest and scanning it, without producing output.
fn comment(n: usize) -> Vec<u8> {
    let mut out = vec![b'x'; n];
    out[0] = b'#';
    out[n - 1] = b'\n';
    out
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let plugin = rt
        .block_on(runtime.load::<CollectorWorld>(component("csv_collector")))
        .expect("build the plugins first: scripts/build-plugins.sh");
    // Production limits: a chunk's output must stay within 100,000 samples, which
    // at 4 samples per trade is 25,000 trades (a 1 MiB chunk of these 28-byte
    // trades, ~37,000 of them, is refused).
    let limits = PluginLimits::default();
    let mut csv = rt
        .block_on(plugin.instantiate_with_limits("bench", vec![], limits))
        .unwrap();
    assert!(
        rt.block_on(csv.collect("bench", &trades(0..40_000, 8)))
            .is_err(),
        "40,000 trades (160,000 samples) should exceed the sample cap"
    );

    let mut group = c.benchmark_group("collect");
    group.bench_function("empty", |b| {
        b.iter(|| rt.block_on(csv.collect("bench", b"")).unwrap());
    });
    for (label, size) in [("64B", 64), ("4KiB", 4 << 10), ("1MiB", 1 << 20)] {
        group.throughput(Throughput::Bytes(size as u64));
        let skip = comment(size);
        group.bench_with_input(BenchmarkId::new("comment", label), &skip, |b, chunk| {
            b.iter(|| rt.block_on(csv.collect("bench", chunk)).unwrap());
        });
    }
    // Throughput in trades (elements): the per-record cost of a call.
    for n in [1u64, 100, 1_000, 20_000] {
        group.throughput(Throughput::Elements(n));
        let lines = trades(0..n, 8);
        group.bench_with_input(BenchmarkId::new("trades", n), &lines, |b, chunk| {
            b.iter(|| rt.block_on(csv.collect("bench", chunk)).unwrap());
        });
    }
    // The goal's feed: calls of 100 trades (1 ms at 100,000 records/s), each of
    // another symbol among 10,000, so that every symbol's totals and series are
    // looked up among 10,000 (40,000 series) as in the pipeline.
    let calls: Vec<Vec<u8>> = (0..100)
        .map(|c| trades(c * 100..(c + 1) * 100, 10_000))
        .collect();
    for chunk in &calls {
        rt.block_on(csv.collect("bench", chunk)).unwrap();
    }
    group.throughput(Throughput::Elements(100));
    let mut next = calls.iter().cycle();
    group.bench_function("100 trades of 10,000 symbols", |b| {
        b.iter(|| {
            rt.block_on(csv.collect("bench", next.next().unwrap()))
                .unwrap()
        });
    });
    group.finish();

    c.bench_function("instantiate+init", |b| {
        b.iter(|| rt.block_on(plugin.instantiate("bench", vec![])).unwrap());
    });

    // The other kinds: a delta of one trade topic (6 fields, 3 changed) and a
    // derived metric fed one sample, the sizes the pipeline passes per topic.
    let delta = rt
        .block_on(runtime.load::<DeltaWorld>(component("field_delta")))
        .unwrap();
    let mut field_delta = rt.block_on(delta.instantiate("bench", vec![])).unwrap();
    let (before, after) = (trade(100.25, 1.0), trade(100.5, 2.0));
    c.bench_function("delta/diff 6 fields", |b| {
        b.iter(|| {
            rt.block_on(field_delta.diff("trades/S1", &before, &after))
                .unwrap()
        });
    });
    // What the pipeline sends: the topics a chunk changed, in one call (100
    // trade topics of six fields, three of them changed).
    let states: Vec<(String, TopicState, TopicState)> = (0..100)
        .map(|i| {
            let price = 100.0 + i as f64;
            (
                format!("trades/S{i}"),
                trade(price, 1.0),
                trade(price + 0.25, 2.0),
            )
        })
        .collect();
    let batch: Vec<TopicDiff<'_>> = states
        .iter()
        .map(|(topic, previous, current)| TopicDiff {
            topic,
            previous,
            current,
        })
        .collect();
    let mut group = c.benchmark_group("delta/diff 100 topics");
    group.throughput(Throughput::Elements(100));
    group.bench_function("field_delta", |b| {
        b.iter(|| rt.block_on(field_delta.diff_many(&batch)).unwrap());
    });
    group.finish();
    let metric = rt
        .block_on(runtime.load::<MetricWorld>(component("ewma")))
        .unwrap();
    let mut ewma = rt.block_on(metric.instantiate("bench", vec![])).unwrap();
    let sample = price_sample();
    c.bench_function("metric/on_samples 1 sample", |b| {
        b.iter(|| rt.block_on(ewma.on_sample_list(&sample)).unwrap());
    });
    // A derived metric's cost per trade: the four samples the CSV collector
    // makes of each trade (100 trades over 100 symbols, as at 10,000 symbols),
    // for each of the demo's metric plugins; and the same samples under a name
    // none of them reads (the cost of passing them in and back).
    let batch = SampleBatch::from(&trade_samples(100, "")[..]);
    let ignored = SampleBatch::from(&trade_samples(100, "other_")[..]);
    let mut group = c.benchmark_group("metric/on_samples 100 trades");
    group.throughput(Throughput::Elements(100));
    for (name, config) in [
        ("counter_rate", "trades_total,trade_volume_total"),
        ("vwap", ""),
        ("ewma", "trade_price"),
        ("rolling_minmax", "trade_price"),
    ] {
        let plugin = rt
            .block_on(runtime.load::<MetricWorld>(component(name)))
            .unwrap();
        let config = match config {
            "" => vec![],
            metrics => vec![("metrics".to_string(), metrics.to_string())],
        };
        let mut instance = rt.block_on(plugin.instantiate("bench", config)).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| rt.block_on(instance.on_samples(&batch)).unwrap());
        });
        group.bench_function(format!("{name}/ignored"), |b| {
            b.iter(|| rt.block_on(instance.on_samples(&ignored)).unwrap());
        });
    }
    group.finish();
    c.bench_function("instantiate+init/delta", |b| {
        b.iter(|| rt.block_on(delta.instantiate("bench", vec![])).unwrap());
    });
    c.bench_function("instantiate+init/metric", |b| {
        b.iter(|| rt.block_on(metric.instantiate("bench", vec![])).unwrap());
    });

    // What the compile cache saves: Cranelift compilation vs loading the artifact.
    let bytes = std::fs::read(component("csv_collector")).unwrap();
    let engine = runtime.engine();
    let artifact = Component::new(engine, &bytes).unwrap().serialize().unwrap();
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.bench_function("compile", |b| {
        b.iter(|| Component::new(engine, &bytes).unwrap())
    });
    group.bench_function("cached", |b| {
        // SAFETY: the artifact was serialized just above by this same engine.
        b.iter(|| unsafe { Component::deserialize(engine, &artifact) }.unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench, twins::bench);
criterion_main!(benches);
