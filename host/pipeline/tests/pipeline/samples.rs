//! A collector's points (contract 0.3.0) travel as samples of their series:
//! every one reaches the metric plugins, `/metrics`' latest values and the
//! history, in order and with the pipeline's labels; a series over the quota is
//! refused with every one of its points.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, ready};
use wasmeter_core::field::FieldValue;
use wasmeter_core::sample::{Label, Sample};
use wasmeter_core::sample_batch::SampleBatch;
use wasmeter_pipeline::{PipelinePlugins, SampleSink, SeriesStore};

use crate::support::fakes::{FakeCollector, FakeMetric, Ledger};
use crate::support::{Feed, Running, chunk_text, get, wait_until};

const CHUNKS: u64 = 12;
const TOPICS: usize = 3;

/// Keeps every sample it is handed, made whole.
#[derive(Default)]
struct History(Mutex<Vec<Sample>>);

impl SampleSink for History {
    fn record(&self, samples: SampleBatch) -> BoxFuture<'_, ()> {
        self.0.lock().unwrap().extend(samples.to_samples());
        ready(()).boxed()
    }
}

impl History {
    /// The values of the collector's `records` samples per `topic` label, in
    /// the order they came, checking each carries the pipeline's label.
    fn records(&self) -> BTreeMap<String, Vec<f64>> {
        self.records_labelled(Some("h1"))
    }

    /// [`Self::records`], checking each carries `host` label `host`.
    fn records_labelled(&self, host: Option<&str>) -> BTreeMap<String, Vec<f64>> {
        let mut per_topic: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for s in self
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.name == "records")
        {
            assert_eq!(s.label("host"), host, "{s:?}");
            let topic = s.label("topic").expect("a topic label").to_string();
            per_topic.entry(topic).or_default().push(s.value);
        }
        per_topic
    }
}

fn plugins(collector: FakeCollector, metric: FakeMetric) -> PipelinePlugins {
    PipelinePlugins {
        collector: Box::new(collector),
        metrics: vec![Box::new(metric)],
        delta: None,
    }
}

