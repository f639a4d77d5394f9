//! A quarantined collector pauses the input; nothing is lost when it comes back.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use wasmeter_pipeline::{PipelinePlugins, Replacement};
use wasmeter_plugin::HealthHandle;

use crate::support::fakes::{FakeCollector, FakeMetric, Ledger};
use crate::support::{
    Feed, Producer, Running, assert_published_in_order, chunk_text, get, wait_until,
};

const CHUNKS: u64 = 100;
const TOPICS: usize = 4;
const QUARANTINE_AFTER: u32 = 3;

#[tokio::test(start_paused = true)]
async fn a_collector_that_starts_failing_pauses_the_input_until_released() {
    let ledger = Arc::new(Ledger::default());
    let collector = FakeCollector::new("c", ledger.clone()).quarantine_after(QUARANTINE_AFTER);
    let (control, health) = (collector.control(), collector.health());
    let metric = FakeMetric::new("m");
    let metric_ticks = metric.control();
    let mut p = Running::start(
        PipelinePlugins {
            collector: Box::new(collector),
            metrics: vec![Box::new(metric)],
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

    wait_until("some chunks are processed", || get(&p.stats.chunks) >= 20).await;
    control.fail_all.store(true, Relaxed);
    wait_until("the input pauses", || get(&p.stats.input_paused) == 1).await;
    assert!(health.quarantined());
    // The chunk call and the first records failed: those records are reported;
    // the rest of the chunk waits.
    assert_eq!(get(&p.stats.record_errors), u64::from(QUARANTINE_AFTER) - 1);
    assert_eq!(get(&p.stats.chunks_failed), 1);

    // Paused: ticks and checkpoints go on, offsets and the producer do not.
    let checkpoints = get(&p.stats.checkpoints);
    wait_until("a checkpoint is written while paused", || {
        get(&p.stats.checkpoints) > checkpoints
    })
    .await;
    let paused_at = p.checkpointed_offset().expect("an offset");
    let (calls, ticks, sent_paused) = (
        control.calls.load(Relaxed),
        metric_ticks.ticks.load(Relaxed),
        sent.load(Relaxed),
    );
    let checkpoints = get(&p.stats.checkpoints);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(get(&p.stats.checkpoints) >= checkpoints + 5);
    assert!(metric_ticks.ticks.load(Relaxed) >= ticks + 5);
    assert_eq!(p.checkpointed_offset(), Some(paused_at));
    assert_eq!(
        control.calls.load(Relaxed),
        calls,
        "no calls while quarantined"
    );
    assert_eq!(sent.load(Relaxed), sent_paused, "the producer is held back");
    assert!(sent_paused < CHUNKS);
    assert_eq!(get(&p.stats.input_paused), 1);

    // Released (and fixed): everything else arrives.
    control.fail_all.store(false, Relaxed);
    health.release();
    let total = producer.done().await.offset();
    let done = p.finish().await;
    assert_eq!(get(&done.stats.input_paused), 0);
    assert_eq!(done.checkpoint.unwrap().files[0].offset, total);
    assert!(paused_at < total);

    // Each record once, except the ones reported when the collector broke.
    assert_eq!(ledger.repeated(), Vec::<String>::new());
    let mut missing = Vec::new();
    for c in 0..CHUNKS {
        for t in 0..TOPICS {
            if ledger.times(&format!("feed/t{t},{c}")) == 0 {
                missing.push((c, t));
            }
        }
    }
    assert_eq!(missing.len(), QUARANTINE_AFTER as usize - 1, "{missing:?}");
    let broken = missing[0].0;
    assert!(missing.iter().all(|(c, _)| *c == broken));
    assert_eq!(
        missing.iter().map(|(_, t)| *t).collect::<Vec<_>>(),
        (0..QUARANTINE_AFTER as usize - 1).collect::<Vec<_>>(),
        "the first records of the chunk it broke on"
    );
    let expected = (0..TOPICS)
        .map(|t| {
            let values = (0..CHUNKS).filter(|c| !missing.contains(&(*c, t)));
            (format!("feed/t{t}"), values.collect())
        })
        .collect();
    assert_published_in_order(&done.published.feed(), &expected);
}

/// A pipeline whose collector is quarantined by the first `poison` record;
/// the collector's health.
async fn start_poisonable(ledger: &Arc<Ledger>) -> (Running, HealthHandle) {
    let broken = FakeCollector::new("c", ledger.clone())
        .poison("poison")
        .quarantine_after(1);
    let health = broken.health();
    let p = Running::start(
        PipelinePlugins {
            collector: Box::new(broken),
            metrics: Vec::new(),
            delta: None,
        },
        |_| {},
    )
    .await;
    (p, health)
}

#[tokio::test(start_paused = true)]
async fn swapping_a_quarantined_collector_resumes_the_held_input() {
    let ledger = Arc::new(Ledger::default());
    let (mut p, health) = start_poisonable(&ledger).await;
    let chunks: Vec<String> = (0..CHUNKS)
        .map(|c| match c {
            30 => format!("{}poison\n{}", chunk_text(c, 2), chunk_text(c + 1000, 2)),
            c => chunk_text(c, TOPICS),
        })
        .collect();
    let producer = Producer::start(
        p.take_input(),
        Feed::new(Path::new("/data/feed.csv")),
        chunks,
    );
    wait_until("the input pauses", || get(&p.stats.input_paused) == 1).await;
    assert!(health.quarantined());
    let fixed = FakeCollector::new("c", ledger.clone());
    let fixed_calls = fixed.control();
    p.swap(Replacement::collector(fixed), true).await.unwrap();
    let total = producer.done().await.offset();
    let done = p.finish().await;

    // The whole chunk it stopped at waited for the new version, poison included
    // (malformed to the new version: reported).
    assert!(fixed_calls.calls.load(Relaxed) > 0);
    assert_eq!(get(&done.stats.input_paused), 0);
    assert_eq!(get(&done.stats.record_errors), 1);
    assert_eq!(ledger.repeated(), Vec::<String>::new());
    for c in 0..CHUNKS {
        let (seq, topics) = if c == 30 { (c, 2) } else { (c, TOPICS) };
        for t in 0..topics {
            assert_eq!(ledger.times(&format!("feed/t{t},{seq}")), 1, "{t},{seq}");
        }
    }
    for t in 0..2 {
        assert_eq!(ledger.times(&format!("feed/t{t},1030")), 1);
    }
    assert_eq!(done.checkpoint.unwrap().files[0].offset, total);
}

#[tokio::test(start_paused = true)]
async fn a_quarantine_among_chunks_taken_together_holds_the_rest_in_order() {
    let ledger = Arc::new(Ledger::default());
    let (mut p, health) = start_poisonable(&ledger).await;
    // Two files, chunks alternating, sent as fast as the pipeline takes them:
    // it finds several queued at a time and takes them together; those of one
    // file merge, those of the other stay chunks of their own. File `a` writes
    // topics `feed/a<t>`, file `b` `feed/b<t>`.
    let mut feeds = [
        Feed::with_inode(Path::new("/data/a.csv"), 1),
        Feed::with_inode(Path::new("/data/b.csv"), 2),
    ];
    let mut events: Vec<_> = feeds.iter().map(Feed::opened).collect();
    let text = |file: &str, c: u64| -> String {
        (0..TOPICS)
            .map(|t| format!("feed/{file}{t},{c}\n"))
            .collect()
    };
    for c in 0..CHUNKS {
        for (feed, file) in feeds.iter_mut().zip(["a", "b"]) {
            let chunk = match (file, c) {
                ("a", 30) => format!("{}poison\n{}", text(file, c), text(file, c + 1000)),
                _ => text(file, c),
            };
            events.push(feed.chunk(&chunk));
        }
    }
    let input = p.take_input();
    let sender = tokio::spawn(async move {
        for event in events {
            input.send(event).await.expect("pipeline running");
        }
    });
    wait_until("the input pauses", || get(&p.stats.input_paused) == 1).await;
    assert!(health.quarantined());
    let fixed = FakeCollector::new("c", ledger.clone());
    let fixed_calls = fixed.control();
    p.swap(Replacement::collector(fixed), true).await.unwrap();
    sender.await.unwrap();
    let done = p.finish().await;

    let flushes = done.published.flushes(|f| f.calls) as u64;
    assert!(
        flushes < 2 * CHUNKS,
        "chunks taken together: {flushes} flushes"
    );
    assert!(fixed_calls.calls.load(Relaxed) > 0);
    assert_eq!(get(&done.stats.record_errors), 1, "the poison, once");
    // Every record once, in file order per topic, every byte committed.
    assert_eq!(ledger.repeated(), Vec::<String>::new());
    let mut expected = std::collections::BTreeMap::<String, Vec<u64>>::new();
    for c in 0..CHUNKS {
        for file in ["a", "b"] {
            let mut values = vec![c];
            if (file, c) == ("a", 30) {
                values.push(c + 1000);
            }
            for t in 0..TOPICS {
                for &v in &values {
                    assert_eq!(ledger.times(&format!("feed/{file}{t},{v}")), 1);
                    expected
                        .entry(format!("feed/{file}{t}"))
                        .or_default()
                        .push(v);
                }
            }
        }
    }
    assert_published_in_order(&done.published.feed(), &expected);
    let checkpoint = done.checkpoint.unwrap();
    let offsets: Vec<u64> = checkpoint.files.iter().map(|f| f.offset).collect();
    assert_eq!(offsets, feeds.map(|f| f.offset()));
}
