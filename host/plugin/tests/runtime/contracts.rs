//! Every contract version: components built against the frozen 0.1.0, 0.2.0
//! and 0.3.0 load and work as before; a delta plugin of 0.2.0 or later diffs a
//! batch of topics in one call; a collector of 0.3.0 or later declares a series
//! once and then sends points of it, numbered across calls for the life of an
//! instance; a 0.4.0 metric takes and gives points the same way.

use std::time::Duration;
use wasmeter_core::field::{FieldValue, TopicState};
use wasmeter_core::sample::{Label, MetricKind, Sample};

use wasmeter_core::sample_batch::SampleBatch;
use wasmeter_plugin::{
    CollectorWorld, Contract, DeltaWorld, MAX_DECLARED_SERIES, MetricWorld, PluginLimits, TopicDiff,
};

use crate::support::{component, config, numbers, runtime};

#[tokio::test]
async fn a_0_1_0_collector_loads_and_collects() {
    let plugin = runtime()
        .load::<CollectorWorld>(component("v1_collector"))
        .await
        .unwrap();
    assert_eq!(plugin.meta().contract, Contract::V0_1);
    assert_eq!(plugin.meta().info.name, "v1-collector");
    let mut c = plugin.instantiate("v1", config(&[])).await.unwrap();

    let out = c
        .collect("feed.csv", b"BTC,100.5\nnot a record\nETH,7\n")
        .await
        .unwrap();

    let topics: Vec<_> = out.updates.iter().map(|u| u.topic.as_str()).collect();
    assert_eq!(topics, ["v1/BTC", "v1/ETH"]);
    assert_eq!(
        out.updates[0].fields,
        [("price".to_string(), FieldValue::Number(100.5))]
    );
    assert_eq!(out.all_samples().len(), 2);
    assert_eq!(out.all_samples()[1].label("symbol"), Some("ETH"));
    assert!(out.all_samples()[1].timestamp_ms > 0, "stamped by the host");
    assert!(out.events.is_empty());
    assert_eq!(out.errors.len(), 1);
    assert_eq!((out.errors[0].line, out.errors[0].offset), (2, 10));
}

#[tokio::test]
async fn a_0_2_0_collector_loads_and_collects() {
    let plugin = runtime()
        .load::<CollectorWorld>(component("v2_collector"))
        .await
        .unwrap();
    assert_eq!(plugin.meta().contract, Contract::V0_2);
    let mut c = plugin.instantiate("v2", config(&[])).await.unwrap();

    let out = c
        .collect("feed.csv", b"BTC,100.5\nnot a record\nETH,7\n")
        .await
        .unwrap();

    let topics: Vec<_> = out.updates.iter().map(|u| u.topic.as_str()).collect();
    assert_eq!(topics, ["v2/BTC", "v2/ETH"]);
    let events: Vec<_> = out.events.iter().map(|e| e.topic.as_str()).collect();
    assert_eq!(events, ["v2-tape/BTC", "v2-tape/ETH"]);
    assert_eq!(out.all_samples().len(), 2);
    assert_eq!(out.all_samples()[1].name, "v2_price");
    assert_eq!(out.all_samples()[1].label("symbol"), Some("ETH"));
    assert_eq!(out.all_samples()[1].value, 7.0);
    assert!(out.all_samples()[1].timestamp_ms > 0, "stamped by the host");
    assert_eq!((out.errors[0].line, out.errors[0].offset), (2, 10));
}

