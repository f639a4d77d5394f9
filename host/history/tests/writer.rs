//! The writer over a real store: a batch whose series are interleaved is
//! stored per series in order, a later batch finds its series again, and every
//! sample is counted as written or refused.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use wasmeter_core::sample::{Label, MetricKind, Sample};
use wasmeter_core::sample_batch::SampleBatch;
use wasmeter_history::HistoryWriter;
use wasmeter_tsdb::{Matcher, Options, Store};

/// A minute ago, to the second: inside the raw tier's retention.
fn t0() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    (now - 60_000) / 1000 * 1000
}

fn sample(t0: i64, name: &str, labels: &[(&str, &str)], second: i64, value: f64) -> Sample {
    Sample {
        name: name.into(),
        labels: labels.iter().map(|(n, v)| Label::new(*n, *v)).collect(),
        value,
        kind: MetricKind::Gauge,
        timestamp_ms: t0 + second * 1000,
    }
}

/// `(second, value)` of each stored point of `price{symbol}`.
fn points(store: &Store, t0: i64, symbol: &str) -> Vec<(i64, f64)> {
    let matchers = [
        Matcher::metric("price").unwrap(),
        Matcher::equal("symbol", symbol).unwrap(),
    ];
    let result = store
        .query_range(&matchers, t0, t0 + 10_000, 1000, 1)
        .unwrap();
    assert_eq!(result.series.len(), 1, "one series for {symbol}");
    result.series[0]
        .points
        .iter()
        .map(|p| ((p.t_ms - t0) / 1000, p.value))
        .collect()
}

#[tokio::test]
async fn interleaved_series_are_stored_in_order_and_every_sample_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        max_future_ms: None,
        commit_interval: None,
        ..Options::default()
    };
    let (store, _) = Store::open(dir.path(), opts).unwrap();
    let writer = HistoryWriter::start(Arc::new(store), 4).unwrap();
    let (stats, store) = (writer.stats(), writer.store().clone());
    let t0 = t0();
    let batch = [
        sample(t0, "price", &[("symbol", "A"), ("venue", "x")], 1, 10.0),
        sample(t0, "price", &[("symbol", "B"), ("venue", "x")], 1, 20.0),
        // The same series as the first, its labels in another order.
        sample(t0, "price", &[("venue", "x"), ("symbol", "A")], 2, 11.0),
        sample(t0, "bad-name", &[("symbol", "A")], 2, 1.0),
        sample(t0, "price", &[("symbol", "B"), ("venue", "x")], 3, 21.0),
        // Older than the series' newest: refused.
        sample(t0, "price", &[("symbol", "A"), ("venue", "x")], 1, 99.0),
        sample(t0, "bad-name", &[("symbol", "B")], 3, 1.0),
        sample(t0, "price", &[("symbol", "A"), ("venue", "x")], 4, 12.0),
    ];
    writer.sender().send(SampleBatch::from(&batch[..])).await;
    // A later batch finds its series known to the writer.
    let later = [
        sample(t0, "price", &[("venue", "x"), ("symbol", "B")], 5, 22.0),
        // Older than A's newest: refused.
        sample(t0, "price", &[("symbol", "A"), ("venue", "x")], 3, 98.0),
        sample(t0, "price", &[("symbol", "C"), ("venue", "x")], 5, 30.0),
    ];
    writer.sender().send(SampleBatch::from(&later[..])).await;
    assert!(
        writer.close(Duration::from_secs(10)).await,
        "writer stopped"
    );
    assert_eq!(stats.written.load(Relaxed), 7);
    assert_eq!(
        stats.refused.load(Relaxed),
        4,
        "two bad names, two out of order"
    );
    assert_eq!(stats.failed_batches.load(Relaxed), 0);
    assert_eq!(points(&store, t0, "A"), [(1, 10.0), (2, 11.0), (4, 12.0)]);
    assert_eq!(points(&store, t0, "B"), [(1, 20.0), (3, 21.0), (5, 22.0)]);
    assert_eq!(points(&store, t0, "C"), [(5, 30.0)]);
}
