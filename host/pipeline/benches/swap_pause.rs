//! The pipeline's pause during a hot swap: how long its task stops processing to
//! move a plugin's state from the old instance to the new one and put the new one
//! in place. Compiling, instantiating, `init` and the smoke test happen before,
//! off the task, and are not part of the pause.
//!
//! A pipeline (CSV collector -> VWAP metric -> field delta) processes a steady
//! stream of trade chunks while each plugin is swapped over and over; each
//! iteration is one swap, timed by the pipeline itself. Printed at the end: the
//! longest pause per plugin and the state each swap carried.
//!
//! Run with: `scripts/build-plugins.sh && cargo bench -p wasmeter-pipeline --bench swap_pause`

#![allow(missing_docs)] // criterion_group! generates undocumented functions

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use wasmeter_core::change::TopicChange;
use wasmeter_pipeline::{
    Broker, Command, Pipeline, PipelineConfig, PipelinePlugins, Refused, Replacement, StateConfig,
    Swapped, Topics,
};
use wasmeter_source::SystemReading;

use support::{Plugins, instance, setup};

struct Discard;

impl Broker for Discard {
    fn publish(&self, _: TopicChange) -> Result<(), Refused> {
        Ok(())
    }

    fn remove_topic(&self, _: &str) {}
}

/// 100 CSV trades over 8 symbols, stamped from `ts` on, 1 ms apart.
fn chunk(ts: i64) -> Bytes {
    let lines: String = (0..100)
        .map(|i| format!("S{},{}.5,{},{}\n", i % 8, 100 + i % 7, 1 + i % 3, ts + i))
        .collect();
    Bytes::from(lines)
}

fn bench(c: &mut Criterion) {
    let (
        rt,
        Plugins {
            csv, vwap, delta, ..
        },
    ) = setup();
    // A 10 s VWAP window over ~100k trades/s offered. VWAP keeps per-time-bucket
    // sums (60 buckets per series), so its state stays a few KB however busy.
    let vwap_config = [("window_ms", "10000")];

    let (commands, stop, feeder, pipeline) = rt.block_on(async {
        let plugins = PipelinePlugins::new(
            instance(&csv, "csv", &[]).await,
            vec![instance(&vwap, "vwap", &vwap_config).await],
            Some(instance(&delta, "delta", &[]).await),
        );
        let topics = Topics::new(&StateConfig::default(), Arc::new(Discard));
        let config = PipelineConfig {
            topics: vec!["trades".into()],
            ..PipelineConfig::new("bench")
        };
        let (pipeline, _) = Pipeline::restore(config, plugins, topics).await.unwrap();
        let (chunks, chunks_rx) = mpsc::channel(4);
        let (commands, commands_rx) = mpsc::channel(4);
        let pipeline = tokio::spawn(pipeline.run(Vec::new(), Some(chunks_rx), commands_rx));
        let stop = CancellationToken::new();
        let feeder = {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut ts = 1_700_000_000_000i64;
                while !stop.is_cancelled() {
                    let reading = SystemReading {
                        source: "bench".into(),
                        data: chunk(ts),
                    };
                    ts += 100;
                    if chunks.send(reading).await.is_err() {
                        return;
                    }
                }
            })
        };
        // Let the window fill.
        tokio::time::sleep(Duration::from_secs(2)).await;
        (commands, stop, feeder, pipeline)
    });

    let mut longest: Vec<(&str, Duration, String)> = Vec::new();
    let mut group = c.benchmark_group("swap_pause");
    for label in ["collector csv", "metric vwap", "delta field-delta"] {
        let new = || async {
            match label {
                "collector csv" => Replacement::collector(instance(&csv, "csv", &[]).await),
                "metric vwap" => Replacement::metric(instance(&vwap, "vwap", &vwap_config).await),
                _ => Replacement::delta(instance(&delta, "delta", &[]).await),
            }
        };
        let mut max = Duration::ZERO;
        let mut state = String::new();
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let replacement = new().await;
                        let (reply, rx) = oneshot::channel();
                        let swap = Command::Swap {
                            replacement: Box::new(replacement),
                            carry_state: true,
                            reply,
                        };
                        commands.send(swap).await.unwrap();
                        let swapped: Swapped = rx.await.unwrap().expect("swap");
                        total += swapped.pause;
                        max = max.max(swapped.pause);
                        state = format!("{:?}", swapped.state);
                    }
                    total
                })
            })
        });
        longest.push((label, max, state));
    }
    group.finish();

    stop.cancel();
    rt.block_on(async {
        feeder.await.unwrap();
        drop(commands);
        pipeline.await.unwrap();
    });
    for (label, max, state) in longest {
        println!(
            "longest pause, {label}: {:.1} us (state: {state})",
            max.as_secs_f64() * 1e6
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
