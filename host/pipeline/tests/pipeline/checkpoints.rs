//! How often checkpoints are written, and what a failing export does to them.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::time::Instant;
use wasmeter_pipeline::PipelinePlugins;

use crate::support::fakes::{FakeCollector, FakeMetric, Ledger};
use crate::support::{Feed, Running, chunk_text, get, wait_until};

const INTERVAL: Duration = Duration::from_secs(1);
const BYTES_PER_SEC: u64 = 100 << 10;

/// Checkpoints written in a minute of (simulated) time by a pipeline whose
/// metric exports `state_bytes` and ticks four times per checkpoint interval
/// (so there is always something new to checkpoint); the time elapsed.
async fn checkpoints_in_a_minute(state_bytes: usize) -> (u64, Duration) {
    let p = Running::start(
        PipelinePlugins {
            collector: Box::new(FakeCollector::new("c", Arc::default())),
            metrics: vec![Box::new(FakeMetric::new("m").state_bytes(state_bytes))],
            delta: None,
        },
        |config| {
            config.checkpoint_interval = INTERVAL;
            config.tick = INTERVAL / 4;
            config.checkpoint_bytes_per_sec = BYTES_PER_SEC;
        },
    )
    .await;
    let feed = Feed::new(Path::new("/data/feed.csv"));
    p.send(feed.opened()).await;
    wait_until("a first checkpoint", || get(&p.stats.checkpoints) >= 1).await;
    let (started, before) = (Instant::now(), get(&p.stats.checkpoints));
    tokio::time::sleep(Duration::from_secs(60)).await;
    let written = get(&p.stats.checkpoints) - before;
    let elapsed = started.elapsed();
    let size = p.checkpoint().expect("a checkpoint").1["metric:m"].len();
    assert_eq!(size, state_bytes);
    p.finish().await;
    (written, elapsed)
}

