//! A compiled plugin: its facts ([`PluginMeta`]), its self-description (checked
//! when it is loaded), and the instances made from it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmeter_core::plugin::{PluginInfo, PluginKind};

use crate::Runtime;
use crate::bindings::types;
use crate::cache::{CacheOutcome, ContentHash};
use crate::call::{bounded, settle};
use crate::error::{CallError, LoadError};
use crate::health::HealthHandle;
use crate::instance::Instance;
use crate::kinds::{CollectorWorld, DeltaWorld, MetricWorld};
use crate::lifecycle::World;
use crate::limits::PluginLimits;
use crate::sandbox::StoreData;
use crate::stdio::GuestLog;
use crate::world::Contract;

/// Facts about a loaded component.
#[derive(Debug, Clone)]
pub struct PluginMeta {
    /// Where it came from (a path, or "upload").
    pub origin: String,
    /// SHA-256 of the component's bytes.
    pub hash: ContentHash,
    /// Size of the component in bytes.
    pub size_bytes: usize,
    /// Whether it was compiled now or came from a cache.
    pub cache: CacheOutcome,
    /// Time spent compiling or loading the artifact.
    pub compile_time: Duration,
    /// What the plugin said about itself.
    pub info: PluginInfo,
    /// The contract version it was built against.
    pub contract: Contract,
}

impl PluginMeta {
    pub(crate) fn new(
        origin: String,
        hash: ContentHash,
        size_bytes: usize,
        cache: CacheOutcome,
        compile_time: Duration,
        contract: Contract,
    ) -> Self {
        Self {
            origin,
            hash,
            size_bytes,
            cache,
            compile_time,
            info: PluginInfo {
                name: String::new(),
                version: String::new(),
                kind: PluginKind::Collector,
                description: String::new(),
                emits: Vec::new(),
                stateful: false,
            },
            contract,
        }
    }

    /// The content hash as lowercase hex.
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }
}

/// A compiled, type-checked, pre-instantiated plugin. Cheap to clone; instances
/// are created from it in microseconds.
pub struct Compiled<W: World> {
    inner: Arc<CompiledInner<W>>,
}

struct CompiledInner<W: World> {
    runtime: Runtime,
    pre: W::Pre,
    meta: PluginMeta,
}

impl<W: World> Clone for Compiled<W> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

/// A loaded plugin of any kind.
#[derive(Clone)]
pub enum LoadedPlugin {
    /// World `collector`.
    Collector(Compiled<CollectorWorld>),
    /// World `delta`.
    Delta(Compiled<DeltaWorld>),
    /// World `metric`.
    Metric(Compiled<MetricWorld>),
}

impl LoadedPlugin {
    /// Facts about the component.
    pub fn meta(&self) -> &PluginMeta {
        match self {
            LoadedPlugin::Collector(c) => c.meta(),
            LoadedPlugin::Delta(c) => c.meta(),
            LoadedPlugin::Metric(c) => c.meta(),
        }
    }
}

impl<W: World> Compiled<W> {
    /// Facts about the component, including its self-description.
    pub fn meta(&self) -> &PluginMeta {
        &self.inner.meta
    }

    pub(crate) fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    pub(crate) fn pre(&self) -> &W::Pre {
        &self.inner.pre
    }

    /// Asks a scratch instance to describe itself and checks the answer.
    pub(crate) async fn describe(
        runtime: Runtime,
        pre: W::Pre,
        mut meta: PluginMeta,
    ) -> Result<LoadedPlugin, LoadError> {
        let limits = runtime.limits().clone();
        let fail = |stage, source| LoadError::Start {
            origin: meta.origin.clone(),
            stage,
            source,
        };
        // A scratch instance with a log of its own; every step is bounded.
        let log = GuestLog::new(
            "describe".into(),
            limits.log_bytes_per_sec,
            HealthHandle::default(),
        );
        let mut store =
            StoreData::new_store(&runtime, log, Arc::new(Vec::new()), limits.memory_bytes);
        StoreData::arm(&mut store, Instant::now() + limits.call_timeout);
        let raw = bounded(limits.call_timeout, W::instantiate(&pre, &mut store)).await;
        let bindings = settle(&store, raw, &limits).map_err(|e| fail("instantiation", e))?;
        StoreData::arm(&mut store, Instant::now() + limits.call_timeout);
        let raw = bounded(limits.call_timeout, W::describe(&bindings, &mut store)).await;
        let info = settle(&store, raw, &limits).map_err(|e| fail("describe", e))?;
        meta.info = check_info(info, W::KIND).map_err(|reason| LoadError::BadDescription {
            origin: meta.origin.clone(),
            reason,
        })?;
        Ok(W::wrap(Compiled {
            inner: Arc::new(CompiledInner { runtime, pre, meta }),
        }))
    }

    /// Creates a supervised instance named `name` (the host's name for it, used in
    /// logs and errors) and initialises it with `config`.
    pub async fn instantiate(
        &self,
        name: &str,
        config: Vec<(String, String)>,
    ) -> Result<Instance<W>, CallError> {
        self.instantiate_with_limits(name, config, self.inner.runtime.limits().clone())
            .await
    }

    /// Like [`Compiled::instantiate`], with limits of its own.
    pub async fn instantiate_with_limits(
        &self,
        name: &str,
        config: Vec<(String, String)>,
        limits: PluginLimits,
    ) -> Result<Instance<W>, CallError> {
        let mut instance = Instance::new(self.clone(), name, config, limits);
        instance.live = Some(
            Instance::start(
                &instance.plugin,
                &instance.log,
                &instance.config,
                &instance.limits,
            )
            .await?,
        );
        Ok(instance)
    }
}

fn check_info(info: types::PluginInfo, expected: PluginKind) -> Result<PluginInfo, String> {
    let kind = match info.kind {
        types::PluginKind::Collector => PluginKind::Collector,
        types::PluginKind::Delta => PluginKind::Delta,
        types::PluginKind::Metric => PluginKind::Metric,
    };
    if kind != expected {
        return Err(format!(
            "it says it is a {kind} plugin but implements the {expected} world"
        ));
    }
    let name_ok = !info.name.is_empty()
        && info.name.len() <= 64
        && info
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !name_ok {
        return Err(format!(
            "name `{}` must be 1-64 characters of [a-z0-9-]",
            info.name.escape_debug()
        ));
    }
    if info.version.is_empty() || info.version.len() > 64 {
        return Err(format!(
            "version `{}` must be 1-64 characters",
            info.version.escape_debug()
        ));
    }
    if info.description.len() > 1024
        || info.emits.len() > 256
        || info.emits.iter().any(|e| e.len() > 256)
    {
        return Err("description or emits list is too long".into());
    }
    Ok(PluginInfo {
        name: info.name,
        version: info.version,
        kind,
        description: info.description,
        emits: info.emits,
        stateful: info.stateful,
    })
}
