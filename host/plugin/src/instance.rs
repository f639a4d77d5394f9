//! A plugin instance under supervision: every call runs under a deadline and a
//! memory cap; a trap, timeout or out-of-memory fails that call only, the
//! instance is rebuilt for the next one, and repeated failures quarantine it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use wasmeter_core::plugin::{PluginInfo, PluginKind};
use wasmeter_core::validate::OutputError;
use wasmtime::Store;
use wasmtime::component::InstancePre;

use crate::Runtime;
use crate::bindings::types;
use crate::cache::{CacheOutcome, ContentHash};
use crate::error::{CallError, LoadError};
use crate::health::Health;
use crate::health::HealthHandle;
use crate::kinds::{CollectorWorld, DeltaWorld, MetricWorld};
use crate::limits::PluginLimits;
use crate::sandbox::{PluginConfig, StoreData};

/// Largest state a plugin may export for a hot swap.
pub const MAX_STATE_BYTES: usize = 16 << 20;

/// Runs one guest call on an [`Instance`]: `enter`, the call, `leave`.
///
/// `guest_call!(instance, |bindings, store| <future>, |result, limits| <check>)`
macro_rules! guest_call {
    ($inst:expr, |$b:ident, $store:ident| $call:expr, $check:expr) => {{
        let inst = $inst;
        match inst.enter().await {
            Err(e) => Err(e),
            Ok(($b, $store)) => {
                let raw = $call.await;
                inst.leave(raw, $check)
            }
        }
    }};
}

pub(crate) use guest_call;

pub(crate) type GuestFuture<'a, R> = Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>;

pub(crate) mod sealed {
    use super::*;

    /// The calls every world exports (`wasmeter:plugin/plugin`), per world.
    pub trait Lifecycle: Sized + Send + Sync + 'static {
        type Pre: Clone + Send + Sync + 'static;
        type Bindings: Send + Sync + 'static;
        fn pre(pre: InstancePre<StoreData>) -> wasmtime::Result<Self::Pre>;
        fn instantiate<'a>(
            pre: &'a Self::Pre,
            store: &'a mut Store<StoreData>,
        ) -> GuestFuture<'a, Self::Bindings>;
        fn describe<'a>(
            b: &'a Self::Bindings,
            store: &'a mut Store<StoreData>,
        ) -> GuestFuture<'a, types::PluginInfo>;
        #[allow(clippy::ptr_arg, reason = "the generated binding takes `&Vec`")]
        fn init<'a>(
            b: &'a Self::Bindings,
            store: &'a mut Store<StoreData>,
            config: &'a Vec<(String, String)>,
        ) -> GuestFuture<'a, Result<(), String>>;
        fn export_state<'a>(
            b: &'a Self::Bindings,
            store: &'a mut Store<StoreData>,
        ) -> GuestFuture<'a, Option<Vec<u8>>>;
        fn import_state<'a>(
            b: &'a Self::Bindings,
            store: &'a mut Store<StoreData>,
            state: &'a [u8],
        ) -> GuestFuture<'a, Result<(), String>>;
    }
}

pub(crate) use sealed::Lifecycle;

/// A WIT world a plugin implements: [`CollectorWorld`], [`DeltaWorld`] or [`MetricWorld`].
pub trait World: sealed::Lifecycle {
    /// The kind of plugin of this world.
    const KIND: PluginKind;

    /// The typed plugin if `loaded` is of this world.
    fn from_loaded(loaded: LoadedPlugin) -> Option<Compiled<Self>>;

    #[doc(hidden)]
    fn wrap(compiled: Compiled<Self>) -> LoadedPlugin;
}

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
}

