//! The plugin runtime: one wasmtime [`Engine`] and [`Linker`] shared by every
//! plugin, the compile cache, and the epoch ticker that enforces call deadlines.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use wasmeter_core::plugin::PluginKind;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::cache::{CompileCache, content_hash};
use crate::compiled::{Compiled, LoadedPlugin, PluginMeta};
use crate::epoch::{EpochTicker, Ticking};
use crate::error::LoadError;
use crate::kinds::{CollectorWorld, DeltaWorld, MetricWorld};
use crate::lifecycle::{Lifecycle, World};
use crate::limits::{PluginLimits, RuntimeConfig};
use crate::sandbox::StoreData;
use crate::world::{detect_kind, export_names, import_names};

/// Loads, compiles and runs plugins. Cheap to clone; all clones share one engine.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<StoreData>,
    cache: CompileCache,
    config: RuntimeConfig,
    ticker: EpochTicker,
}

impl Runtime {
    /// Builds the engine (Cranelift, pooling allocator, epoch interruption) and the
    /// linker with the host imports and a deny-by-default WASI.
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        let engine = build_engine(&config).map_err(|e| LoadError::Runtime(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| {
                crate::bindings::v4::host::add_to_linker::<StoreData, HasSelf<StoreData>>(
                    &mut linker,
                    |s| s,
                )
            })
            .and_then(|()| {
                crate::bindings::v3::host::add_to_linker::<StoreData, HasSelf<StoreData>>(
                    &mut linker,
                    |s| s,
                )
            })
            .and_then(|()| {
                crate::bindings::v2::host::add_to_linker::<StoreData, HasSelf<StoreData>>(
                    &mut linker,
                    |s| s,
                )
            })
            .and_then(|()| {
                crate::bindings::v1::host::add_to_linker::<StoreData, HasSelf<StoreData>>(
                    &mut linker,
                    |s| s,
                )
            })
            .map_err(|e| LoadError::Runtime(format!("cannot set up the linker: {e}")))?;
        let cache = CompileCache::new(&engine, config.cache_dir.clone());
        let ticker = EpochTicker::start(config.epoch_tick, {
            let engine = engine.clone();
            move || engine.increment_epoch()
        });
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                cache,
                config,
                ticker,
            }),
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// What guest calls arm their deadlines with (see `epoch.rs`).
    pub(crate) fn ticking(&self) -> Arc<Ticking> {
        self.inner.ticker.ticking()
    }

    /// The default limits for new instances.
    pub fn limits(&self) -> &PluginLimits {
        &self.inner.config.limits
    }

    /// The directory compiled components are cached in: `RuntimeConfig::cache_dir`
    /// if it could be created or was found trusted, `None` if caching is in memory
    /// only (see [`RuntimeConfig::cache_dir`]).
    pub fn cache_dir(&self) -> Option<&Path> {
        self.inner.cache.dir()
    }

    /// Loads a plugin file, expecting the world of `W`.
    pub async fn load<W: World>(&self, path: impl AsRef<Path>) -> Result<Compiled<W>, LoadError> {
        let (bytes, origin) = read_file(path.as_ref()).await?;
        let loaded = self.load_bytes(bytes, origin, Some(W::KIND)).await?;
        Ok(W::from_loaded(loaded).expect("detect_kind checked the kind"))
    }

    /// Loads a plugin file of any kind.
    pub async fn load_any(&self, path: impl AsRef<Path>) -> Result<LoadedPlugin, LoadError> {
        let (bytes, origin) = read_file(path.as_ref()).await?;
        self.load_bytes(bytes, origin, None).await
    }

    /// Loads a plugin from bytes; `origin` names it in errors (a path or "upload").
    ///
    /// Compilation (or loading the cached artifact) runs on a blocking thread.
    /// Then the component's world is checked, it is pre-instantiated, and one
    /// instance is asked to `describe` itself.
    pub async fn load_bytes(
        &self,
        bytes: Vec<u8>,
        origin: String,
        expected: Option<PluginKind>,
    ) -> Result<LoadedPlugin, LoadError> {
        let runtime = self.clone();
        let compiled =
            tokio::task::spawn_blocking(move || runtime.compile(&bytes, origin, expected))
                .await
                .map_err(|e| LoadError::Runtime(format!("compile task failed: {e}")))??;
        compiled.describe(self.clone()).await
    }

    /// Compiles (or fetches from cache), checks the world and pre-instantiates.
    fn compile(
        &self,
        bytes: &[u8],
        origin: String,
        expected: Option<PluginKind>,
    ) -> Result<Unchecked, LoadError> {
        sniff_component(bytes, &origin)?;
        let started = Instant::now();
        let hash = content_hash(bytes);
        let (component, cache) = self
            .inner
            .cache
            .get_or_compile(&self.inner.engine, &hash, bytes)
            .map_err(|e| LoadError::Compile {
                origin: origin.clone(),
                reason: format!("{e:#}"),
            })?;
        let compile_time = started.elapsed();
        let exports = export_names(&self.inner.engine, &component);
        let (kind, contract) =
            detect_kind(&exports, expected).map_err(|detail| LoadError::WrongInterface {
                origin: origin.clone(),
                detail,
            })?;
        let pre = self.inner.linker.instantiate_pre(&component).map_err(|e| {
            let imports = import_names(&self.inner.engine, &component).join(", ");
            LoadError::WrongInterface {
                origin: origin.clone(),
                detail: format!(
                    "{e}; the component imports {imports}, and this host provides only `{}/host@{contract}` and WASI 0.2 (with no files, network or environment)",
                    crate::world::PACKAGE
                ),
            }
        })?;
        tracing::debug!(%origin, %kind, %contract, ?cache, ?compile_time, "plugin compiled");
        let meta = PluginMeta::new(origin, hash, bytes.len(), cache, compile_time, contract);
        let wrap = |e: wasmtime::Error| LoadError::WrongInterface {
            origin: meta.origin.clone(),
            detail: format!("{e:#}"),
        };
        Ok(match kind {
            PluginKind::Collector => {
                Unchecked::Collector(CollectorWorld::pre(pre, contract).map_err(wrap)?, meta)
            }
            PluginKind::Delta => {
                Unchecked::Delta(DeltaWorld::pre(pre, contract).map_err(wrap)?, meta)
            }
            PluginKind::Metric => {
                Unchecked::Metric(MetricWorld::pre(pre, contract).map_err(wrap)?, meta)
            }
        })
    }
}

