//! Loading the configured plugins and building each pipeline's instances.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use wasmeter_core::plugin::PluginKind;
use wasmeter_pipeline::{PipelinePlugins, PluginSpec};
use wasmeter_plugin::{LoadedPlugin, PluginLimits, Runtime, World};

use crate::config::{Config, PipelineSection, flatten_config};

/// A configured plugin: the component, its flattened config, its limits.
type Configured = (LoadedPlugin, Vec<(String, String)>, PluginLimits);

/// Every configured plugin, compiled and described.
pub struct LoadedPlugins {
    plugins: BTreeMap<String, Configured>,
    origin: String,
}

/// Compiles (or loads from the cache) every plugin of the config.
pub async fn load_all(runtime: &Runtime, config: &Config) -> anyhow::Result<LoadedPlugins> {
    let mut plugins = BTreeMap::new();
    for (name, section) in &config.plugins {
        let (bytes, origin) = match (&section.path, &section.builtin) {
            (Some(path), _) => {
                let path = config.resolve(path);
                let bytes = tokio::fs::read(&path).await.with_context(|| {
                    format!(
                        "{}: plugins.{name}.path: cannot read {}",
                        config.origin,
                        path.display()
                    )
                })?;
                (bytes, path.display().to_string())
            }
            (None, Some(builtin)) => {
                let b = crate::defaults::builtin(builtin).expect("validated");
                (b.bytes.to_vec(), format!("builtin:{builtin}"))
            }
            (None, None) => unreachable!("validated"),
        };
        tracing::info!(plugin = %name, %origin, "loading plugin");
        let loaded = runtime
            .load_bytes(bytes, origin, None)
            .await
            .with_context(|| format!("{}: plugins.{name}", config.origin))?;
        let meta = loaded.meta();
        tracing::info!(
            plugin = %name,
            kind = %meta.info.kind,
            version = %meta.info.version,
            cache = ?meta.cache,
            compile_ms = meta.compile_time.as_secs_f64() * 1e3,
            "plugin ready"
        );
        let mut limits = runtime.limits().clone();
        if let Some(ms) = section.call_timeout_ms {
            limits.call_timeout = Duration::from_millis(ms);
        }
        if let Some(bytes) = section.memory_limit_bytes {
            limits.memory_bytes = bytes;
        }
        let plugin_config = flatten_config(&section.config).expect("validated");
        plugins.insert(name.clone(), (loaded, plugin_config, limits));
    }
    Ok(LoadedPlugins {
        plugins,
        origin: config.origin.clone(),
    })
}

impl LoadedPlugins {
    fn spec<W: World>(
        &self,
        pipeline: &str,
        field: &str,
        name: &str,
    ) -> anyhow::Result<PluginSpec<W>> {
        let (loaded, config, limits) = &self.plugins[name];
        let Some(plugin) = W::from_loaded(loaded.clone()) else {
            bail!(
                "{}: pipelines.{pipeline}.{field}: plugin `{name}` is a {} plugin, not a {}",
                self.origin,
                loaded.meta().info.kind,
                W::KIND
            );
        };
        Ok(PluginSpec {
            name: name.to_string(),
            plugin,
            config: config.clone(),
            limits: limits.clone(),
        })
    }

    /// Creates and initialises the plugin instances of one pipeline.
    pub async fn instantiate(
        &self,
        name: &str,
        section: &PipelineSection,
    ) -> anyhow::Result<PipelinePlugins> {
        let start = |e| anyhow::anyhow!("{}: pipelines.{name}: {e}", self.origin);
        let collector = self
            .spec(name, "collector", &section.collector)?
            .instantiate()
            .await
            .map_err(|e| start(format!("collector `{}`: {e}", section.collector)))?;
        let mut metrics = Vec::new();
        for m in &section.metrics {
            let spec = self.spec(name, "metrics", m)?;
            metrics.push(
                spec.instantiate()
                    .await
                    .map_err(|e| start(format!("metric `{m}`: {e}")))?,
            );
        }
        let delta = match &section.delta {
            Some(d) => Some(
                self.spec(name, "delta", d)?
                    .instantiate()
                    .await
                    .map_err(|e| start(format!("delta `{d}`: {e}")))?,
            ),
            None => None,
        };
        Ok(PipelinePlugins {
            collector,
            metrics,
            delta,
        })
    }

    /// The kind of each loaded plugin, by name.
    pub fn kinds(&self) -> impl Iterator<Item = (&str, PluginKind)> {
        self.plugins
            .iter()
            .map(|(n, (l, _, _))| (n.as_str(), l.meta().info.kind))
    }
}
