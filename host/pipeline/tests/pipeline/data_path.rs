//! Every record reaches the topic state once, in order, and its offset is committed.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use wasmeter_core::field::FieldValue;
use wasmeter_pipeline::{PipelinePlugins, Replacement, StateCarry};

use crate::support::fakes::{FakeCollector, FakeDelta, FakeMetric, Ledger};
use crate::support::{Feed, Running, assert_published_in_order, chunk_text, expected_feed, get};

const CHUNKS: u64 = 20;
const TOPICS: usize = 3;
const POISONED_CHUNK: u64 = 7;

#[tokio::test(start_paused = true)]
async fn records_are_published_once_in_order_and_a_poison_record_costs_only_itself() {
    let ledger = Arc::new(Ledger::default());
    let collector = FakeCollector::new("c", ledger.clone()).poison("poison");
    let collector_health = collector.health();
    let metric = FakeMetric::new("m");
    let metric_seen = metric.control();
    let p = Running::start(
        PipelinePlugins {
            collector: Box::new(collector),
            metrics: vec![Box::new(metric)],
            delta: None,
        },
        |_| {},
    )
    .await;

    let mut feed = Feed::new(Path::new("/data/feed.csv"));
    p.send(feed.opened()).await;
    let mut poison_at = 0;
    for c in 0..CHUNKS {
        let mut text = chunk_text(c, TOPICS);
        if c == POISONED_CHUNK {
            // Between the chunk's first and second records.
            let after_first = text.find('\n').unwrap() + 1;
            poison_at = feed.offset() + after_first as u64;
            text.insert_str(after_first, "poison\n");
        }
        p.send(feed.chunk(&text)).await;
    }
    let total = feed.offset();
    let done = p.finish().await;

    // Collected once each, published once each, in order per topic.
    for c in 0..CHUNKS {
        for t in 0..TOPICS {
            let record = format!("feed/t{t},{c}");
            assert_eq!(ledger.times(&record), 1, "{record} collected once");
        }
    }
    assert_published_in_order(&done.published.feed(), &expected_feed(CHUNKS, TOPICS));
    assert_eq!(
        metric_seen.seen.load(Relaxed),
        CHUNKS * TOPICS as u64,
        "the metric saw every record's sample once"
    );

    // The poison record alone was skipped, and reported where it is.
    assert_eq!(get(&done.stats.record_errors), 1);
    assert_eq!(get(&done.stats.chunks_failed), 0);
    let errors = done.published.changes_of("_wasmeter/errors/p");
    let last = &errors.last().expect("the poison record is reported").state;
    assert_eq!(
        last.get("at"),
        Some(&FieldValue::Text(format!(
            "/data/feed.csv: byte {poison_at}"
        )))
    );
    match last.get("message") {
        Some(FieldValue::Text(m)) => assert!(m.contains("poisoned by line 1"), "{m}"),
        other => panic!("no error message: {other:?}"),
    }
    assert!(!collector_health.quarantined());

    // The final checkpoint commits every byte fed.
    let checkpoint = done.checkpoint.expect("a final checkpoint");
    assert_eq!(checkpoint.files.len(), 1);
    assert_eq!(checkpoint.files[0].offset, total);
    assert_eq!(get(&done.stats.uncheckpointed_bytes), 0);
}

#[tokio::test(start_paused = true)]
async fn changes_go_through_the_delta_plugin_and_its_failures_fall_back_to_the_exact_difference() {
    const PHASE: u64 = 10;
    let d1 = FakeDelta::new("d").fail_on("feed/t1");
    let (d1_calls, d1_topics) = (d1.calls(), d1.topics());
    let p = Running::start(
        PipelinePlugins {
            collector: Box::new(FakeCollector::new("c", Arc::default())),
            metrics: Vec::new(),
            delta: Some(Box::new(d1)),
        },
        |_| {},
    )
    .await;
    let mut feed = Feed::new(Path::new("/data/feed.csv"));
    p.send(feed.opened()).await;
    let mut next = 0;
    // Each chunk on its own: chunks taken together would share one delta call.
    let mut phase = async |p: &Running| {
        for _ in 0..PHASE {
            p.send_alone(feed.chunk(&chunk_text(next, TOPICS))).await;
            next += 1;
        }
    };

    phase(&p).await;
    let d2 = FakeDelta::new("d");
    let (d2_calls, d2_topics) = (d2.calls(), d2.topics());
    let swapped = p.swap(Replacement::delta(d2), true).await.unwrap();
    assert_eq!(swapped.state, StateCarry::Stateless);
    phase(&p).await;
    assert!(p.remove("d").await.is_ok());
    phase(&p).await;
    let done = p.finish().await;

    assert_published_in_order(&done.published.feed(), &expected_feed(3 * PHASE, TOPICS));
    // One call per chunk, holding every feed topic the chunk wrote; sample
    // series take the exact difference without the plugin.
    assert_eq!(d1_calls.load(Relaxed), PHASE);
    assert_eq!(d2_calls.load(Relaxed), PHASE);
    assert_eq!(d1_topics.load(Relaxed), PHASE * TOPICS as u64);
    assert_eq!(d2_topics.load(Relaxed), PHASE * TOPICS as u64);
    assert_eq!(
        get(&done.stats.delta_fallbacks),
        PHASE,
        "feed/t1 in the first phase"
    );
}
