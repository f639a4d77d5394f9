//! A file chunk whose output would exceed the collector's limits in one call is
//! split into calls that fit: nothing refused, nothing collected twice.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use wasmeter_pipeline::PipelinePlugins;

use crate::support::fakes::{FakeCollector, Ledger};
use crate::support::{Feed, Running, get};

const TOPICS: u64 = 4;
const RECORDS_PER_CHUNK: u64 = 2_000;
const CHUNKS: u64 = 3;
/// Samples one call may return (one per record).
const CAP: usize = 100;

/// Record `i` of the feed: topic `feed/t<i % 4>`, seq `i / 4`.
fn record(i: u64) -> String {
    format!("feed/t{},{}", i % TOPICS, i / TOPICS)
}

#[tokio::test(start_paused = true)]
async fn a_chunk_larger_than_the_output_cap_is_collected_in_calls_that_fit() {
    let ledger = Arc::new(Ledger::default());
    let collector = FakeCollector::new("c", ledger.clone())
        .output_cap(CAP)
        .stateful(8);
    let control = collector.control();
    let p = Running::start(
        PipelinePlugins {
            collector: Box::new(collector),
            metrics: Vec::new(),
            delta: None,
        },
        |_| {},
    )
    .await;
    let mut feed = Feed::new(Path::new("/data/feed.csv"));
    p.send(feed.opened()).await;
    for c in 0..CHUNKS {
        let text: String = (c * RECORDS_PER_CHUNK..(c + 1) * RECORDS_PER_CHUNK)
            .map(|i| record(i) + "\n")
            .collect();
        p.send(feed.chunk(&text)).await;
    }
    let total = feed.offset();
    let done = p.finish().await;

    // No call was refused, none got more records than its output allows, and so
    // none was retried: every record was collected exactly once.
    assert_eq!(control.refused.load(Relaxed), 0, "a call was refused");
    let most = control.most_records.load(Relaxed);
    assert!(most <= CAP as u64, "a call got {most} records");
    assert!(ledger.repeated().is_empty(), "{:?}", ledger.repeated());
    for i in 0..CHUNKS * RECORDS_PER_CHUNK {
        assert_eq!(ledger.times(&record(i)), 1, "{} collected once", record(i));
    }
    assert_eq!(get(&done.stats.record_errors), 0);
    // Each topic's updates came out in order, ending at its last record.
    for (topic, seqs) in done.published.feed() {
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{topic}: {seqs:?}");
        assert_eq!(
            seqs.last().copied(),
            Some(CHUNKS * RECORDS_PER_CHUNK / TOPICS - 1)
        );
    }
    let checkpoint = done.checkpoint.expect("a final checkpoint");
    assert_eq!(checkpoint.files[0].offset, total);
}
