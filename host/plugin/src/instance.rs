//! A plugin instance under supervision: every call runs under a wall-clock bound,
//! a deadline and a memory cap; a trap, timeout or out-of-memory fails that call
//! only, the instance is rebuilt for the next one, and repeated failures
//! quarantine it (the accounting is in `call.rs`).

use std::sync::Arc;
use std::time::Instant;

use wasmeter_core::validate::OutputError;
use wasmtime::Store;

use crate::call::{CallKind, LastCall, bounded, guest_call, settle};
use crate::compiled::Compiled;
use crate::error::CallError;
use crate::health::{Health, HealthHandle};
use crate::lifecycle::World;
use crate::limits::PluginLimits;
use crate::sandbox::{PluginConfig, StoreData};
use crate::stdio::GuestLog;

/// The default largest state a plugin may export or import (`PluginLimits::state_bytes`).
pub const MAX_STATE_BYTES: usize = 16 << 20;

pub(crate) struct Live<W: World> {
    pub(crate) store: Store<StoreData>,
    pub(crate) bindings: W::Bindings,
    /// Its memory once started (instantiate and `init`).
    pub(crate) started_bytes: usize,
}

/// A running plugin instance with its supervision state. Owned by one task;
/// calls take `&mut self` and run one at a time.
///
/// # Failures and quarantine
/// A call fails on a trap, the deadline (computing past `call_timeout`, or not
/// finished shortly after it in wall-clock time, e.g. parked in a WASI sleep), the
/// memory cap, invalid output, a log flood, a state over `state_bytes`, an error of
/// the plugin's own, or when the host refuses its output afterwards
/// ([`Instance::record_failure`]). Every failure counts in the health counters.
/// The plugin is quarantined after `quarantine_after` consecutive failures, counted
/// over all calls and also per kind of call: a plugin whose `export-state` fails at
/// every checkpoint is quarantined even if its `collect` calls succeed in between.
pub struct Instance<W: World> {
    pub(crate) plugin: Compiled<W>,
    pub(crate) name: Arc<str>,
    pub(crate) config: PluginConfig,
    pub(crate) limits: PluginLimits,
    pub(crate) live: Option<Live<W>>,
    pub(crate) health: HealthHandle,
    pub(crate) log: GuestLog,
    pub(crate) call_started: Instant,
    pub(crate) current: CallKind,
    pub(crate) last: LastCall,
}

impl<W: World> Instance<W> {
    /// An instance not yet started (see [`Compiled::instantiate_with_limits`]).
    pub(crate) fn new(
        plugin: Compiled<W>,
        name: &str,
        config: Vec<(String, String)>,
        limits: PluginLimits,
    ) -> Self {
        let name: Arc<str> = name.into();
        let health = HealthHandle::default();
        Self {
            log: GuestLog::new(name.clone(), limits.log_bytes_per_sec, health.clone()),
            plugin,
            name,
            config: Arc::new(config),
            limits,
            live: None,
            health,
            call_started: Instant::now(),
            current: CallKind::Init,
            last: LastCall::None,
        }
    }

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

    /// Builds a fresh instance and initialises it with the config, each step under
    /// the call's wall-clock bound. Takes the parts it needs rather than `&self`:
    /// the instance (its `Store`) is not `Sync`, and holding `&self` across an
    /// await would make every caller's future `!Send`.
    pub(crate) async fn start(
        plugin: &Compiled<W>,
        log: &GuestLog,
        config: &PluginConfig,
        limits: &PluginLimits,
    ) -> Result<Live<W>, CallError> {
        let mut store = StoreData::new_store(
            plugin.runtime(),
            log.clone(),
            config.clone(),
            limits.memory_bytes,
        );
        StoreData::arm(&mut store, Instant::now() + limits.call_timeout);
        let raw = bounded(
            limits.call_timeout,
            W::instantiate(plugin.pre(), &mut store),
        )
        .await;
        log.end_call();
        let bindings = settle(&store, raw, limits)?;
        StoreData::arm(&mut store, Instant::now() + limits.call_timeout);
        let raw = bounded(limits.call_timeout, W::init(&bindings, &mut store, config)).await;
        let flood = log.end_call();
        match settle(&store, raw, limits)? {
            Ok(()) => match flood {
                None => Ok(Live {
                    started_bytes: store.data().memory.grown_bytes,
                    store,
                    bindings,
                }),
                Some(problem) => Err(log_flood(problem)),
            },
            Err(message) => Err(CallError::Plugin(format!("init: {message}"))),
        }
    }

