//! The hostile test plugins' modes meant for the pipeline's limits produce what
//! their docs say; the runtime itself accepts their output (the pipeline decides).

use std::collections::BTreeSet;

use wasmeter_plugin::{CollectorWorld, MetricWorld};

use crate::support::{component, config, runtime};

#[tokio::test]
async fn forge_and_long_labels_are_refused_as_invalid_output() {
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
    let forged = f.collect("src", b"forge\n").await.unwrap_err().to_string();
    assert!(
        forged.contains("`_wasmeter/plugins/csv`: topics under `_wasmeter/` belong to the host"),
        "{forged}"
    );
    let long = f
        .collect("src", b"long-labels\n")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        long.contains("`faulty_long_labels`")
            && long.contains("would be 64042 bytes, longer than the topic limit of 256 bytes"),
        "{long}"
    );
    // Good lines still pass.
    f.collect("src", b"a\n").await.unwrap();
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
        m.on_tick(1).await.unwrap().to_samples(),
        m.on_sample_list(&[]).await.unwrap(),
    ] {
        let flood: Vec<_> = out.iter().filter(|s| s.name == "faulty_series").collect();
        assert_eq!(flood.len(), 50);
        series.extend(flood.iter().map(|s| s.label("series").unwrap().to_string()));
    }
    assert_eq!(series.len(), 100, "every series is new");
}
