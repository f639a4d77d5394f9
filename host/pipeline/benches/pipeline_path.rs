//! The pipeline's cost per record, without a source or a server: chunks of CSV
//! trades go through the real CSV collector, the field delta and (in the second
//! case) the VWAP metric, and their changes to a publisher that counts them.
//! Each iteration hands the pipeline one chunk of 100 trades over 8 or 1,000
//! symbols (the last record on its own topic) and the measurement ends when the last
//! record's change of the last chunk was published, so every record's work is
//! inside it: collect, admit, metrics, coalesce, state, delta, publish. The
//! publisher has every topic read, so each sample series' topic is published
//! too, except in the last case, whose subscribers read the trades' topics
//! only (as the load generator's do): there the series' topics stay dormant.
//!
//! Before each case's timing it also counts the heap allocations per trade over
//! a few hundred chunks (every thread of the process, so the runtime's own are
//! in it): a figure that the machine's load does not move, for changes too small
//! for the timings to tell apart.
//!
//! Run with: `scripts/build-plugins.sh && cargo bench -p wasmeter-pipeline --bench pipeline_path`

#![allow(missing_docs)] // criterion_group! generates undocumented functions

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::sync::{Notify, mpsc};
use wasmeter_core::change::TopicChange;
use wasmeter_pipeline::{
    Broker, Pipeline, PipelineConfig, PipelinePlugins, Refused, StateConfig, Topics,
};
use wasmeter_source::SystemReading;

use support::{Plugins, instance, setup};

/// Trades per chunk.
const TRADES: u64 = 100;

/// Chunks sent to count allocations per trade.
const COUNTED_CHUNKS: u64 = 300;

/// The system allocator, counting allocations (reallocations included).
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed to the system allocator as it came.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's guarantees, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's guarantees, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's guarantees, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's guarantees, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Counts the changes of the topic that ends each chunk.
#[derive(Default)]
struct Ends {
    seen: AtomicU64,
    wake: Notify,
    /// Subscribers read the trades' topics only, not the sample series' (as the
    /// load generator's do): series topics then stay dormant (`unread.rs`).
    trades_only: bool,
}

impl Broker for Ends {
    fn publish(&self, change: TopicChange) -> Result<(), Refused> {
        if &*change.topic == "trades/END" {
            self.seen.fetch_add(1, Ordering::Relaxed);
            self.wake.notify_one();
        }
        Ok(())
    }

    fn remove_topic(&self, _: &str) {}

    fn is_read(&self, topic: &str) -> bool {
        !self.trades_only || topic.starts_with("trades/")
    }
}

/// Chunk `n`: 99 trades over `symbols` symbols, then one of `END` (a new price
/// every chunk, so that its change is always published).
fn chunk(n: u64, symbols: u64) -> Bytes {
    let ts = 1_700_000_000_000 + n * TRADES;
    let mut lines: String = (0..TRADES - 1)
        .map(|i| {
            let symbol = (n * TRADES + i) % symbols;
            format!(
                "S{symbol},{}.5,{},{}\n",
                100 + (n + i) % 97,
                1 + i % 3,
                ts + i
            )
        })
        .collect();
    lines.push_str(&format!("END,{n},1,{}\n", ts + TRADES));
    Bytes::from(lines)
}

/// Sends chunks `from..from + count` and waits until the last one's change was
/// published; returns the number of the next chunk.
async fn send_chunks(
    chunks: &mpsc::Sender<SystemReading>,
    ends: &Ends,
    from: u64,
    count: u64,
    symbols: u64,
) -> u64 {
    let to = from + count;
    for n in from..to {
        let reading = SystemReading {
            source: "bench".into(),
            data: chunk(n, symbols),
        };
        chunks.send(reading).await.unwrap();
    }
    while ends.seen.load(Ordering::Relaxed) < to {
        ends.wake.notified().await;
    }
    to
}

