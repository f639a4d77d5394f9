//! Every contract version: components built against the frozen 0.1.0 and 0.2.0
//! load and work as before; a delta plugin of 0.2.0 or later diffs a batch of
//! topics in one call; a 0.3.0 collector declares a series once and then sends
//! points of it, numbered across calls for the life of an instance.

use wasmeter_core::field::FieldValue;
use wasmeter_core::sample::{Label, MetricKind, Sample};
use wasmeter_plugin::{CollectorWorld, Contract, DeltaWorld, MetricWorld, TopicDiff};

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
async fn a_0_3_0_collector_numbers_its_series_across_calls_for_the_life_of_an_instance() {
    let plugin = runtime()
        .load::<CollectorWorld>(component("faulty_collector"))
        .await
        .unwrap();
    assert_eq!(plugin.meta().contract, Contract::V0_3);
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
async fn a_delta_plugin_of_0_2_0_or_later_diffs_a_batch_in_one_call() {
    let plugin = runtime()
        .load::<DeltaWorld>(component("field_delta"))
        .await
        .unwrap();
    assert_eq!(plugin.meta().contract, Contract::V0_3);
    let mut d = plugin.instantiate("fd", config(&[])).await.unwrap();
    let before = d.health_handle().snapshot().calls;

    let states: Vec<_> = (0..100)
        .map(|i| {
            (
                numbers(&[("price", i as f64)]),
                numbers(&[("price", i as f64 + 0.5)]),
            )
        })
        .collect();
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
        "one call for the batch"
    );
    assert_eq!(deltas.len(), 100);
    for (i, delta) in deltas.iter().enumerate() {
        let delta = delta.as_ref().unwrap();
        assert_eq!(
            delta.changed,
            [("price".to_string(), FieldValue::Number(i as f64 + 0.5))]
        );
    }
}

#[tokio::test]
async fn a_0_1_0_metric_plugin_derives_samples() {
    let plugin = runtime()
        .load::<MetricWorld>(component("v1_metric"))
        .await
        .unwrap();
    assert_eq!(plugin.meta().contract, Contract::V0_1);
    let mut m = plugin.instantiate("v1", config(&[])).await.unwrap();
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

    let out = m.on_samples(std::slice::from_ref(&input)).await.unwrap();

    assert_eq!(
        out,
        [Sample {
            name: "price_doubled".into(),
            value: 42.0,
            ..input
        }]
    );
}
