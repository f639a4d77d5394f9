//! Loading plugins (a spec's definitions, files, uploads) and building instances: a
//! pipeline's full set at start, or one replacement for a swap.

use std::collections::BTreeMap;

use anyhow::Context;
use wasmeter_core::field::{FieldValue, TopicState};
use wasmeter_core::plugin::PluginKind;
use wasmeter_core::sample_batch::SampleBatch;
use wasmeter_pipeline::{PipelinePlugins, Replacement};
use wasmeter_plugin::{CallError, DeltaWorld, LoadError, LoadedPlugin, Runtime, World};

use crate::registry::{Origin, PluginEntry, Version};
use crate::spec::{HostSpec, PipelineDef, PluginCode, PluginDef};

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

/// Loads the plugin `name` of a spec into a registry entry; errors name the
/// spec's origin and the plugin.
pub async fn load_def(
    runtime: &Runtime,
    origin: &str,
    name: &str,
    def: &PluginDef,
) -> anyhow::Result<PluginEntry> {
    let (bytes, from) = match &def.code {
        PluginCode::File(path) => {
            let bytes = tokio::fs::read(path).await.with_context(|| {
                format!(
                    "{origin}: plugins.{name}.path: cannot read {}",
                    path.display()
                )
            })?;
            (bytes, Origin::Path(path.clone()))
        }
        PluginCode::Builtin {
            name: builtin,
            bytes,
        } => (bytes.to_vec(), Origin::Builtin(builtin.clone())),
    };
    let version = load_version(runtime, name, bytes, from, None)
        .await
        .with_context(|| format!("{origin}: plugins.{name}"))?;
    Ok(PluginEntry::new(
        name,
        version,
        def.config.clone(),
        def.limits.apply(runtime.limits().clone()),
    ))
}

/// Compiles every plugin of the spec.
pub async fn load_all(
    runtime: &Runtime,
    spec: &HostSpec,
) -> anyhow::Result<BTreeMap<String, PluginEntry>> {
    let mut plugins = BTreeMap::new();
    for (name, def) in &spec.plugins {
        plugins.insert(
            name.clone(),
            load_def(runtime, &spec.origin, name, def).await?,
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
    def: &PipelineDef,
) -> anyhow::Result<PipelinePlugins> {
    let at = |field: &'static str| {
        move |e: String| anyhow::anyhow!("{origin}: pipelines.{name}.{field}: {e}")
    };
    let collector = instance(&plugins[&def.collector])
        .await
        .map_err(at("collector"))?;
    let mut metrics = Vec::new();
    for m in &def.metrics {
        metrics.push(instance(&plugins[m]).await.map_err(at("metrics"))?);
    }
    let delta = match &def.delta {
        Some(d) => Some(instance(&plugins[d]).await.map_err(at("delta"))?),
        None => None,
    };
    Ok(PipelinePlugins::new(collector, metrics, delta))
}

/// Builds an instance of `entry`'s current version for a swap: instantiated,
/// initialised with its config, and smoke-tested (one call on empty input; for a
/// delta plugin, a diff checked with its own `apply`), all before any pipeline is
/// touched.
pub async fn prepare(entry: &PluginEntry) -> Result<Replacement, String> {
    let smoke = |e: CallError| format!("smoke test: {e}");
    Ok(match &entry.current.loaded {
        LoadedPlugin::Collector(_) => {
            let mut i = instance(entry).await?;
            i.collect("wasmeter:smoke-test", b"").await.map_err(smoke)?;
            Replacement::collector(i)
        }
        LoadedPlugin::Metric(_) => {
            let mut i = instance(entry).await?;
            i.on_samples(&SampleBatch::new()).await.map_err(smoke)?;
            Replacement::metric(i)
        }
        LoadedPlugin::Delta(_) => {
            let mut i = instance(entry).await?;
            smoke_delta(&mut i).await?;
            Replacement::delta(i)
        }
    })
}

/// A delta plugin's smoke test: its diff between two small states, applied to
/// the first by its own `apply`, must give the second (the check `apply` exists
/// for). The changes are large, so that no tolerance of the plugin hides them.
async fn smoke_delta(i: &mut wasmeter_plugin::Instance<DeltaWorld>) -> Result<(), String> {
    let smoke = |e: CallError| format!("smoke test: {e}");
    let state = |fields: [(&str, FieldValue); 3]| -> TopicState {
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    };
    let previous = state([
        ("open", FieldValue::Flag(true)),
        ("price", FieldValue::Number(100.0)),
        ("side", FieldValue::Text("buy".into())),
    ]);
    let current = state([
        ("price", FieldValue::Number(1.0e9)),
        ("qty", FieldValue::Number(2.0)),
        ("side", FieldValue::Text("sell".into())),
    ]);
    let delta = i
        .diff("wasmeter:smoke-test", &previous, &current)
        .await
        .map_err(smoke)?;
    let applied = i.apply(&previous, &delta).await.map_err(smoke)?;
    if applied != current {
        return Err(format!(
            "smoke test: its apply of its own diff gives {applied:?}, not the new state {current:?}"
        ));
    }
    Ok(())
}
