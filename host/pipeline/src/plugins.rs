//! The plugin instances a pipeline owns, and their state across restarts.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use wasmeter_core::plugin::PluginKind;
use wasmeter_plugin::{
    CallError, CollectorWorld, Compiled, DeltaWorld, HealthHandle, Instance, MetricWorld,
    PluginLimits, World,
};

use crate::calls::{CollectorCalls, DeltaCalls, MetricCalls, PluginCalls};

/// A plugin to run: the compiled component, the host's name for the instance,
/// its configuration and its limits.
#[derive(Clone)]
pub struct PluginSpec<W: World> {
    /// The host's name for the instance (config key), used in logs and checkpoints.
    pub name: String,
    /// The compiled component.
    pub plugin: Compiled<W>,
    /// Its configuration (dotted keys).
    pub config: Vec<(String, String)>,
    /// Its limits.
    pub limits: PluginLimits,
}

impl<W: World> PluginSpec<W> {
    /// Creates and initialises an instance.
    pub async fn instantiate(&self) -> Result<Instance<W>, CallError> {
        self.plugin
            .instantiate_with_limits(&self.name, self.config.clone(), self.limits.clone())
            .await
    }
}

/// The plugins of one pipeline.
pub struct PipelinePlugins {
    /// Turns chunks into samples and topic updates.
    pub collector: Box<dyn CollectorCalls>,
    /// Derive samples, in order; each sees the samples of the ones before it.
    pub metrics: Vec<Box<dyn MetricCalls>>,
    /// Computes deltas; `None` uses the exact field-level difference.
    pub delta: Option<Box<dyn DeltaCalls>>,
}

/// What the host shows about one plugin instance of a pipeline (`/api/plugins`,
/// `/metrics`); its health is read live through the handle.
#[derive(Debug, Clone)]
pub struct PluginRef {
    /// Its role in the pipeline (collector, metric or delta).
    pub role: PluginKind,
    /// The host's name for the instance (config key).
    pub name: String,
    /// The plugin's own name.
    pub plugin: String,
    /// The plugin's version.
    pub version: String,
    /// Its live counters.
    pub health: HealthHandle,
}

fn plugin_ref<P: PluginCalls + ?Sized>(role: PluginKind, instance: &P) -> PluginRef {
    let info = instance.info();
    PluginRef {
        role,
        name: instance.name().to_string(),
        plugin: info.name.clone(),
        version: info.version.clone(),
        health: instance.health_handle(),
    }
}

/// Live handles on a pipeline's plugin instances, replaced after every swap; read
/// by `/metrics`, `/api/plugins` and the admin API.
#[derive(Debug, Clone, Default)]
pub struct PluginRefs(Arc<RwLock<Arc<Vec<PluginRef>>>>);

impl PluginRefs {
    /// The instances now, in pipeline order.
    pub fn get(&self) -> Arc<Vec<PluginRef>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set(&self, refs: Vec<PluginRef>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(refs);
    }
}

/// Key of a plugin's state in a checkpoint.
fn state_key(kind: &str, name: &str) -> String {
    format!("{kind}:{name}")
}

impl PipelinePlugins {
    /// The plugins of a pipeline made of wasm instances.
    pub fn new(
        collector: Instance<CollectorWorld>,
        metrics: Vec<Instance<MetricWorld>>,
        delta: Option<Instance<DeltaWorld>>,
    ) -> Self {
        Self {
            collector: Box::new(collector),
            metrics: metrics
                .into_iter()
                .map(|m| Box::new(m) as Box<dyn MetricCalls>)
                .collect(),
            delta: delta.map(|d| Box::new(d) as Box<dyn DeltaCalls>),
        }
    }

    /// Every instance, in pipeline order, with a live handle on its health.
    pub fn refs(&self) -> Vec<PluginRef> {
        let mut refs = vec![plugin_ref(PluginKind::Collector, self.collector.as_ref())];
        refs.extend(
            self.metrics
                .iter()
                .map(|m| plugin_ref(PluginKind::Metric, m.as_ref())),
        );
        refs.extend(
            self.delta
                .iter()
                .map(|d| plugin_ref(PluginKind::Delta, d.as_ref())),
        );
        refs
    }

    /// Exports the state of every stateful plugin, keyed for a checkpoint.
    ///
    /// A checkpoint must hold states that match its offsets, so a plugin that fails
    /// to export fails the whole export (the failure counts toward its quarantine)
    /// and the caller keeps the previous checkpoint. A quarantined plugin still
    /// exports if it can; if it cannot, it processes nothing more, and its state in
    /// the last checkpoint (`last`) goes on.
    pub async fn export_states(
        &mut self,
        last: &BTreeMap<String, Vec<u8>>,
    ) -> Result<BTreeMap<String, Vec<u8>>, ExportError> {
        let mut states = BTreeMap::new();
        if self.collector.info().stateful {
            export_into(&mut states, last, "collector", self.collector.as_mut()).await?;
        }
        for m in &mut self.metrics {
            if m.info().stateful {
                export_into(&mut states, last, "metric", m.as_mut()).await?;
            }
        }
        Ok(states)
    }

    /// Restores plugin states from a checkpoint.
    pub async fn import_states(&mut self, states: &BTreeMap<String, Vec<u8>>) {
        import_from(states, "collector", self.collector.as_mut()).await;
        for m in &mut self.metrics {
            import_from(states, "metric", m.as_mut()).await;
        }
    }
}

/// A plugin could not export its state for a checkpoint.
#[derive(Debug, thiserror::Error)]
#[error("plugin `{plugin}` could not export its state: {error}")]
pub struct ExportError {
    /// The host's name for the instance.
    pub plugin: String,
    /// Why.
    pub error: CallError,
}

async fn export_into<P: PluginCalls + ?Sized>(
    states: &mut BTreeMap<String, Vec<u8>>,
    last: &BTreeMap<String, Vec<u8>>,
    kind: &str,
    instance: &mut P,
) -> Result<(), ExportError> {
    let key = state_key(kind, instance.name());
    match instance.export_state().await {
        Ok(Some(state)) => {
            states.insert(key, state);
            Ok(())
        }
        Ok(None) => Ok(()),
        // Quarantined and unable to export (it trapped, or its exports fail): it
        // processes nothing more, so its last state goes on; if a quarantined
        // plugin never exported, it restarts empty.
        Err(_) if instance.health_handle().quarantined() => {
            if let Some(state) = last.get(&key) {
                states.insert(key, state.clone());
            }
            Ok(())
        }
        Err(error) => Err(ExportError {
            plugin: instance.name().to_string(),
            error,
        }),
    }
}

async fn import_from<P: PluginCalls + ?Sized>(
    states: &BTreeMap<String, Vec<u8>>,
    kind: &str,
    instance: &mut P,
) {
    if let Some(state) = states.get(&state_key(kind, instance.name()))
        && let Err(error) = instance.import_state(state).await
    {
        tracing::warn!(plugin = instance.name(), %error, "cannot restore plugin state; it starts empty");
    }
}
