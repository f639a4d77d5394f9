//! The hostile test plugins' modes meant for the pipeline's limits produce what
//! their docs say; the runtime itself accepts their output (the pipeline decides).

use std::collections::BTreeSet;

use wasmeter_plugin::{CollectorWorld, MetricWorld};

use crate::support::{component, config, runtime};

#[tokio::test]
async fn forge_and_long_labels_emit_what_they_document() {
    let mut f = runtime()
        .load::<CollectorWorld>(component("faulty_collector"))
        .await
        .unwrap()
        .instantiate(
            "hostile",
            config(&[("forge_topic", "_wasmeter/plugins/csv")]),
        )
        .await
        .unwrap();
    let out = f.collect("src", b"forge\nlong-labels\n").await.unwrap();
    assert_eq!(out.updates.len(), 1);
    assert_eq!(out.updates[0].topic, "_wasmeter/plugins/csv");
    let sample = &out.samples[0];
    assert_eq!(sample.name, "faulty_long_labels");
    assert_eq!(sample.labels.len(), 16);
    let label_bytes: usize = sample.labels.iter().map(|l| l.value.len()).sum();
    assert_eq!(label_bytes, 64_000);
}

#[tokio::test]
async fn series_flood_creates_new_series_on_every_call() {
    let mut m = runtime()
        .load::<MetricWorld>(component("faulty_metric"))
        .await
        .unwrap()
        .instantiate(
            "hostile",
            config(&[("mode", "series-flood"), ("series_per_tick", "50")]),
        )
        .await
        .unwrap();
    let mut series = BTreeSet::new();
    for out in [
        m.on_tick(1).await.unwrap(),
        m.on_samples(&[]).await.unwrap(),
    ] {
        let flood: Vec<_> = out.iter().filter(|s| s.name == "faulty_series").collect();
        assert_eq!(flood.len(), 50);
        series.extend(flood.iter().map(|s| s.label("series").unwrap().to_string()));
    }
    assert_eq!(series.len(), 100, "every series is new");
}
