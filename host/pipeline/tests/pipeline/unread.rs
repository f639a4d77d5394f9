//! Sample-series topics nobody subscribes to are published once per tick, with
//! their newest value, and before every checkpoint; read ones at once.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wasmeter_core::field::FieldValue;
use wasmeter_pipeline::PipelinePlugins;

use crate::support::fakes::FakeCollector;
use crate::support::{Feed, Running, chunk_text, get, wait_until};

const TOPICS: usize = 3;
const UNREAD: &str = "metrics/records/t0";
const READ: &str = "metrics/records/t1";
const TICK: Duration = Duration::from_secs(3600);

/// A pipeline whose broker says nobody reads `UNREAD`, its file announced.
/// No tick and no checkpoint (which publishes what is held) comes before a
/// test lets the clock run to the tick.
async fn start() -> (Running, Feed) {
    let p = Running::start(
        PipelinePlugins {
            collector: Box::new(FakeCollector::new("c", Arc::default())),
            metrics: Vec::new(),
            delta: None,
        },
        |c| {
            c.tick = TICK;
            c.checkpoint_interval = 100 * TICK;
        },
    )
    .await;
    p.published.flushes(|f| f.unread = vec![UNREAD.into()]);
    settle().await;
    let feed = Feed::new(Path::new("/data/feed.csv"));
    p.send(feed.opened()).await;
    (p, feed)
}

/// Lets the pipeline take the first ticks of its intervals, which come at once:
/// on the paused clock of this single-threaded runtime, a sleep returns only
/// when every other task waits. Taken later, between chunks, they would publish
/// what is held (a checkpoint does) before the test expects it.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

fn value(state: &wasmeter_core::field::TopicState) -> Option<f64> {
    match state.get("value") {
        Some(FieldValue::Number(v)) => Some(*v),
        _ => None,
    }
}

#[tokio::test(start_paused = true)]
async fn unread_series_are_published_once_a_tick_and_before_the_checkpoint() {
    let (p, mut feed) = start().await;

    // Ten chunks within one tick: the read series gets every value at once; the
    // unread one none yet.
    for c in 0..10 {
        p.send(feed.chunk(&chunk_text(c, TOPICS))).await;
    }
    wait_until("the chunks are processed", || get(&p.stats.chunks) >= 10).await;
    let read: Vec<Option<f64>> = p
        .published
        .changes_of(READ)
        .iter()
        .map(|c| value(&c.state))
        .collect();
    assert_eq!(read, (0..10).map(|v| Some(v as f64)).collect::<Vec<_>>());
    assert!(p.published.changes_of(UNREAD).is_empty());
    assert_eq!(get(&p.stats.series_changes_held), 10);

    // The next tick publishes the unread series once, with its newest value.
    tokio::time::sleep(TICK).await;
    wait_until("the tick publishes the held value", || {
        !p.published.changes_of(UNREAD).is_empty()
    })
    .await;
    let unread = p.published.changes_of(UNREAD);
    assert_eq!(unread.len(), 1, "one change for ten samples");
    assert_eq!(value(&unread[0].state), Some(9.0));

    // Held values are published before the final checkpoint saves the topics.
    for c in 10..13 {
        p.send(feed.chunk(&chunk_text(c, TOPICS))).await;
    }
    let done = p.finish().await;
    let unread = done.published.changes_of(UNREAD);
    assert_eq!(unread.len(), 2);
    assert_eq!(value(&unread[1].state), Some(12.0));
    assert_eq!(get(&done.stats.series_changes_held), 13);
}

#[tokio::test(start_paused = true)]
async fn a_series_read_again_gets_its_held_value_merged_into_the_next_change() {
    let (p, mut feed) = start().await;
    p.send(feed.chunk(&chunk_text(0, TOPICS))).await;
    wait_until("the chunk is processed", || get(&p.stats.chunks) >= 1).await;
    assert!(p.published.changes_of(UNREAD).is_empty());

    // Someone subscribes: the next sample is published at once, and nothing
    // held is published after it (it would go back in time).
    p.published.flushes(|f| f.unread.clear());
    p.send(feed.chunk(&chunk_text(1, TOPICS))).await;
    let done = p.finish().await;
    let values: Vec<Option<f64>> = done
        .published
        .changes_of(UNREAD)
        .iter()
        .map(|c| value(&c.state))
        .collect();
    assert_eq!(values, [Some(1.0)]);
}