    /// Replaces the live instance by a fresh one carrying its state when its
    /// memory has grown past three quarters of the cap, and by more than an
    /// eighth of the cap since it started (a plugin that starts that large is
    /// left alone: a fresh instance would be no smaller). Linear memory never
    /// shrinks, so a guest whose runtime keeps what it allocated (some garbage
    /// collected guests do) would otherwise hit the cap, trap, and be rebuilt
    /// without its state. Between two calls nothing is lost: the state is
    /// exported from the old instance and imported into the new one. If any step
    /// fails, the old instance stays (and the step's failure is logged).
    pub(crate) async fn recycle_if_grown(&mut self) {
        let Some(live) = &self.live else { return };
        let memory = &live.store.data().memory;
        let (cap, grown) = (memory.limit_bytes, memory.grown_bytes);
        if grown <= cap / 4 * 3 || grown <= live.started_bytes + cap / 8 {
            return;
        }
        let Some(mut old) = self.live.take() else {
            return;
        };
        let limits = &self.limits;
        StoreData::arm(&mut old.store, Instant::now() + limits.call_timeout);
        let raw = bounded(
            limits.call_timeout,
            W::export_state(&old.bindings, &mut old.store),
        )
        .await;
        self.log.end_call();
        let state = match settle(&old.store, raw, limits) {
            Ok(state) => state,
            Err(error) => {
                tracing::warn!(plugin = %self.name, %error, "instance not recycled: its state could not be exported");
                self.live = (!error.poisons_instance()).then_some(old);
                return;
            }
        };
        let mut fresh = match Self::start(&self.plugin, &self.log, &self.config, limits).await {
            Ok(fresh) => fresh,
            Err(error) => {
                tracing::warn!(plugin = %self.name, %error, "instance not recycled: a fresh one did not start");
                self.live = Some(old);
                return;
            }
        };
        if let Some(state) = &state {
            StoreData::arm(&mut fresh.store, Instant::now() + limits.call_timeout);
            let raw = bounded(
                limits.call_timeout,
                W::import_state(&fresh.bindings, &mut fresh.store, state),
            )
            .await;
            self.log.end_call();
            if let Err(error) = settle(&fresh.store, raw, limits)
                .and_then(|r| r.map_err(|m| CallError::Plugin(format!("import-state: {m}"))))
            {
                tracing::warn!(plugin = %self.name, %error, "instance not recycled: the fresh one refused the state");
                self.live = Some(old);
                return;
            }
        }
        self.health
            .0
            .recycles
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(plugin = %self.name, grown_bytes = grown, limit_bytes = limits.memory_bytes, "instance recycled: its memory had grown past three quarters of the cap; its state carried over");
        self.live = Some(fresh);
    }

    /// The plugin's state, for carrying it over to a new version. A state larger
    /// than `state_bytes` fails the call (and counts toward quarantine).
    pub async fn export_state(&mut self) -> Result<Option<Vec<u8>>, CallError> {
        guest_call!(
            self,
            CallKind::ExportState,
            |b, store| W::export_state(b, store),
            |state, limits| match state {
                Some(s) if s.len() > limits.state_bytes =>
                    Err(CallError::InvalidOutput(OutputError {
                        item: "exported state".into(),
                        problem: format!(
                            "{} bytes, more than the limit of {} (state_bytes)",
                            s.len(),
                            limits.state_bytes
                        ),
                    })),
                other => Ok(other),
            }
        )
    }

    /// Restores state exported by this or another version of the plugin. A state
    /// larger than `state_bytes` is refused before the plugin is called; that is
    /// not this instance's failure and is not counted.
    pub async fn import_state(&mut self, state: &[u8]) -> Result<(), CallError> {
        if state.len() > self.limits.state_bytes {
            return Err(CallError::InvalidOutput(OutputError {
                item: "state to import".into(),
                problem: format!(
                    "{} bytes, more than the limit of {} (state_bytes)",
                    state.len(),
                    self.limits.state_bytes
                ),
            }));
        }
        guest_call!(
            self,
            CallKind::ImportState,
            |b, store| W::import_state(b, store, state),
            |r, _| r.map_err(|m| CallError::Plugin(format!("import-state: {m}")))
        )
    }
}

/// The failure of a call that flooded the log.
pub(crate) fn log_flood(problem: String) -> CallError {
    CallError::InvalidOutput(OutputError {
        item: "log output".into(),
        problem,
    })
}
