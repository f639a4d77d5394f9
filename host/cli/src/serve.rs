//! `wasmeter serve`: assembles sources, pipelines, hub and server, and shuts them
//! down in order.
//!
//! Shutdown, step by step (SIGINT or SIGTERM):
//! 1. sources and the demo feed are cancelled; file sources stop at a record boundary;
//! 2. each pipeline drains what its sources had sent, then writes a final checkpoint
//!    (offsets + plugin state), so a restart neither loses nor repeats a record;
//! 3. the server sends close frames (1001) to every subscriber and waits for every
//!    connection to end.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wasmeter_core::change::TopicChange;
use wasmeter_hub::{Hub, HubConfig};
use wasmeter_pipeline::{
    Pipeline, PipelineConfig, Publish, SeriesStore, StateConfig, TopicStore, sweep_stale,
};
use wasmeter_plugin::{PluginLimits, Runtime, RuntimeConfig};
use wasmeter_server::{ServerState, router};
use wasmeter_source::{FileSource, FileSourceConfig, StartAt, SystemSource};

use crate::config::{Config, SourceSection};
use crate::demo::DemoFeed;
use crate::monitor::{MonitorBuilder, PipelineView};

/// Chunks in flight between a source and its pipeline (back-pressure beyond).
const SOURCE_QUEUE: usize = 16;

/// Options of `serve` beyond the config file.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Run the demo feed into this directory.
    pub demo: Option<DemoFeed>,
}

/// The hub as the pipelines' publisher.
struct HubPublisher(Arc<Hub>);

impl Publish for HubPublisher {
    fn publish(&self, change: TopicChange) {
        let topic = change.topic.clone();
        if let Err(error) = self.0.publish(change) {
            tracing::warn!(%topic, %error, "change not published");
        }
    }
}

