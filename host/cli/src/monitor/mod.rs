//! What the host says about itself: `GET /metrics` (Prometheus text or OpenMetrics:
//! self-metrics and the latest value of every collected series) and
//! `GET /api/plugins` (every plugin instance with its health).
//!
//! - `names`: every self-metric's name, type and help, in one place.
//! - `exposition`: the two exposition formats.
//! - `render`: [`Monitor`] -> exposition.
//! - `routes`: the HTTP handlers, `/api/plugins` JSON.

pub mod exposition;
pub mod names;
mod render;
mod routes;

use std::sync::Arc;

use wasmeter_pipeline::{PipelineStats, PluginRef, SeriesStore};
use wasmeter_source::SourceStats;

pub use routes::router;

/// One pipeline as the monitor sees it.
#[derive(Debug, Clone)]
pub struct PipelineView {
    /// The pipeline's name.
    pub name: String,
    /// Its counters.
    pub stats: Arc<PipelineStats>,
    /// Its plugin instances.
    pub plugins: Vec<PluginRef>,
}

/// Handles on every counter of the host; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Monitor {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    sources: Vec<(String, Arc<SourceStats>)>,
    pipelines: Vec<PipelineView>,
    series: SeriesStore,
}

/// Collects the handles while the host is assembled.
#[derive(Debug, Default)]
pub struct MonitorBuilder {
    inner: Inner,
}

impl MonitorBuilder {
    /// A builder whose series store is `series` (shared with the pipelines).
    pub fn new(series: SeriesStore) -> Self {
        Self {
            inner: Inner {
                series,
                ..Inner::default()
            },
        }
    }

    /// Adds a file source's counters.
    pub fn source(&mut self, name: &str, stats: Arc<SourceStats>) {
        self.inner.sources.push((name.to_string(), stats));
    }

    /// Adds a pipeline.
    pub fn pipeline(&mut self, view: PipelineView) {
        self.inner.pipelines.push(view);
    }

    /// The monitor.
    pub fn build(self) -> Monitor {
        Monitor {
            inner: Arc::new(self.inner),
        }
    }
}

impl Monitor {
    /// The file sources' counters, by source name.
    pub fn sources(&self) -> &[(String, Arc<SourceStats>)] {
        &self.inner.sources
    }

    /// The pipelines.
    pub fn pipelines(&self) -> &[PipelineView] {
        &self.inner.pipelines
    }

    /// The latest value of every series.
    pub fn series(&self) -> &SeriesStore {
        &self.inner.series
    }
}
