//! Handles on every counter of the running pipelines and their sources, kept
//! current as pipelines start and stop; `/metrics` and `/api/plugins` read them.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use wasmeter_pipeline::{PipelineStats, PluginRef, PluginRefs, SeriesStore};
use wasmeter_source::SourceStats;

/// One pipeline as the monitor sees it.
#[derive(Debug, Clone)]
pub struct PipelineView {
    /// The pipeline's name.
    pub name: String,
    /// Its counters.
    pub stats: Arc<PipelineStats>,
    /// Its plugin instances, kept current across swaps.
    pub plugins: PluginRefs,
}

/// Handles on every counter of the host; cheap to clone. Pipelines and sources
/// come and go with config reloads.
#[derive(Debug, Clone, Default)]
pub struct Monitor {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    sources: RwLock<BTreeMap<String, Arc<SourceStats>>>,
    pipelines: RwLock<BTreeMap<String, PipelineView>>,
    series: SeriesStore,
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().unwrap_or_else(|p| p.into_inner()).clone()
}

impl Monitor {
    /// A monitor whose series store is `series` (shared with the pipelines).
    pub fn new(series: SeriesStore) -> Self {
        Self {
            inner: Arc::new(Inner {
                series,
                ..Inner::default()
            }),
        }
    }

    /// Adds (or replaces) a file source's counters.
    pub fn add_source(&self, name: &str, stats: Arc<SourceStats>) {
        let mut sources = self
            .inner
            .sources
            .write()
            .unwrap_or_else(|p| p.into_inner());
        sources.insert(name.to_string(), stats);
    }

    /// Adds (or replaces) a pipeline.
    pub fn add_pipeline(&self, view: PipelineView) {
        let mut pipelines = self
            .inner
            .pipelines
            .write()
            .unwrap_or_else(|p| p.into_inner());
        pipelines.insert(view.name.clone(), view);
    }

    /// Forgets a pipeline and its sources.
    pub fn remove_pipeline(&self, name: &str, sources: &[String]) {
        let mut pipelines = self
            .inner
            .pipelines
            .write()
            .unwrap_or_else(|p| p.into_inner());
        pipelines.remove(name);
        drop(pipelines);
        for s in sources {
            self.remove_source(s);
        }
    }

    /// Forgets a file source that no pipeline owns alone (one read by a
    /// pipeline's shards together).
    pub fn remove_source(&self, name: &str) {
        let mut all = self
            .inner
            .sources
            .write()
            .unwrap_or_else(|p| p.into_inner());
        all.remove(name);
    }

    /// The file sources' counters, by source name.
    pub fn sources(&self) -> Vec<(String, Arc<SourceStats>)> {
        read(&self.inner.sources).into_iter().collect()
    }

    /// The pipelines.
    pub fn pipelines(&self) -> Vec<PipelineView> {
        read(&self.inner.pipelines).into_values().collect()
    }

    /// Every plugin instance of every pipeline, with its pipeline's name.
    pub fn plugin_instances(&self) -> Vec<(String, PluginRef)> {
        self.pipelines()
            .into_iter()
            .flat_map(|p| {
                let refs = p.plugins.get();
                refs.iter()
                    .map(|r| (p.name.clone(), r.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The latest value of every series.
    pub fn series(&self) -> &SeriesStore {
        &self.inner.series
    }
}