#[tokio::test]
async fn a_0_3_0_collector_loads_and_sends_points_of_the_series_it_declared() {
    let plugin = runtime()
        .load::<CollectorWorld>(component("v3_collector"))
        .await
        .unwrap();
    assert_eq!(plugin.meta().contract, Contract::V0_3);
    let mut c = plugin.instantiate("v3", config(&[])).await.unwrap();
    let prices = |out: &wasmeter_core::update::CollectOutput| -> Vec<(String, f64)> {
        out.all_samples()
            .iter()
            .map(|s| {
                assert_eq!(s.name, "v3_price");
                (s.label("symbol").unwrap().to_string(), s.value)
            })
            .collect()
    };

    let out = c
        .collect("feed.csv", b"BTC,100.5\nnot a record\nETH,7\n")
        .await
        .unwrap();
    let topics: Vec<_> = out.updates.iter().map(|u| u.topic.as_str()).collect();
    assert_eq!(topics, ["v3/BTC", "v3/ETH"]);
    assert_eq!(prices(&out), named(&[("BTC", 100.5), ("ETH", 7.0)]));
    assert_eq!((out.errors[0].line, out.errors[0].offset), (2, 10));
    // ETH and BTC were declared by the call before; SOL is new.
    let out = c
        .collect("feed.csv", b"ETH,8\nSOL,1\nBTC,101\n")
        .await
        .unwrap();
    assert_eq!(
        prices(&out),
        named(&[("ETH", 8.0), ("SOL", 1.0), ("BTC", 101.0)])
    );
}

/// `faulty_series{name}` samples of `out` as (name label, value).
fn series_points(out: &wasmeter_core::update::CollectOutput) -> Vec<(String, f64)> {
    out.all_samples()
        .iter()
        .map(|s| {
            assert_eq!(s.name, "faulty_series");
            assert_eq!(s.kind, MetricKind::Gauge);
            assert!(s.timestamp_ms > 0, "stamped by the host");
            (s.label("name").unwrap().to_string(), s.value)
        })
        .collect()
}

fn named(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
    pairs.iter().map(|(n, v)| (n.to_string(), *v)).collect()
}

#[tokio::test]
async fn a_collector_numbers_its_series_across_calls_for_the_life_of_an_instance() {
    let plugin = runtime()
        .load::<CollectorWorld>(component("faulty_collector"))
        .await
        .unwrap();
    assert_eq!(plugin.meta().contract, Contract::CURRENT);
    let mut c = plugin.instantiate("faulty", config(&[])).await.unwrap();
    let mut collect = async |chunk: &str| c.collect("feed", chunk.as_bytes()).await;

    let out = collect("series:a\nseries:b\n").await.unwrap();
    assert_eq!(series_points(&out), named(&[("a", 1.0), ("b", 2.0)]));
    // b was declared by the call before; c is new.
    let out = collect("series:b\nseries:c\n").await.unwrap();
    assert_eq!(series_points(&out), named(&[("b", 1.0), ("c", 2.0)]));

    // A call whose output the host refuses still declared d: the guest counts it.
    let refused = collect("series:d\nbadname\n").await.unwrap_err();
    assert!(refused.to_string().contains("bad name!"), "{refused}");
    let out = collect("series:d\nseries:a\n").await.unwrap();
    assert_eq!(series_points(&out), named(&[("d", 1.0), ("a", 2.0)]));

    // A call that returns an error declares nothing.
    collect("series:e\nerror\n").await.unwrap_err();
    let out = collect("series:e\nseries:d\n").await.unwrap();
    assert_eq!(series_points(&out), named(&[("e", 1.0), ("d", 2.0)]));

    // A trap rebuilds the instance: both sides start numbering again.
    collect("panic\n").await.unwrap_err();
    let out = collect("series:f\nseries:a\n").await.unwrap();
    assert_eq!(series_points(&out), named(&[("f", 1.0), ("a", 2.0)]));
}

