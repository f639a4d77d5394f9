//! What the pipeline does when its broker refuses a change, cannot be reached,
//! or no longer takes its changes (another host produces its topics).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wasmeter_pipeline::PipelinePlugins;

use crate::support::fakes::{FakeCollector, Ledger};
use crate::support::{Feed, Running, chunk_text, expected_feed, get, wait_until};

async fn start() -> (Running, Feed) {
    let p = Running::start(
        PipelinePlugins {
            collector: Box::new(FakeCollector::new("c", Arc::new(Ledger::default()))),
            metrics: vec![],
            delta: None,
        },
        |config| config.checkpoint_interval = Duration::from_millis(50),
    )
    .await;
    let feed = Feed::new(Path::new("/data/feed.csv"));
    p.send(feed.opened()).await;
    (p, feed)
}

/// A pipeline whose first chunk is checkpointed; the offset after it.
async fn start_checkpointed() -> (Running, Feed, u64) {
    let (p, mut feed) = start().await;
    p.send(feed.chunk(&chunk_text(0, 2))).await;
    let first = feed.offset();
    wait_until("the first chunk is checkpointed", || {
        p.checkpointed_offset() == Some(first)
    })
    .await;
    (p, feed, first)
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_broker_holds_the_input_and_the_checkpoint_until_it_returns() {
    let (p, mut feed, first) = start_checkpointed().await;

    p.published.flushes(|f| f.unreachable = 5);
    p.send(feed.chunk(&chunk_text(1, 2))).await;
    wait_until("a flush failed", || get(&p.stats.flush_failures) >= 1).await;
    // Sent while the pipeline waits: it stays in the input.
    p.send(feed.chunk(&chunk_text(2, 2))).await;
    wait_until("two flushes failed", || get(&p.stats.flush_failures) >= 2).await;
    assert_eq!(get(&p.stats.broker_waiting), 1);
    // No checkpoint covers records whose changes the broker has not taken, and
    // nothing after them was read.
    assert_eq!(p.checkpointed_offset(), Some(first));
    assert_eq!(p.published.feed()["feed/t0"], vec![0, 1]);

    wait_until("everything is checkpointed once the broker is back", || {
        p.checkpointed_offset() == Some(feed.offset())
    })
    .await;
    assert_eq!(get(&p.stats.flush_failures), 5);
    assert_eq!(get(&p.stats.broker_waiting), 0);
    let done = p.finish().await;
    assert_eq!(done.published.feed(), expected_feed(3, 2));
}

#[tokio::test(start_paused = true)]
async fn a_lost_lease_ends_the_pipeline_without_checkpointing_what_was_not_taken() {
    let (p, mut feed, first) = start_checkpointed().await;

    let copies = p.published.flushes(|f| {
        f.fenced = true;
        f.copies.len()
    });
    p.send(feed.chunk(&chunk_text(1, 2))).await;
    // The pipeline ends by itself, input still open, and writes no final
    // checkpoint: whoever produces the topics now reads again from `first`.
    let done = p.finish().await;
    let checkpoint = done.checkpoint.expect("the first checkpoint stays");
    assert_eq!(checkpoint.files[0].offset, first);
    assert_eq!(done.published.flushes(|f| f.copies.len()), copies);
}

#[tokio::test(start_paused = true)]
async fn the_broker_keeps_a_copy_of_every_checkpoint() {
    let (p, mut feed) = start().await;
    for n in 0..3 {
        p.send(feed.chunk(&chunk_text(n, 2))).await;
    }
    let done = p.finish().await;
    let copies = done.published.flushes(|f| std::mem::take(&mut f.copies));
    assert!(!copies.is_empty());
    assert_eq!(
        get(&done.stats.checkpoints),
        copies.len() as u64,
        "one copy per checkpoint written"
    );
    // The last copy is the final checkpoint file, byte for byte.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy");
    std::fs::write(&path, copies.last().unwrap()).unwrap();
    let copy = wasmeter_source::Checkpoint::load(&path).unwrap().unwrap();
    assert_eq!(copy.files[0].offset, feed.offset());
    assert_eq!(
        copy.files[0].offset,
        done.checkpoint.unwrap().files[0].offset
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_change_is_counted_and_the_others_are_published() {
    let (p, mut feed) = start().await;
    p.send(feed.chunk("feed/t0,0\nfeed/refused,0\nfeed/t1,0\n"))
        .await;
    wait_until("the chunk is checkpointed", || {
        p.checkpointed_offset() == Some(feed.offset())
    })
    .await;
    assert_eq!(get(&p.stats.changes_refused), 1);
    let done = p.finish().await;
    assert_eq!(done.published.feed(), expected_feed(1, 2));
}