#[tokio::test(start_paused = true)]
async fn a_large_state_is_checkpointed_no_more_often_than_the_byte_rate_allows() {
    let state = 1 << 20;
    let (written, elapsed) = checkpoints_in_a_minute(state).await;
    // Each checkpoint of `state` bytes (at least) waits this long before the next.
    let gap = Duration::from_secs_f64(state as f64 / BYTES_PER_SEC as f64);
    let most = (elapsed.as_secs_f64() / gap.as_secs_f64()).floor() as u64 + 1;
    // ... and then for the next tick of the interval.
    let least = (elapsed.as_secs_f64() / (gap + INTERVAL).as_secs_f64()).floor() as u64;
    assert!(
        (least..=most).contains(&written),
        "{written} checkpoints in {elapsed:?}, expected {least}..={most}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_small_state_is_checkpointed_at_every_interval() {
    let (written, elapsed) = checkpoints_in_a_minute(8).await;
    let intervals = (elapsed.as_secs_f64() / INTERVAL.as_secs_f64()).round() as u64;
    assert!(
        (intervals - 1..=intervals + 1).contains(&written),
        "{written} checkpoints in {elapsed:?}, expected about {intervals}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_export_skips_checkpoints_and_counts_toward_quarantine() {
    let metric = FakeMetric::new("m").quarantine_after(3);
    let (control, health) = (metric.control(), metric.health());
    let p = Running::start(
        PipelinePlugins {
            collector: Box::new(FakeCollector::new("c", Arc::new(Ledger::default()))),
            metrics: vec![Box::new(metric)],
            delta: None,
        },
        |config| config.checkpoint_interval = INTERVAL,
    )
    .await;
    let mut feed = Feed::new(Path::new("/data/feed.csv"));
    p.send(feed.opened()).await;
    p.send(feed.chunk(&chunk_text(0, 3))).await;
    let first = feed.offset();
    wait_until("the first chunk is checkpointed", || {
        p.checkpointed_offset() == Some(first)
    })
    .await;
    let state_before = p.checkpoint().unwrap().1["metric:m"].clone();
    assert_eq!(state_before[..8], 3u64.to_le_bytes());

    control.fail_export.store(true, Relaxed);
    p.send(feed.chunk(&chunk_text(1, 3))).await;
    wait_until("a checkpoint is skipped", || {
        get(&p.stats.checkpoints_skipped) >= 1
    })
    .await;
    // The previous checkpoint stays: its offsets match its states.
    let (offset, states) = p.checkpoint().unwrap();
    assert_eq!(offset, Some(first));
    assert_eq!(states["metric:m"], state_before);
    assert_eq!(get(&p.stats.uncheckpointed_bytes), feed.offset() - first);
    assert!(!health.quarantined());

    // Failed exports count, though its other calls (ticks) succeed in between:
    // the third in a row quarantines it. Then its last checkpointed state goes on
    // and checkpoints resume.
    wait_until("the metric is quarantined", || health.quarantined()).await;
    assert_eq!(get(&p.stats.checkpoints_skipped), 2);
    assert!(health.snapshot().failures >= 3);
    assert!(control.ticks.load(Relaxed) > 0);
    wait_until("checkpoints resume", || {
        p.checkpointed_offset() == Some(feed.offset())
    })
    .await;
    assert_eq!(p.checkpoint().unwrap().1["metric:m"], state_before);
    p.finish().await;
}

/// The first checkpoint is due one interval after the start, like every later
/// one: what is read at once waits for it (an operator's hour-long interval
/// means no checkpoint for an hour, also right after a restart).
#[tokio::test(start_paused = true)]
async fn the_first_checkpoint_waits_one_interval() {
    // The input is queued before the pipeline first looks at its input and its
    // timers; which of them it takes first is random, so several pipelines run.
    for _ in 0..12 {
        let p = Running::start(
            PipelinePlugins {
                collector: Box::new(FakeCollector::new("c", Arc::default())),
                metrics: vec![],
                delta: None,
            },
            |config| config.checkpoint_interval = INTERVAL,
        )
        .await;
        let mut feed = Feed::new(Path::new("/data/feed.csv"));
        p.send(feed.opened()).await;
        p.send(feed.chunk(&chunk_text(0, 3))).await;
        wait_until("the chunk is read", || get(&p.stats.chunks) == 1).await;
        tokio::time::sleep(INTERVAL / 2).await;
        assert_eq!(
            get(&p.stats.checkpoints),
            0,
            "checkpointed before its interval"
        );
        wait_until("the chunk is checkpointed", || {
            p.checkpointed_offset() == Some(feed.offset())
        })
        .await;
        p.finish().await;
    }
}

/// Time from the start to the first checkpoint of a pipeline that is shard
/// `index` of `count` (`None`: not sharded).
async fn first_checkpoint_after(shard: Option<(u32, u32)>) -> Duration {
    let started = Instant::now();
    let p = Running::start(
        PipelinePlugins {
            collector: Box::new(FakeCollector::new("c", Arc::default())),
            metrics: Vec::new(),
            delta: None,
        },
        |config| {
            config.checkpoint_interval = INTERVAL;
            // Wakes the pipeline soon after its writer is done, so that it
            // counts the checkpoint written.
            config.tick = Duration::from_millis(10);
            config.shard = shard.map(|(index, count)| wasmeter_pipeline::Shard {
                group: "p".into(),
                index,
                count,
                key: wasmeter_pipeline::ShardKey::CsvColumn {
                    index: 0,
                    delimiter: b',',
                },
            });
        },
    )
    .await;
    let mut feed = Feed::new(Path::new("/data/feed.csv"));
    p.send(feed.opened()).await;
    p.send(feed.chunk(&chunk_text(0, 3))).await;
    let what = format!("a first checkpoint of {shard:?}");
    wait_until(&what, || get(&p.stats.checkpoints) >= 1).await;
    let elapsed = started.elapsed();
    p.finish().await;
    elapsed
}

/// The shards of a pipeline take their checkpoints in turn over the interval
/// (each pauses its shard while it takes its topics), not all at once.
#[tokio::test(start_paused = true)]
async fn the_shards_of_a_pipeline_checkpoint_in_turn() {
    let slack = Duration::from_millis(50);
    let alone = first_checkpoint_after(None).await;
    assert!(alone >= INTERVAL && alone < INTERVAL + slack, "{alone:?}");
    for index in 0..4 {
        let at = first_checkpoint_after(Some((index, 4))).await;
        let turn = INTERVAL + INTERVAL * index / 4;
        assert!(at >= turn && at < turn + slack, "shard {index}: {at:?}");
    }
}