/// Starts a pipeline labelled `host="h1"` that feeds `history` and `series`.
async fn start(plugins: PipelinePlugins, history: &Arc<History>, series: &SeriesStore) -> Running {
    let (history, series) = (history.clone(), series.clone());
    Running::start_with(
        plugins,
        |c| c.labels = vec![Label::new("host", "h1")],
        move |p| p.with_series(series).with_history(history),
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn points_reach_every_reader_once_in_order_with_the_pipeline_s_labels() {
    let collector = FakeCollector::new("c", Arc::new(Ledger::default())).sending_points();
    let metric = FakeMetric::new("m");
    let seen = metric.control();
    let (history, series) = (Arc::new(History::default()), SeriesStore::new(100));
    let p = start(plugins(collector, metric), &history, &series).await;

    let mut feed = Feed::new(Path::new("/data/feed.csv"));
    p.send(feed.opened()).await;
    for c in 0..CHUNKS {
        p.send(feed.chunk(&chunk_text(c, TOPICS))).await;
    }
    let done = p.finish().await;

    let every_chunk: Vec<f64> = (0..CHUNKS).map(|c| c as f64).collect();
    let expected: BTreeMap<String, Vec<f64>> = (0..TOPICS)
        .map(|t| (format!("t{t}"), every_chunk.clone()))
        .collect();
    assert_eq!(history.records(), expected, "each point once, in order");
    let records = CHUNKS * TOPICS as u64;
    assert_eq!(
        seen.seen.load(Relaxed),
        records,
        "the metric saw each point"
    );
    let ticks = seen.ticks.load(Relaxed);
    assert_eq!(get(&done.stats.samples), records + ticks, "and its ticks");
    assert_eq!(get(&done.stats.refused_outputs), 0);

    let latest: Vec<(Vec<(String, String)>, f64)> = series
        .all()
        .into_iter()
        .filter(|(key, _)| key.name() == "records")
        .map(|(key, value)| {
            let labels = key.labels().map(|(n, v)| (n.into(), v.into())).collect();
            (labels, value.value)
        })
        .collect();
    let last = (CHUNKS - 1) as f64;
    let expected: Vec<(Vec<(String, String)>, f64)> = (0..TOPICS)
        .map(|t| {
            let labels = vec![
                ("host".into(), "h1".into()),
                ("topic".into(), format!("t{t}")),
            ];
            (labels, last)
        })
        .collect();
    assert_eq!(latest, expected, "the newest point of each series");
}

#[tokio::test(start_paused = true)]
async fn a_series_over_the_quota_is_refused_with_each_of_its_points() {
    series_over_the_quota(true).await;
}

#[tokio::test(start_paused = true)]
async fn a_series_over_the_quota_is_refused_with_each_of_its_points_without_labels() {
    // The samples of a call whose series keep their keys go to the batch as
    // they are, unless one was refused.
    series_over_the_quota(false).await;
}

async fn series_over_the_quota(with_labels: bool) {
    // Two series allowed; a chunk brings three, each with several points.
    const POINTS: u64 = 5;
    let collector = FakeCollector::new("c", Arc::new(Ledger::default()))
        .sending_points()
        .series_quota(2);
    let health = collector.health();
    let (history, series) = (Arc::new(History::default()), SeriesStore::new(100));
    let p = match with_labels {
        true => start(plugins(collector, FakeMetric::new("m")), &history, &series).await,
        false => {
            let (h, s) = (history.clone(), series.clone());
            Running::start_with(
                plugins(collector, FakeMetric::new("m")),
                |_| {},
                move |p| p.with_series(s).with_history(h),
            )
            .await
        }
    };

    let mut feed = Feed::new(Path::new("/data/feed.csv"));
    p.send(feed.opened()).await;
    let chunk: String = (0..POINTS).map(|c| chunk_text(c, 3)).collect();
    p.send(feed.chunk(&chunk)).await;
    wait_until("the collector is quarantined", || health.quarantined()).await;
    // Released, so that the paused input lets the pipeline end.
    health.release();
    let done = p.finish().await;

    assert_eq!(
        get(&done.stats.refused_outputs),
        POINTS,
        "every point of the third series is refused"
    );
    let every_point: Vec<f64> = (0..POINTS).map(|c| c as f64).collect();
    let admitted: BTreeMap<String, Vec<f64>> = [
        ("t0".to_string(), every_point.clone()),
        ("t1".to_string(), every_point),
    ]
    .into();
    let host = with_labels.then_some("h1");
    assert_eq!(
        history.records_labelled(host),
        admitted,
        "the first two series whole"
    );
}

#[tokio::test(start_paused = true)]
async fn two_series_the_pipeline_s_labels_make_one_publish_the_later_point() {
    // `records{topic="t0"}` (seqs 0 and 2) and `records{host="h1",topic="t0"}`
    // (seq 1) in one call: with the pipeline's `host="h1"` they are one series.
    let collector = FakeCollector::new("c", Arc::new(Ledger::default()))
        .sending_points()
        .labelling_odd_seqs("host", "h1");
    let (history, series) = (Arc::new(History::default()), SeriesStore::new(100));
    let p = start(plugins(collector, FakeMetric::new("m")), &history, &series).await;

    let mut feed = Feed::new(Path::new("/data/feed.csv"));
    p.send(feed.opened()).await;
    p.send(feed.chunk("feed/t0,0\nfeed/t0,1\nfeed/t0,2\n"))
        .await;
    let done = p.finish().await;

    let changes = done.published.changes_of("metrics/records/h1/t0");
    let last = &changes.last().expect("the series topic is published").state;
    assert_eq!(last.get("value"), Some(&FieldValue::Number(2.0)));
    let expected = BTreeMap::from([("t0".to_string(), vec![0.0, 1.0, 2.0])]);
    assert_eq!(history.records(), expected, "every point, in order");
}
