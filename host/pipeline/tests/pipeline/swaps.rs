//! Swapping and removing plugins while records flow.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use wasmeter_pipeline::{PipelinePlugins, Replacement, StateCarry};

use crate::support::fakes::{FakeCollector, FakeMetric, Ledger};
use crate::support::{Feed, Producer, Running, chunk_text, expected_feed, get, wait_until};

const CHUNKS: u64 = 200;
const TOPICS: usize = 2;

#[tokio::test(start_paused = true)]
async fn swaps_and_a_removal_under_flow_lose_and_repeat_nothing() {
    let ledger = Arc::new(Ledger::default());
    let c1 = FakeCollector::new("c", ledger.clone()).stateful(16);
    let c1_calls = c1.control();
    let m1 = FakeMetric::new("m");
    let m1_seen = m1.control();
    let other = FakeMetric::new("other");
    let other_seen = other.control();
    let mut p = Running::start(
        PipelinePlugins {
            collector: Box::new(c1),
            metrics: vec![Box::new(m1), Box::new(other)],
            delta: None,
        },
        |_| {},
    )
    .await;
    let producer = Producer::start(
        p.take_input(),
        Feed::new(Path::new("/data/feed.csv")),
        (0..CHUNKS).map(|c| chunk_text(c, TOPICS)).collect(),
    );
    let sent = producer.sent.clone();

    // The collector, a quarter of the way through.
    wait_until("a quarter is processed", || {
        get(&p.stats.chunks) >= CHUNKS / 4
    })
    .await;
    let c2 = FakeCollector::new("c", ledger.clone()).stateful(4);
    let c2_calls = c2.control();
    let swapped = p.swap(Replacement::collector(c2), true).await.unwrap();
    assert_eq!(swapped.state, StateCarry::Carried { bytes: 16 });
    assert!(swapped.retired.is_some());
    let c1_calls_at_swap = c1_calls.calls.load(Relaxed);

    // The metric, carrying its state.
    let m2 = FakeMetric::new("m");
    let m2_seen = m2.control();
    let swapped = p.swap(Replacement::metric(m2), true).await.unwrap();
    assert_eq!(swapped.state, StateCarry::Carried { bytes: 8 });
    let m1_final = m1_seen.seen.load(Relaxed);
    assert!(m1_final > 0);
    assert_eq!(
        *m2_seen.imported.lock().unwrap(),
        Some(m1_final),
        "the new version starts from the old one's count"
    );

    // Removing the other metric, halfway.
    wait_until("half is processed", || get(&p.stats.chunks) >= CHUNKS / 2).await;
    p.remove("other").await.unwrap();
    let other_final = other_seen.seen.load(Relaxed);
    assert!(p.refs.get().iter().all(|r| r.name != "other"));
    assert!(p.remove("other").await.is_err(), "removed once");

    // The metric again, three quarters through, fresh.
    wait_until("three quarters are processed", || {
        get(&p.stats.chunks) >= 3 * CHUNKS / 4
    })
    .await;
    let m3 = FakeMetric::new("m");
    let m3_seen = m3.control();
    let swapped = p.swap(Replacement::metric(m3), false).await.unwrap();
    assert_eq!(swapped.state, StateCarry::Fresh);
    assert!(
        sent.load(Relaxed) < CHUNKS,
        "the swaps happened while chunks were still coming"
    );

    let total = producer.done().await.offset();
    let done = p.finish().await;

    // Every record once, whichever collector read it; both read some.
    assert_eq!(ledger.repeated(), Vec::<String>::new());
    for c in 0..CHUNKS {
        for t in 0..TOPICS {
            assert_eq!(ledger.times(&format!("feed/t{t},{c}")), 1);
        }
    }
    assert!(c1_calls_at_swap > 0 && c2_calls.calls.load(Relaxed) > 0);
    assert_eq!(c1_calls.calls.load(Relaxed), c1_calls_at_swap);
    assert_eq!(done.published.feed(), expected_feed(CHUNKS, TOPICS));
    assert_eq!(done.checkpoint.as_ref().unwrap().files[0].offset, total);

    // The metric's versions saw every sample once between them.
    let samples = CHUNKS * TOPICS as u64;
    let (m2_final, m3_final) = (m2_seen.seen.load(Relaxed), m3_seen.seen.load(Relaxed));
    assert_eq!(m1_final + m2_final + m3_final, samples);
    assert!(m3_final > 0 && m3_final < samples);
    assert_eq!(*m3_seen.imported.lock().unwrap(), None);
    let states = &done.checkpoint.unwrap().extra;
    assert_eq!(
        states["collector:c"].len(),
        16,
        "the collector's state carried"
    );
    let state = &states["metric:m"];
    assert_eq!(
        u64::from_le_bytes(state[..8].try_into().unwrap()),
        m3_final,
        "a fresh version counts from zero"
    );
    // The removed metric saw nothing after its removal.
    assert_eq!(other_seen.seen.load(Relaxed), other_final);
    assert!(other_final < samples);
    assert_eq!(get(&done.stats.swaps), 3);
}