impl PluginMeta {
    pub(crate) fn new(
        origin: String,
        hash: ContentHash,
        size_bytes: usize,
        cache: CacheOutcome,
        compile_time: Duration,
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
        let mut store = StoreData::new_store(
            &runtime,
            "describe".into(),
            Arc::new(Vec::new()),
            limits.memory_bytes,
        );
        StoreData::arm(&mut store, Instant::now() + limits.call_timeout);
        let bindings = W::instantiate(&pre, &mut store)
            .await
            .map_err(|e| fail("instantiation", classify(&store, e, &limits)))?;
        let info = W::describe(&bindings, &mut store)
            .await
            .map_err(|e| fail("describe", classify(&store, e, &limits)))?;
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
        let mut instance = Instance {
            plugin: self.clone(),
            name: name.into(),
            config: Arc::new(config),
            limits,
            live: None,
            health: HealthHandle::default(),
            call_started: Instant::now(),
        };
        instance.live = Some(
            Instance::start(
                &instance.plugin,
                &instance.name,
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

struct Live<W: World> {
    store: Store<StoreData>,
    bindings: W::Bindings,
}

/// A running plugin instance with its supervision state. Owned by one task;
/// calls take `&mut self` and run one at a time.
pub struct Instance<W: World> {
    plugin: Compiled<W>,
    name: Arc<str>,
    config: PluginConfig,
    limits: PluginLimits,
    live: Option<Live<W>>,
    health: HealthHandle,
    call_started: Instant,
}

impl<W: World> Instance<W> {
    /// The host's name for this instance.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plugin it runs.
    pub fn plugin(&self) -> &Compiled<W> {
        &self.plugin
    }

    /// The limits it runs under.
    pub fn limits(&self) -> &PluginLimits {
        &self.limits
    }

    /// Its counters and state now.
    pub fn health(&self) -> Health {
        self.health.snapshot()
    }

    /// A handle that reads its counters from anywhere (another task, a server).
    pub fn health_handle(&self) -> HealthHandle {
        self.health.clone()
    }

    /// Lifts a quarantine: the next call rebuilds the instance and tries again.
    pub fn release(&mut self) {
        self.health.release();
    }

    /// Quarantines the plugin by hand; calls fail until [`Instance::release`].
    pub fn quarantine(&mut self, reason: &str) {
        self.health.quarantine(reason);
    }

    /// The host refused part of the last call's output (a topic the pipeline does
    /// not own, say): counted like invalid output, toward quarantine.
    pub fn record_refusal(&mut self, refusal: OutputError) {
        self.count_failure(&CallError::InvalidOutput(refusal));
    }

    /// Builds a fresh instance and initialises it with the config. Takes the parts
    /// it needs rather than `&self`: the instance (its `Store`) is not `Sync`, and
    /// holding `&self` across an await would make every caller's future `!Send`.
    async fn start(
        plugin: &Compiled<W>,
        name: &Arc<str>,
        config: &PluginConfig,
        limits: &PluginLimits,
    ) -> Result<Live<W>, CallError> {
        let runtime = &plugin.inner.runtime;
        let mut store =
            StoreData::new_store(runtime, name.clone(), config.clone(), limits.memory_bytes);
        StoreData::arm(&mut store, Instant::now() + limits.call_timeout);
        let bindings = match W::instantiate(&plugin.inner.pre, &mut store).await {
            Ok(b) => b,
            Err(e) => return Err(classify(&store, e, limits)),
        };
        StoreData::arm(&mut store, Instant::now() + limits.call_timeout);
        let init = W::init(&bindings, &mut store, config).await;
        store.data().log.end_call();
        match init {
            Ok(Ok(())) => Ok(Live { store, bindings }),
            Ok(Err(message)) => Err(CallError::Plugin(format!("init: {message}"))),
            Err(e) => Err(classify(&store, e, limits)),
        }
    }

    /// Prepares a guest call: refuses it if quarantined, rebuilds the instance if
    /// the last call poisoned it, and arms the deadline. Use [`guest_call!`].
    pub(crate) async fn enter(
        &mut self,
    ) -> Result<(&W::Bindings, &mut Store<StoreData>), CallError> {
        let cells = &self.health.0;
        if cells.quarantined.load(Relaxed) {
            return Err(CallError::Quarantined {
                failures: cells.consecutive_failures.load(Relaxed),
                last_error: self.health.last_error().unwrap_or_default(),
            });
        }
        cells.calls.fetch_add(1, Relaxed);
        if self.live.is_none() {
            cells.rebuilds.fetch_add(1, Relaxed);
            match Self::start(&self.plugin, &self.name, &self.config, &self.limits).await {
                Ok(live) => self.live = Some(live),
                Err(e) => {
                    self.count_failure(&e);
                    return Err(e);
                }
            }
        }
        let live = self.live.as_mut().expect("just ensured");
        self.call_started = Instant::now();
        StoreData::arm(
            &mut live.store,
            self.call_started + self.limits.call_timeout,
        );
        Ok((&live.bindings, &mut live.store))
    }

    /// Finishes a guest call: classifies a trap, `check`s the result, and records
    /// success or failure (rebuilding after a trap, quarantining after repeats).
    pub(crate) fn leave<R, T>(
        &mut self,
        raw: wasmtime::Result<R>,
        check: impl FnOnce(R, &PluginLimits) -> Result<T, CallError>,
    ) -> Result<T, CallError> {
        let busy = self.call_started.elapsed().as_nanos() as u64;
        self.health.0.busy_nanos.fetch_add(busy, Relaxed);
        let live = self.live.as_ref().expect("entered");
        live.store.data().log.end_call();
        let result = raw
            .map_err(|e| classify(&live.store, e, &self.limits))
            .and_then(|r| check(r, &self.limits));
        match &result {
            Ok(_) => self.health.0.consecutive_failures.store(0, Relaxed),
            Err(e) => self.count_failure(e),
        }
        result
    }

    fn count_failure(&mut self, error: &CallError) {
        let cells = &self.health.0;
        cells.failures.fetch_add(1, Relaxed);
        let consecutive = cells.consecutive_failures.fetch_add(1, Relaxed) + 1;
        self.health.set_last_error(error.to_string());
        if error.poisons_instance() {
            // A trapped component instance refuses every later call; drop it (and
            // its memory) now, rebuild on the next call.
            self.live = None;
        }
        if consecutive >= self.limits.quarantine_after {
            self.health.set_quarantined();
            tracing::error!(plugin = %self.name, failures = consecutive, %error, "plugin quarantined");
        } else {
            tracing::warn!(plugin = %self.name, %error, "plugin call failed");
        }
    }

    /// The plugin's state, for carrying it over to a new version.
    pub async fn export_state(&mut self) -> Result<Option<Vec<u8>>, CallError> {
        guest_call!(
            self,
            |b, store| W::export_state(b, store),
            |state, _| match state {
                Some(s) if s.len() > MAX_STATE_BYTES =>
                    Err(CallError::InvalidOutput(OutputError {
                        item: "exported state".into(),
                        problem: format!(
                            "{} bytes, more than the limit of {MAX_STATE_BYTES}",
                            s.len()
                        ),
                    })),
                other => Ok(other),
            }
        )
    }

    /// Restores state exported by this or another version of the plugin.
    pub async fn import_state(&mut self, state: &[u8]) -> Result<(), CallError> {
        guest_call!(self, |b, store| W::import_state(b, store, state), |r, _| {
            r.map_err(|m| CallError::Plugin(format!("import-state: {m}")))
        })
    }
}

/// Turns a wasmtime error from a guest call into a [`CallError`] that says what
/// happened: the deadline, the memory cap, or the trap and the plugin's last words.
pub(crate) fn classify(
    store: &Store<StoreData>,
    error: wasmtime::Error,
    limits: &PluginLimits,
) -> CallError {
    let data = store.data();
    if data.deadline_hit {
        return CallError::Deadline {
            limit_ms: limits.call_timeout.as_millis() as u64,
        };
    }
    if let Some(requested_bytes) = data.memory.refused {
        return CallError::MemoryLimit {
            requested_bytes,
            limit_bytes: data.memory.limit_bytes,
        };
    }
    let mut message = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{error:#}"),
    };
    if let Some(stderr) = data.log.recent_stderr() {
        message = format!("{message}; plugin stderr: {stderr}");
    }
    CallError::Trap { message }
}

/// Implements [`sealed::Lifecycle`] for a world's generated bindings.
macro_rules! lifecycle {
    ($world:ident, $kind:ident, $module:ident, $bindings:ident, $pre:ident) => {
        impl $crate::instance::sealed::Lifecycle for $world {
            type Pre = $crate::bindings::$module::$pre<$crate::sandbox::StoreData>;
            type Bindings = $crate::bindings::$module::$bindings;

            fn pre(
                pre: wasmtime::component::InstancePre<$crate::sandbox::StoreData>,
            ) -> wasmtime::Result<Self::Pre> {
                $crate::bindings::$module::$pre::new(pre)
            }

            fn instantiate<'a>(
                pre: &'a Self::Pre,
                store: &'a mut wasmtime::Store<$crate::sandbox::StoreData>,
            ) -> $crate::instance::GuestFuture<'a, Self::Bindings> {
                Box::pin(pre.instantiate_async(store))
            }

            fn describe<'a>(
                b: &'a Self::Bindings,
                store: &'a mut wasmtime::Store<$crate::sandbox::StoreData>,
            ) -> $crate::instance::GuestFuture<'a, $crate::bindings::types::PluginInfo> {
                Box::pin(b.wasmeter_plugin_plugin().call_describe(store))
            }

            fn init<'a>(
                b: &'a Self::Bindings,
                store: &'a mut wasmtime::Store<$crate::sandbox::StoreData>,
                config: &'a Vec<(String, String)>,
            ) -> $crate::instance::GuestFuture<'a, Result<(), String>> {
                Box::pin(b.wasmeter_plugin_plugin().call_init(store, config))
            }