#[tokio::test]
async fn a_0_1_0_delta_plugin_is_called_once_per_topic() {
    let plugin = runtime()
        .load::<DeltaWorld>(component("v1_delta"))
        .await
        .unwrap();
    assert_eq!(plugin.meta().contract, Contract::V0_1);
    let mut d = plugin.instantiate("v1", config(&[])).await.unwrap();
    let before = d.health_handle().snapshot().calls;

    let a0 = numbers(&[("price", 1.0), ("qty", 2.0)]);
    let a1 = numbers(&[("price", 1.5), ("qty", 2.0)]);
    let b0 = numbers(&[("bid", 3.0), ("ask", 4.0)]);
    let b1 = numbers(&[("bid", 3.0)]);
    let changes = [
        TopicDiff {
            topic: "t/a",
            previous: &a0,
            current: &a1,
        },
        TopicDiff {
            topic: "t/b",
            previous: &b0,
            current: &b1,
        },
    ];
    let deltas = d.diff_many(&changes).await.unwrap();

    let a = deltas[0].as_ref().unwrap();
    assert_eq!(a.changed, [("price".to_string(), FieldValue::Number(1.5))]);
    assert!(a.removed.is_empty());
    let b = deltas[1].as_ref().unwrap();
    assert!(b.changed.is_empty());
    assert_eq!(b.removed, ["ask"]);
    assert_eq!(
        d.health_handle().snapshot().calls - before,
        2,
        "one call per topic"
    );
    assert_eq!(d.apply(&b0, b).await.unwrap(), b1);
}

#[tokio::test]
async fn delta_plugins_of_0_3_0_and_0_4_0_diff_a_batch_in_one_call() {
    for (name, contract) in [
        ("field_delta", Contract::V0_4),
        ("v3_delta", Contract::V0_3),
    ] {
        diffs_a_batch(name, contract).await;
    }
}

/// Topic `i`'s states before and after: the price changes, the side changes
/// on every other topic, the quantity goes away on every third, a venue comes
/// on every fifth; so the batch's topics share some field names and not others.
fn batch_states(i: usize) -> (TopicState, TopicState) {
    let text = |t: &str| FieldValue::Text(t.to_string());
    let mut before = numbers(&[("price", i as f64)]);
    before.insert("side".into(), text("buy"));
    if i.is_multiple_of(3) {
        before.insert("qty".into(), FieldValue::Number(1.0));
    }
    let mut after = numbers(&[("price", i as f64 + 0.5)]);
    after.insert(
        "side".into(),
        text(if i.is_multiple_of(2) { "sell" } else { "buy" }),
    );
    if i.is_multiple_of(5) {
        after.insert("venue".into(), text("x"));
    }
    (before, after)
}

