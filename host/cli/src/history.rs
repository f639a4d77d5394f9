//! The metric history in the host: `[history]` of the config, the store opened
//! at start (with what recovery dropped in the log), the writer the pipelines
//! hand their samples to, and its query routes.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde::Deserialize;
use wasmeter_core::sample_batch::SampleBatch;
use wasmeter_history::{HistorySender, HistoryStats, HistoryWriter};
use wasmeter_pipeline::SampleSink;
use wasmeter_tsdb::{Options, Store};

/// Batches the writer may be behind before pipelines wait.
const QUEUE_BATCHES: usize = 64;

/// `[history]`: where every sample series is kept, and for how long.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HistorySection {
    /// Keep the history at all.
    pub enabled: bool,
    /// Its directory, relative to `data_dir`.
    pub dir: String,
    /// Raw samples are kept this long.
    pub raw_retention_hours: u64,
    /// 1-second buckets (min, max, sum, count, last) are kept this long.
    pub second_retention_days: u64,
    /// 1-minute buckets.
    pub minute_retention_days: u64,
    /// 1-hour buckets.
    pub hour_retention_days: u64,
    /// Total disk the history may use; the oldest data goes first beyond it.
    pub max_disk_mb: u64,
    /// Most series kept; new ones beyond it are refused (and counted).
    pub max_series: usize,
}

impl Default for HistorySection {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: "history".into(),
            raw_retention_hours: 6,
            second_retention_days: 14,
            minute_retention_days: 90,
            hour_retention_days: 730,
            max_disk_mb: 1024,
            max_series: 100_000,
        }
    }
}

impl HistorySection {
    /// The store's options.
    pub fn options(&self) -> Options {
        const HOUR: i64 = 3_600_000;
        let mut o = Options::default();
        o.raw.retention_ms = self.raw_retention_hours as i64 * HOUR;
        o.second.retention_ms = self.second_retention_days as i64 * 24 * HOUR;
        o.minute.retention_ms = self.minute_retention_days as i64 * 24 * HOUR;
        o.hour.retention_ms = self.hour_retention_days as i64 * 24 * HOUR;
        o.max_disk_bytes = self.max_disk_mb << 20;
        o.max_series = self.max_series;
        o
    }

    /// The first problem with the section: the key and what is wrong.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        let zero = [
            ("history.raw_retention_hours", self.raw_retention_hours),
            ("history.second_retention_days", self.second_retention_days),
            ("history.minute_retention_days", self.minute_retention_days),
            ("history.hour_retention_days", self.hour_retention_days),
            ("history.max_disk_mb", self.max_disk_mb),
            ("history.max_series", self.max_series as u64),
        ];
        if let Some((key, _)) = zero.iter().find(|(_, v)| *v == 0) {
            return Some((key, "must be > 0".into()));
        }
        if self.dir.is_empty() {
            return Some(("history.dir", "must not be empty".into()));
        }
        self.options()
            .validate()
            .err()
            .map(|e| ("history", e.to_string()))
    }
}

/// What `/metrics` reports of the history: the writer's counters and the store.
#[derive(Clone)]
pub struct HistoryView {
    /// The writer's counters.
    pub stats: Arc<HistoryStats>,
    /// The store (its size and series count).
    pub store: Arc<Store>,
}

/// The running history: the writer and the store it writes.
pub struct History {
    writer: HistoryWriter,
}

impl History {
    /// Opens (or creates) the store under `data_dir` and starts its writer. What
    /// recovery dropped from a damaged or torn store is logged as warnings.
    pub async fn open(section: &HistorySection, data_dir: &Path) -> anyhow::Result<Self> {
        let dir = data_dir.join(&section.dir);
        let options = section.options();
        let opened = {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || Store::open(&dir, options))
                .await
                .context("metric history: open task failed")?
        };
        let (store, recovery) = opened
            .with_context(|| format!("cannot open the metric history in {}", dir.display()))?;
        for dropped in &recovery.dropped {
            tracing::warn!("metric history: dropped at recovery: {dropped}");
        }
        let writer = HistoryWriter::start(Arc::new(store), QUEUE_BATCHES)
            .context("cannot start the metric history's writer")?;
        tracing::info!(dir = %dir.display(), series = writer.store().stats().series, "metric history open");
        Ok(Self { writer })
    }

    /// The sink the pipelines hand their samples to.
    pub fn sink(&self) -> Arc<dyn SampleSink> {
        Arc::new(Sink(self.writer.sender()))
    }

    /// The writer's handle, for a sink that also feeds the outputs.
    pub fn sender(&self) -> HistorySender {
        self.writer.sender()
    }

    /// What `/metrics` reports of it.
    pub fn view(&self) -> HistoryView {
        HistoryView {
            stats: self.writer.stats(),
            store: self.writer.store().clone(),
        }
    }

    /// The Prometheus query API over the store.
    pub fn router(&self) -> axum::Router {
        wasmeter_history::api::router(self.writer.store().clone())
    }

    /// Writes what is queued and stops: after the pipelines stopped.
    pub async fn close(self, bound: Duration) {
        if !self.writer.close(bound).await {
            tracing::error!("metric history: the writer did not finish in time");
        }
    }
}

struct Sink(HistorySender);

impl SampleSink for Sink {
    fn record(&self, samples: SampleBatch) -> BoxFuture<'_, ()> {
        self.0.send(samples).boxed()
    }
}