            fn export_state<'a>(
                b: &'a Self::Bindings,
                store: &'a mut wasmtime::Store<$crate::sandbox::StoreData>,
            ) -> $crate::instance::GuestFuture<'a, Option<Vec<u8>>> {
                Box::pin(b.wasmeter_plugin_plugin().call_export_state(store))
            }

            fn import_state<'a>(
                b: &'a Self::Bindings,
                store: &'a mut wasmtime::Store<$crate::sandbox::StoreData>,
                state: &'a [u8],
            ) -> $crate::instance::GuestFuture<'a, Result<(), String>> {
                Box::pin(b.wasmeter_plugin_plugin().call_import_state(store, state))
            }
        }

        impl $crate::instance::World for $world {
            const KIND: wasmeter_core::plugin::PluginKind =
                wasmeter_core::plugin::PluginKind::$kind;

            fn from_loaded(
                loaded: $crate::instance::LoadedPlugin,
            ) -> Option<$crate::instance::Compiled<Self>> {
                match loaded {
                    $crate::instance::LoadedPlugin::$kind(c) => Some(c),
                    _ => None,
                }
            }

            fn wrap(compiled: $crate::instance::Compiled<Self>) -> $crate::instance::LoadedPlugin {
                $crate::instance::LoadedPlugin::$kind(compiled)
            }
        }
    };
}

pub(crate) use lifecycle;