/// Runs the host until SIGINT/SIGTERM (or `stop` is cancelled).
pub async fn serve(
    config: Config,
    options: ServeOptions,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let data_dir = config.resolve(&config.data_dir);
    for dir in [data_dir.join("checkpoints"), data_dir.join("cache")] {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(data_dir.join("cache")),
        limits: PluginLimits {
            call_timeout: Duration::from_millis(config.runtime.call_timeout_ms),
            memory_bytes: config.runtime.memory_limit_bytes,
            quarantine_after: config.runtime.quarantine_after,
            ..PluginLimits::default()
        },
        max_instances: config.runtime.max_instances,
        max_memory_bytes: config.runtime.memory_limit_bytes.max(64 << 20),
        ..RuntimeConfig::default()
    })?;
    let plugins = crate::plugins::load_all(&runtime, &config).await?;

    let hub = Arc::new(Hub::new(HubConfig {
        history_per_topic: config.server.history_per_topic,
        max_topics: config.state.max_topics as usize,
    }));
    let store = {
        let hub = hub.clone();
        TopicStore::new(
            &StateConfig {
                max_topics: config.state.max_topics,
                topic_idle: Duration::from_secs(config.state.topic_idle_secs),
            },
            move |topic| {
                hub.remove_topic(topic);
            },
        )
    };
    let publisher: Arc<dyn Publish> = Arc::new(HubPublisher(hub.clone()));

    let series = SeriesStore::default();
    let mut monitor = MonitorBuilder::new(series.clone());

    let sources_stop = CancellationToken::new();
    let sources = TaskTracker::new();
    let pipelines = TaskTracker::new();
    for (name, section) in &config.pipelines {
        let instances = plugins.instantiate(name, section).await?;
        let pipeline_config = PipelineConfig {
            name: name.clone(),
            tick: Duration::from_millis(section.tick_ms),
            checkpoint: Some(checkpoint_path(&data_dir, name)),
            checkpoint_interval: Duration::from_millis(section.checkpoint_interval_ms),
        };
        let (pipeline, resume) =
            Pipeline::restore(pipeline_config, instances, store.clone(), publisher.clone())
                .await
                .with_context(|| format!("pipelines.{name}: cannot restore the checkpoint"))?;
        let pipeline = pipeline.with_series(series.clone());
        monitor.pipeline(PipelineView {
            name: name.clone(),
            stats: pipeline.stats(),
            plugins: pipeline.plugin_refs(),
        });
        let mut files = Vec::new();
        let mut system = None;
        for source_name in &section.sources {
            match &config.sources[source_name] {
                SourceSection::File(f) => {
                    let source = FileSource::new(
                        FileSourceConfig {
                            name: source_name.clone(),
                            include: f
                                .include
                                .iter()
                                .map(|p| config.resolve_pattern(p))
                                .collect(),
                            exclude: f
                                .exclude
                                .iter()
                                .map(|p| config.resolve_pattern(p))
                                .collect(),
                            reconcile_interval: Duration::from_millis(f.reconcile_interval_ms),
                            max_chunk_bytes: f.max_chunk_bytes,
                            max_line_bytes: f.max_line_bytes,
                            start_at: if f.start_at == "end" {
                                StartAt::End
                            } else {
                                StartAt::Beginning
                            },
                            ..FileSourceConfig::default()
                        },
                        resume.clone(),
                    )
                    .with_context(|| format!("{}: sources.{source_name}", config.origin))?;
                    monitor.source(source_name, source.stats());
                    let (tx, rx) = mpsc::channel(SOURCE_QUEUE);
                    let stop = sources_stop.clone();
                    let source_name = source_name.clone();
                    sources.spawn(async move {
                        if let Err(error) = source.run(tx, stop).await {
                            tracing::error!(source = %source_name, %error, "file source failed");
                        }
                    });
                    files.push(rx);
                }
                SourceSection::System(s) => {
                    let (tx, rx) = mpsc::channel(SOURCE_QUEUE);
                    let source = SystemSource {
                        interval: Duration::from_millis(s.interval_ms),
                        ..SystemSource::default()
                    };
                    sources.spawn(source.run(tx, sources_stop.clone()));
                    system = Some(rx);
                }
            }
        }
        pipelines.spawn(pipeline.run(files, system));
    }
    if config.state.field_ttl_ms > 0 {
        let ttl = Duration::from_millis(config.state.field_ttl_ms);
        let (store, publisher, stop) = (store.clone(), publisher.clone(), sources_stop.clone());
        sources.spawn(async move {
            let mut every = tokio::time::interval(
                (ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(1)),
            );
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = every.tick() => sweep_stale(&store, ttl, publisher.as_ref()),
                }
            }
        });
    }
    if let Some(demo) = options.demo {
        let stop = sources_stop.clone();
        sources.spawn(async move {
            if let Err(error) = demo.run(stop).await {
                tracing::error!(%error, "demo feed stopped");
            }
        });
    }
    sources.close();
    pipelines.close();

    let state = ServerState::new(hub.clone(), config.server.limits.clone())?;
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| {
            format!(
                "{}: server.listen: cannot listen on {}",
                config.origin, config.server.listen
            )
        })?;
    let addr = listener.local_addr()?;
    announce(addr, &data_dir);
    state.set_ready(true);

    let server_stop = CancellationToken::new();
    let server = {
        let (state, server_stop) = (state.clone(), server_stop.clone());
        tokio::spawn(wasmeter_server::serve(
            listener,
            router(state.clone())
                .merge(crate::monitor::router(monitor.build(), state.clone()))
                .merge(crate::web::router()),
            state,
            async move { server_stop.cancelled().await },
        ))
    };

    tokio::select! {
        _ = shutdown_signal() => {}
        _ = stop.cancelled() => {}
    }
    tracing::info!("shutting down: stopping sources");
    state.set_ready(false);
    sources_stop.cancel();
    sources.wait().await;
    tracing::info!("draining pipelines");
    pipelines.wait().await;
    tracing::info!("closing connections");
    server_stop.cancel();
    server.await.context("server task")??;
    tracing::info!("stopped");
    Ok(())
}

fn checkpoint_path(data_dir: &std::path::Path, pipeline: &str) -> PathBuf {
    data_dir
        .join("checkpoints")
        .join(format!("{pipeline}.json"))
}

/// Prints where to look. The first line is stable for scripts and tests.
fn announce(addr: std::net::SocketAddr, data_dir: &std::path::Path) {
    println!("wasmeter: listening on http://{addr}");
    println!("  dashboard  http://{addr}/");
    println!("  topics     http://{addr}/api/topics");
    println!(
        "  websocket  ws://{addr}/ws?format=json   (send {{\"type\":\"subscribe\",\"topics\":[\"trades/*\"]}})"
    );
    println!("  sse        http://{addr}/sse?topics=trades/*,metrics/trade_vwap/*");
    println!("  health     http://{addr}/healthz  http://{addr}/readyz");
    println!("  metrics    http://{addr}/metrics  http://{addr}/api/plugins");
    println!("  data dir   {}", data_dir.display());
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
