//! Loading plugins (config sections, files, uploads) and building instances: a
//! pipeline's full set at start, or one replacement for a swap.

use std::collections::BTreeMap;

use anyhow::Context;
use wasmeter_core::field::TopicState;
use wasmeter_core::plugin::PluginKind;
use wasmeter_core::sample::Sample;
use wasmeter_pipeline::{PipelinePlugins, Replacement};
use wasmeter_plugin::{CallError, LoadError, LoadedPlugin, PluginLimits, Runtime, World};

use crate::config::{Config, PipelineSection, PluginSection, flatten_config};
use crate::registry::{Origin, PluginEntry, Version};

/// Compiles (or takes from the cache) `bytes`, checking the kind if one is expected.
pub async fn load_version(
    runtime: &Runtime,
    name: &str,
    bytes: Vec<u8>,
    origin: Origin,
    expected: Option<PluginKind>,
) -> Result<Version, LoadError> {
    tracing::info!(plugin = %name, %origin, "loading plugin");
    let loaded = runtime
        .load_bytes(bytes, origin.to_string(), expected)
        .await?;
    let meta = loaded.meta();
    tracing::info!(
        plugin = %name,
        kind = %meta.info.kind,
        version = %meta.info.version,
        cache = ?meta.cache,
        compile_ms = meta.compile_time.as_secs_f64() * 1e3,
        "plugin ready"
    );
    Ok(Version::new(loaded, origin))
}

/// Loads the plugin of a `[plugins.NAME]` section into a registry entry.
pub async fn load_section(
    runtime: &Runtime,
    config: &Config,
    name: &str,
    section: &PluginSection,
) -> anyhow::Result<PluginEntry> {
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
            (bytes, Origin::Path(path))
        }
        (None, Some(builtin)) => {
            let b = crate::defaults::builtin(builtin).expect("validated");
            (b.bytes.to_vec(), Origin::Builtin(builtin.clone()))
        }
        (None, None) => unreachable!("validated"),
    };
    let version = load_version(runtime, name, bytes, origin, None)
        .await
        .with_context(|| format!("{}: plugins.{name}", config.origin))?;
    Ok(PluginEntry::new(
        name,
        version,
        flatten_config(&section.config).expect("validated"),
        section_limits(runtime, section),
    ))
}

/// The runtime's limits with the section's overrides.
pub fn section_limits(runtime: &Runtime, section: &PluginSection) -> PluginLimits {
    section.limits(runtime.limits().clone())
}

/// Compiles every plugin of the config.
pub async fn load_all(
    runtime: &Runtime,
    config: &Config,
) -> anyhow::Result<BTreeMap<String, PluginEntry>> {
    let mut plugins = BTreeMap::new();
    for (name, section) in &config.plugins {
        plugins.insert(
            name.clone(),
            load_section(runtime, config, name, section).await?,
        );
    }
    Ok(plugins)
}

/// Creates and initialises one instance of `entry` as a plugin of world `W`.
async fn instance<W: World>(entry: &PluginEntry) -> Result<wasmeter_plugin::Instance<W>, String> {
    entry
        .spec::<W>()?
        .instantiate()
        .await
        .map_err(|e| format!("{} `{}`: {e}", W::KIND, entry.name))
}

/// Creates and initialises the plugin instances of one pipeline.
pub async fn instantiate_pipeline(
    plugins: &BTreeMap<String, PluginEntry>,
    origin: &str,
    name: &str,
    section: &PipelineSection,
) -> anyhow::Result<PipelinePlugins> {
    let at = |field: &'static str| {
        move |e: String| anyhow::anyhow!("{origin}: pipelines.{name}.{field}: {e}")
    };
    let collector = instance(&plugins[&section.collector])
        .await
        .map_err(at("collector"))?;
    let mut metrics = Vec::new();
    for m in &section.metrics {
        metrics.push(instance(&plugins[m]).await.map_err(at("metrics"))?);
    }
    let delta = match &section.delta {
        Some(d) => Some(instance(&plugins[d]).await.map_err(at("delta"))?),
        None => None,
    };
    Ok(PipelinePlugins {
        collector,
        metrics,
        delta,
    })
}

/// Builds an instance of `entry`'s current version for a swap: instantiated,
/// initialised with its config, and smoke-tested with one call on empty input, all
/// before any pipeline is touched.
pub async fn prepare(entry: &PluginEntry) -> Result<Replacement, String> {
    let smoke = |e: CallError| format!("smoke test: {e}");
    Ok(match &entry.current.loaded {
        LoadedPlugin::Collector(_) => {
            let mut i = instance(entry).await?;
            i.collect("wasmeter:smoke-test", b"").await.map_err(smoke)?;
            Replacement::Collector(i)
        }
        LoadedPlugin::Metric(_) => {
            let mut i = instance(entry).await?;
            i.on_samples(&Vec::<Sample>::new()).await.map_err(smoke)?;
            Replacement::Metric(i)
        }
        LoadedPlugin::Delta(_) => {
            let mut i = instance(entry).await?;
            let empty = TopicState::default();
            i.diff("wasmeter:smoke-test", &empty, &empty)
                .await
                .map_err(smoke)?;
            Replacement::Delta(i)
        }
    })
}
