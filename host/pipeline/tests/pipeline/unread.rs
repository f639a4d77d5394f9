//! Sample-series topics nobody subscribes to are published once per tick, with
//! their newest value, and before every checkpoint; read ones at once; those
//! nobody watches for are not created until someone does.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wasmeter_core::field::FieldValue;
use wasmeter_pipeline::PipelinePlugins;

use crate::support::fakes::FakeCollector;
use crate::support::{Feed, Recorder, Running, chunk_text, get, wait_until};

const TOPICS: usize = 3;
const UNREAD: &str = "metrics/records/t0";
const READ: &str = "metrics/records/t1";
const TICK: Duration = Duration::from_secs(3600);

/// A pipeline with its file announced, no tick and no checkpoint (which
/// publishes what is held) before a test lets the clock run to the tick.
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
    settle().await;
    let feed = Feed::new(Path::new("/data/feed.csv"));
    p.send(feed.opened()).await;
    (p, feed)
}

/// [`start`], its series topics created by a first chunk (value 0), after
/// which the broker says nobody reads `UNREAD`.
async fn start_created() -> (Running, Feed) {
    let (p, mut feed) = start().await;
    p.send(feed.chunk(&chunk_text(0, TOPICS))).await;
    wait_until("the first chunk is processed", || get(&p.stats.chunks) >= 1).await;
    assert_eq!(p.published.changes_of(UNREAD).len(), 1, "created");
    p.published.flushes(|f| f.unread = vec![UNREAD.into()]);
    (p, feed)
}

/// Lets the pipeline take the first ticks of its intervals, which come at once:
/// on the paused clock of this single-threaded runtime, a sleep returns only
/// when every other task waits. Taken later, between chunks, they would publish
/// what is held before the test expects it.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

fn value(state: &wasmeter_core::field::TopicState) -> Option<f64> {
    match state.get("value") {
        Some(FieldValue::Number(v)) => Some(*v),
        _ => None,
    }
}

fn values(published: &Recorder, topic: &str) -> Vec<Option<f64>> {
    published
        .changes_of(topic)
        .iter()
        .map(|c| value(&c.state))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn unread_series_are_published_once_a_tick_and_before_the_checkpoint() {
    let (p, mut feed) = start_created().await;

    // Ten chunks within one tick: the read series gets every value at once; the
    // unread one none yet.
    for c in 1..11 {
        p.send_alone(feed.chunk(&chunk_text(c, TOPICS))).await;
    }
    wait_until("the chunks are processed", || get(&p.stats.chunks) >= 11).await;
    assert_eq!(
        values(&p.published, READ),
        (0..11).map(|v| Some(v as f64)).collect::<Vec<_>>()
    );
    assert_eq!(values(&p.published, UNREAD), [Some(0.0)]);
    assert_eq!(get(&p.stats.series_changes_held), 10);

    // The next tick publishes the unread series once, with its newest value.
    tokio::time::sleep(TICK).await;
    wait_until("the tick publishes the held value", || {
        p.published.changes_of(UNREAD).len() > 1
    })
    .await;
    assert_eq!(
        values(&p.published, UNREAD),
        [Some(0.0), Some(10.0)],
        "one change for ten samples"
    );

    // Held values are published before the final checkpoint saves the topics.
    for c in 11..14 {
        p.send_alone(feed.chunk(&chunk_text(c, TOPICS))).await;
    }
    let done = p.finish().await;
    let unread = done.published.changes_of(UNREAD);
    assert_eq!(unread.len(), 3);
    assert_eq!(value(&unread[2].state), Some(13.0));
    assert_eq!(get(&done.stats.series_changes_held), 13);
}

#[tokio::test(start_paused = true)]
async fn a_series_read_again_gets_its_held_value_merged_into_the_next_change() {
    let (p, mut feed) = start_created().await;
    p.send(feed.chunk(&chunk_text(1, TOPICS))).await;
    wait_until("the chunk is processed", || get(&p.stats.chunks) >= 2).await;
    assert_eq!(values(&p.published, UNREAD), [Some(0.0)]);

    // Someone subscribes: the next sample is published at once, and nothing
    // held is published after it (it would go back in time).
    p.published.flushes(|f| f.unread.clear());
    p.send(feed.chunk(&chunk_text(2, TOPICS))).await;
    let done = p.finish().await;
    let values = values(&done.published, UNREAD);
    assert_eq!(values, [Some(0.0), Some(2.0)]);
}

#[tokio::test(start_paused = true)]
async fn a_series_nobody_watches_for_is_created_once_someone_does() {
    let (p, mut feed) = start().await;
    p.published.flushes(|f| f.unread = vec![UNREAD.into()]);
    for c in 0..5 {
        p.send_alone(feed.chunk(&chunk_text(c, TOPICS))).await;
    }
    wait_until("the chunks are processed", || get(&p.stats.chunks) >= 5).await;
    tokio::time::sleep(TICK).await;
    assert_eq!(get(&p.stats.series_dormant), 1, "counted at the tick");
    assert_eq!(values(&p.published, READ).len(), 5);
    assert!(values(&p.published, UNREAD).is_empty(), "not created");
    assert_eq!(p.published.flushes(|f| f.dormant.clone()), [UNREAD]);

    // The broker says the topic is read, but its watch generation did not
    // move: nobody started watching, so the pipeline does not ask again.
    p.published.flushes(|f| f.unread.clear());
    tokio::time::sleep(TICK).await;
    assert!(values(&p.published, UNREAD).is_empty());

    // Someone watches: the next tick creates it with its newest value.
    p.published.flushes(|f| f.watch_generation += 1);
    tokio::time::sleep(TICK).await;
    wait_until("the tick creates the topic", || {
        !p.published.changes_of(UNREAD).is_empty()
    })
    .await;
    assert_eq!(values(&p.published, UNREAD), [Some(4.0)]);
    assert_eq!(get(&p.stats.series_dormant), 0);
    p.send(feed.chunk(&chunk_text(5, TOPICS))).await;
    let done = p.finish().await;
    let after = values(&done.published, UNREAD);
    assert_eq!(after, [Some(4.0), Some(5.0)], "read from then on");
}
