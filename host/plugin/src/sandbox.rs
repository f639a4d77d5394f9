//! What a plugin's store holds: a deny-by-default WASI context, the memory cap,
//! the call deadline, and the three host imports (log, clocks, config).
//!
//! The deadline here is the epoch check, which runs only while guest code runs;
//! the wall-clock bound on a whole call (host calls included) is in `call.rs`.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use wasmtime::{ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

use crate::Runtime;
use crate::bindings::{host, types};
use crate::epoch::Ticking;
use crate::kinds::{DeclaredSeries, GivenSeries};
use crate::stdio::GuestLog;

/// The configuration handed to a plugin: dotted keys with string values.
pub type PluginConfig = Arc<Vec<(String, String)>>;

/// Caps a plugin's linear memory and remembers a refused growth, so that the
/// trap that follows can be reported as "memory limit" rather than "unreachable".
#[derive(Debug)]
pub(crate) struct MemoryCap {
    pub(crate) limit_bytes: usize,
    pub(crate) refused: Option<usize>,
    /// The largest size a memory of the instance was allowed to grow to (linear
    /// memory never shrinks: this is what the instance holds).
    pub(crate) grown_bytes: usize,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit_bytes {
            self.refused = Some(desired);
            return Ok(false);
        }
        self.grown_bytes = self.grown_bytes.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The per-instance data of a plugin's [`Store`].
#[doc(hidden)]
pub struct StoreData {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) config: PluginConfig,
    pub(crate) memory: MemoryCap,
    pub(crate) deadline: Option<Instant>,
    pub(crate) deadline_hit: bool,
    pub(crate) log: GuestLog,
    /// The series a collector (since 0.3.0) or a metric (since 0.4.0) instance
    /// declared: they live and die with the instance.
    pub(crate) series: DeclaredSeries,
    /// The series the host declared to a metric instance (since 0.4.0).
    pub(crate) given: GivenSeries,
    /// The epoch ticker's: each call keeps it ticking until its deadline.
    ticking: Arc<Ticking>,
}

impl StoreData {
    /// A store for one instance of a plugin, logging into `log`.
    pub(crate) fn new_store(
        runtime: &Runtime,
        log: GuestLog,
        config: PluginConfig,
        memory_bytes: usize,
    ) -> Store<StoreData> {
        // Deny by default: no preopened directories, no environment, no arguments,
        // no sockets, no name lookups. Only clocks and random remain, which Rust's
        // std needs and which reveal nothing about the host.
        let wasi = WasiCtx::builder()
            .stdout(log.stdout())
            .stderr(log.stderr())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let data = StoreData {
            wasi,
            table: ResourceTable::new(),
            config,
            memory: MemoryCap {
                limit_bytes: memory_bytes,
                grown_bytes: 0,
                refused: None,
            },
            deadline: None,
            deadline_hit: false,
            log,
            series: DeclaredSeries::default(),
            given: GivenSeries::default(),
            ticking: runtime.ticking(),
        };
        let mut store = Store::new(runtime.engine(), data);
        store.limiter(|data| &mut data.memory);
        // Checked at every epoch tick while the guest runs: past the deadline the
        // call traps; before it, the guest yields so other tasks on this thread run.
        store.epoch_deadline_callback(|mut ctx| {
            let data = ctx.data_mut();
            match data.deadline {
                Some(deadline) if Instant::now() >= deadline => {
                    data.deadline_hit = true;
                    Err(wasmtime::format_err!("deadline exceeded"))
                }
                _ => Ok(UpdateDeadline::Yield(1)),
            }
        });
        store
    }

    /// Prepares for a guest call that may run until `deadline`.
    pub(crate) fn arm(store: &mut Store<StoreData>, deadline: Instant) {
        let data = store.data_mut();
        data.deadline = Some(deadline);
        data.deadline_hit = false;
        data.memory.refused = None;
        data.log.begin_call();
        data.ticking.keep_until(deadline);
        store.set_epoch_deadline(1);
    }
}

impl WasiView for StoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for StoreData {}
impl crate::bindings::v3::types::Host for StoreData {}
impl crate::bindings::v2::types::Host for StoreData {}
impl crate::bindings::v1::types::Host for StoreData {}

/// The `host` interface of an earlier contract version: the same calls as the
/// current one's.
macro_rules! earlier_host {
    ($version:ident) => {
        impl crate::bindings::$version::host::Host for StoreData {
            fn log(
                &mut self,
                level: crate::bindings::$version::host::LogLevel,
                message: String,
                fields: Vec<(String, String)>,
            ) {
                use crate::bindings::$version::host::LogLevel as Earlier;
                let level = match level {
                    Earlier::Trace => host::LogLevel::Trace,
                    Earlier::Debug => host::LogLevel::Debug,
                    Earlier::Info => host::LogLevel::Info,
                    Earlier::Warn => host::LogLevel::Warn,
                    Earlier::Error => host::LogLevel::Error,
                };
                host::Host::log(self, level, message, fields);
            }

            fn now_ms(&mut self) -> i64 {
                host::Host::now_ms(self)
            }

            fn monotonic_ns(&mut self) -> u64 {
                host::Host::monotonic_ns(self)
            }

            fn config(&mut self) -> Vec<(String, String)> {
                host::Host::config(self)
            }
        }
    };
}

earlier_host!(v1);
earlier_host!(v2);
earlier_host!(v3);

impl host::Host for StoreData {
    /// Capped and rate limited: see `log_limit.rs`.
    fn log(&mut self, level: host::LogLevel, message: String, fields: Vec<(String, String)>) {
        self.log.log(level, &message, fields);
    }

    fn now_ms(&mut self) -> i64 {
        unix_now_ms()
    }

    fn monotonic_ns(&mut self) -> u64 {
        static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }

    fn config(&mut self) -> Vec<(String, String)> {
        self.config.to_vec()
    }
}

/// Wall-clock time as Unix milliseconds.
pub fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