/// How the pipeline's topics are diffed.
#[derive(Clone, Copy)]
enum Delta {
    /// `field-delta` (contract 0.2.0): one call per chunk.
    Batch,
    /// An exact delta of contract 0.1.0: one call per topic.
    PerTopic,
    /// No delta plugin.
    Exact,
}

fn bench(c: &mut Criterion) {
    let (
        rt,
        Plugins {
            csv,
            vwap,
            delta,
            v1_delta,
        },
    ) = setup();

    let mut group = c.benchmark_group("pipeline_path");
    group.throughput(Throughput::Elements(TRADES));
    // 8 symbols: each chunk's trades coalesce into 8 topic changes (and their
    // series); 1,000 symbols: nearly every trade is a topic change of its own.
    // Then, for reference: a delta plugin of contract 0.1.0 (one call per topic),
    // and no delta plugin (the host's exact difference). Last, the live
    // feeds' case: subscribers of the trades' topics only, so that the sample
    // series' topics stay dormant (every other case publishes them all).
    let cases = [
        (false, Delta::Batch, 8u64, false),
        (true, Delta::Batch, 8, false),
        (false, Delta::Batch, 1_000, false),
        (true, Delta::Batch, 1_000, false),
        (false, Delta::PerTopic, 1_000, false),
        (false, Delta::Exact, 1_000, false),
        (false, Delta::Batch, 1_000, true),
    ];
    for (with_metric, delta_kind, symbols, trades_only) in cases {
        let plugins_label = match (with_metric, delta_kind) {
            (true, _) => "csv+vwap+field-delta",
            (false, Delta::Batch) => "csv+field-delta",
            (false, Delta::PerTopic) => "csv+v1-delta (0.1.0, a call per topic)",
            (false, Delta::Exact) => "csv, exact delta",
        };
        let unread = if trades_only { ", series unread" } else { "" };
        let label = format!("{plugins_label}, 100 trades over {symbols} symbols{unread}");
        let ends = Arc::new(Ends {
            trades_only,
            ..Ends::default()
        });
        let (chunks, commands, pipeline) = rt.block_on(async {
            let metrics = if with_metric {
                vec![instance(&vwap, "vwap", &[("window_ms", "10000")]).await]
            } else {
                Vec::new()
            };
            let plugins = PipelinePlugins::new(
                instance(&csv, "csv", &[]).await,
                metrics,
                match delta_kind {
                    Delta::Batch => Some(instance(&delta, "delta", &[]).await),
                    Delta::PerTopic => Some(instance(&v1_delta, "delta", &[]).await),
                    Delta::Exact => None,
                },
            );
            let topics = Topics::new(&StateConfig::default(), ends.clone());
            let config = PipelineConfig {
                topics: vec!["trades".into()],
                ..PipelineConfig::new("bench")
            };
            let (pipeline, _) = Pipeline::restore(config, plugins, topics).await.unwrap();
            let (chunks, chunks_rx) = mpsc::channel(64);
            let (commands, commands_rx) = mpsc::channel(1);
            let task = tokio::spawn(pipeline.run(Vec::new(), Some(chunks_rx), commands_rx));
            (chunks, commands, task)
        });
        let mut sent = 0u64;
        // Allocations per trade, over chunks sent after the pipeline has seen
        // every symbol once (the counts of a steady state, not of a start).
        let per_trade = rt.block_on(async {
            sent = send_chunks(&chunks, &ends, sent, symbols.div_ceil(TRADES), symbols).await;
            let before = ALLOCATIONS.load(Ordering::Relaxed);
            sent = send_chunks(&chunks, &ends, sent, COUNTED_CHUNKS, symbols).await;
            let counted = ALLOCATIONS.load(Ordering::Relaxed) - before;
            counted as f64 / (COUNTED_CHUNKS * TRADES) as f64
        });
        println!("{label}: {per_trade:.1} allocations per trade");
        group.bench_function(&label, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let started = std::time::Instant::now();
                    sent = send_chunks(&chunks, &ends, sent, iters, symbols).await;
                    started.elapsed()
                })
            })
        });
        drop((chunks, commands));
        rt.block_on(pipeline).unwrap();
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