async fn diffs_a_batch(name: &str, contract: Contract) {
    let plugin = runtime().load::<DeltaWorld>(component(name)).await.unwrap();
    assert_eq!(plugin.meta().contract, contract, "{name}");
    let mut d = plugin.instantiate("fd", config(&[])).await.unwrap();
    let before = d.health_handle().snapshot().calls;

    let states: Vec<_> = (0..100).map(batch_states).collect();
    let names: Vec<String> = (0..100).map(|i| format!("t/{i}")).collect();
    let changes: Vec<_> = states
        .iter()
        .zip(&names)
        .map(|((p, c), topic)| TopicDiff {
            topic,
            previous: p,
            current: c,
        })
        .collect();
    let deltas = d.diff_many(&changes).await.unwrap();

    assert_eq!(
        d.health_handle().snapshot().calls - before,
        1,
        "{name}: one call for the batch"
    );
    assert_eq!(deltas.len(), 100);
    for (i, delta) in deltas.iter().enumerate() {
        let delta = delta.as_ref().unwrap();
        let (previous, current) = &states[i];
        let mut changed: Vec<_> = current
            .iter()
            .filter(|(k, v)| previous.get(k.as_str()) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        changed.sort_by(|a, b| a.0.cmp(&b.0));
        let mut got = delta.changed.clone();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(got, changed, "{name}: topic {i}");
        let removed: Vec<_> = previous
            .keys()
            .filter(|k| !current.contains_key(k.as_str()))
            .cloned()
            .collect();
        assert_eq!(delta.removed, removed, "{name}: topic {i}");
    }
}

#[tokio::test]
async fn metric_plugins_of_0_1_0_and_0_3_0_derive_whole_samples() {
    for (name, contract) in [("v1_metric", Contract::V0_1), ("v3_metric", Contract::V0_3)] {
        metric_doubles(name, contract).await;
    }
}

async fn metric_doubles(name: &str, contract: Contract) {
    let plugin = runtime()
        .load::<MetricWorld>(component(name))
        .await
        .unwrap();
    assert_eq!(plugin.meta().contract, contract, "{name}");
    let mut m = plugin.instantiate("compat", config(&[])).await.unwrap();
    let input = Sample {
        name: "price".into(),
        labels: vec![Label {
            name: "symbol".into(),
            value: "BTC".into(),
        }],
        value: 21.0,
        kind: MetricKind::Gauge,
        timestamp_ms: 1_700_000_000_000,
    };

    let out = m
        .on_sample_list(std::slice::from_ref(&input))
        .await
        .unwrap();

    assert_eq!(
        out,
        [Sample {
            name: "price_doubled".into(),
            value: 42.0,
            ..input
        }]
    );
}

/// `trade_price` samples of `symbols`, with `value`.
fn prices(symbols: impl IntoIterator<Item = String>, value: f64) -> SampleBatch {
    let samples: Vec<Sample> = symbols
        .into_iter()
        .map(|symbol| Sample {
            name: "trade_price".into(),
            labels: vec![Label::new("symbol", symbol)],
            value,
            kind: MetricKind::Gauge,
            timestamp_ms: 1,
        })
        .collect();
    SampleBatch::from(&samples[..])
}

fn symbol_values(out: &SampleBatch) -> Vec<(String, f64)> {
    out.to_samples()
        .into_iter()
        .map(|s| (s.label("symbol").unwrap_or_default().to_string(), s.value))
        .collect()
}

#[tokio::test]
async fn a_0_4_0_metric_takes_and_gives_points_of_series_declared_once_across_resets() {
    let plugin = runtime()
        .load::<MetricWorld>(component("ewma"))
        .await
        .unwrap();
    assert_eq!(plugin.meta().contract, Contract::V0_4);
    // A call of 65,536 series takes longer than the tests' 200 ms in a debug build.
    let limits = PluginLimits {
        call_timeout: Duration::from_secs(30),
        ..PluginLimits::default()
    };
    let mut ewma = plugin
        .instantiate_with_limits(
            "ewma",
            config(&[("alpha", "0.5"), ("metrics", "trade_price")]),
            limits,
        )
        .await
        .unwrap();
    let of = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let out = ewma
        .on_samples(&prices(of(&["A", "B"]), 10.0))
        .await
        .unwrap();
    assert_eq!(
        symbol_values(&out),
        [("A".into(), 10.0), ("B".into(), 10.0)]
    );
    // B was declared before, C is new: each value lands on its own series.
    let mut second = prices(of(&["B"]), 30.0);
    second.extend(&prices(of(&["C"]), 50.0));
    second.extend(&prices(of(&["A"]), 0.0));
    let out = ewma.on_samples(&second).await.unwrap();
    assert_eq!(
        symbol_values(&out),
        [("B".into(), 20.0), ("C".into(), 50.0), ("A".into(), 5.0)]
    );

    // As many new series as either side holds: both start their numbering over.
    let many = (0..MAX_DECLARED_SERIES).map(|i| format!("s{i}"));
    let out = ewma.on_samples(&prices(many, 1.0)).await.unwrap();
    assert_eq!(out.len(), MAX_DECLARED_SERIES);
    assert_eq!(out.series().len(), MAX_DECLARED_SERIES);
    // A series declared before the resets is declared again, each way, and
    // continues from its state.
    let out = ewma
        .on_samples(&prices(of(&["A", "s7"]), 100.0))
        .await
        .unwrap();
    assert_eq!(
        symbol_values(&out),
        [("A".into(), 52.5), ("s7".into(), 50.5)]
    );
}