/// A pre-instantiated component that has not yet described itself.
enum Unchecked {
    Collector(<CollectorWorld as Lifecycle>::Pre, PluginMeta),
    Delta(<DeltaWorld as Lifecycle>::Pre, PluginMeta),
    Metric(<MetricWorld as Lifecycle>::Pre, PluginMeta),
}

impl Unchecked {
    async fn describe(self, runtime: Runtime) -> Result<LoadedPlugin, LoadError> {
        match self {
            Unchecked::Collector(pre, meta) => {
                Compiled::<CollectorWorld>::describe(runtime, pre, meta).await
            }
            Unchecked::Delta(pre, meta) => {
                Compiled::<DeltaWorld>::describe(runtime, pre, meta).await
            }
            Unchecked::Metric(pre, meta) => {
                Compiled::<MetricWorld>::describe(runtime, pre, meta).await
            }
        }
    }
}

async fn read_file(path: &Path) -> Result<(Vec<u8>, String), LoadError> {
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    Ok((bytes, path.display().to_string()))
}

/// Rejects bytes that are not a component before handing them to the compiler,
/// with a message that says what they are instead.
fn sniff_component(bytes: &[u8], origin: &str) -> Result<(), LoadError> {
    let fail = |reason: &str| LoadError::NotAComponent {
        origin: origin.to_string(),
        reason: reason.to_string(),
    };
    match bytes {
        [0x00, b'a', b's', b'm', _, _, 0x01, 0x00, ..] => Ok(()),
        [0x00, b'a', b's', b'm', 0x01, 0x00, 0x00, 0x00, ..] => Err(fail(
            "it is a core WebAssembly module; build with `--target wasm32-wasip2` (or wrap it with `wasm-tools component new`)",
        )),
        [0x00, b'a', b's', b'm', ..] => Err(fail("unknown WebAssembly binary version")),
        [] => Err(fail("the file is empty")),
        _ => Err(fail(
            "no WebAssembly magic number (`\\0asm`) at the start of the file",
        )),
    }
}

fn build_engine(config: &RuntimeConfig) -> wasmtime::Result<Engine> {
    let n = config.max_instances;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        // A Rust component is a handful of core instances (the program plus shims).
        .total_core_instances(n.saturating_mul(8))
        .total_memories(n.saturating_mul(2))
        .total_tables(n.saturating_mul(8))
        .total_stacks(n)
        .max_memory_size(config.max_memory_bytes);
    let mut cfg = wasmtime::Config::new();
    cfg.wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    // For profiling plugins: `perf` reads the functions' names from the map.
    if std::env::var_os("WASMETER_PERFMAP").is_some() {
        cfg.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    Engine::new(&cfg)
}
