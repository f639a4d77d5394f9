//! Changing a running pipeline's plugins. Commands reach the pipeline's task on a
//! bounded channel and are applied between two chunks: every record is processed
//! by exactly one version of each plugin, so a swap neither loses nor repeats an
//! update. Everything slow (compiling, instantiating, `init`, a smoke test) happens
//! before the command is sent; the task only moves state and swaps the instance.

use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use wasmeter_core::plugin::PluginKind;

use crate::calls::{CollectorCalls, DeltaCalls, MetricCalls, PluginCalls};

/// An initialised instance to put in a pipeline.
pub enum Replacement {
    /// Replaces the collector of the same name.
    Collector(Box<dyn CollectorCalls>),
    /// Replaces the metric plugin of the same name, or joins the end of the chain.
    Metric(Box<dyn MetricCalls>),
    /// Replaces the delta plugin of the same name, or becomes the pipeline's delta
    /// plugin if it has none.
    Delta(Box<dyn DeltaCalls>),
}

impl Replacement {
    /// A new collector (a wasm instance, or anything implementing its calls).
    pub fn collector(instance: impl CollectorCalls + 'static) -> Self {
        Self::Collector(Box::new(instance))
    }

    /// A new metric plugin.
    pub fn metric(instance: impl MetricCalls + 'static) -> Self {
        Self::Metric(Box::new(instance))
    }

    /// A new delta plugin.
    pub fn delta(instance: impl DeltaCalls + 'static) -> Self {
        Self::Delta(Box::new(instance))
    }

    /// The new instance, whatever its role.
    fn plugin(&self) -> &dyn PluginCalls {
        match self {
            Self::Collector(i) => i.as_ref(),
            Self::Metric(i) => i.as_ref(),
            Self::Delta(i) => i.as_ref(),
        }
    }

    /// The host's name for the instance.
    pub fn name(&self) -> &str {
        self.plugin().name()
    }

    /// What the new version says it emits (metric names, topic patterns).
    pub fn emits(&self) -> &[String] {
        &self.plugin().info().emits
    }

    /// Its role.
    pub fn kind(&self) -> PluginKind {
        match self {
            Self::Collector(_) => PluginKind::Collector,
            Self::Metric(_) => PluginKind::Metric,
            Self::Delta(_) => PluginKind::Delta,
        }
    }
}

/// What the pipeline's task is asked to do.
pub enum Command {
    /// Puts an instance in place (see [`Replacement`]).
    Swap {
        /// The new instance, initialised and smoke-tested.
        replacement: Box<Replacement>,
        /// Carry the old instance's state over (export, then import) when both are
        /// stateful; `false` starts the new one empty.
        carry_state: bool,
        /// The outcome.
        reply: oneshot::Sender<Result<Swapped, SwapError>>,
    },
    /// Takes a metric or delta plugin out of the pipeline.
    Remove {
        /// The host's name for the instance.
        name: String,
        /// The removed instance (to be dropped by the caller, off the pipeline's task).
        reply: oneshot::Sender<Result<Retired, SwapError>>,
    },
}

/// An instance taken out of a pipeline. Dropping a store returns its memory to the
/// pool, which is work the pipeline's task leaves to whoever holds this.
pub struct Retired(#[allow(dead_code, reason = "held only to be dropped later")] Box<dyn Send>);

impl Retired {
    pub(crate) fn new<P: PluginCalls + ?Sized + 'static>(instance: Box<P>) -> Self {
        Self(Box::new(instance))
    }
}

/// What happened to the plugin state in a swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateCarry {
    /// One of the two versions keeps no state.
    Stateless,
    /// The state moved over; its size.
    Carried {
        /// Exported bytes.
        bytes: usize,
    },
    /// The old instance had nothing to export.
    Empty,
    /// The new instance starts empty, as asked.
    Fresh,
    /// The old instance could not export (it is failing); the new one starts empty.
    Lost {
        /// Why.
        reason: String,
    },
}

/// A completed swap.
pub struct Swapped {
    /// How long the pipeline's task was busy with the swap (nothing else ran).
    pub pause: Duration,
    /// The state's fate.
    pub state: StateCarry,
    /// The replaced instance, if one was replaced (none when a plugin was added).
    pub retired: Option<Retired>,
}

/// Why a pipeline refused a command; the old instance keeps running.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SwapError {
    /// The pipeline has no such plugin in that role.
    #[error("pipeline `{pipeline}` has no {kind} plugin named `{name}`")]
    NotFound {
        /// The pipeline.
        pipeline: String,
        /// The role.
        kind: PluginKind,
        /// The host's name looked for.
        name: String,
    },
    /// Collectors can be replaced, never removed.
    #[error("pipeline `{pipeline}` needs its collector `{name}`; swap it or remove the pipeline")]
    CollectorNeeded {
        /// The pipeline.
        pipeline: String,
        /// The collector's name.
        name: String,
    },
    /// The pipeline has a delta plugin under another name.
    #[error("pipeline `{pipeline}` already has the delta plugin `{existing}`")]
    DeltaTaken {
        /// The pipeline.
        pipeline: String,
        /// Its delta plugin.
        existing: String,
    },
    /// The new version refused the old version's state.
    #[error(
        "the new version refused the old version's state ({reason}); swap with a fresh state to start it empty"
    )]
    ImportRefused {
        /// The new version's error.
        reason: String,
    },
    /// The pipeline has stopped.
    #[error("pipeline `{0}` is not running")]
    Stopped(String),
}

/// Moves the state of `old` into `new` (if asked and both are stateful), then puts
/// `new` in `old`'s place. On error nothing changed.
pub(crate) async fn replace<P: PluginCalls + ?Sized + 'static>(
    slot: &mut Box<P>,
    mut new: Box<P>,
    carry_state: bool,
    started: Instant,
) -> Result<Swapped, SwapError> {
    let both_stateful = slot.info().stateful && new.info().stateful;
    let state = if !both_stateful {
        StateCarry::Stateless
    } else if !carry_state {
        StateCarry::Fresh
    } else {
        match slot.export_state().await {
            Ok(Some(state)) => {
                new.import_state(&state)
                    .await
                    .map_err(|e| SwapError::ImportRefused {
                        reason: e.to_string(),
                    })?;
                StateCarry::Carried { bytes: state.len() }
            }
            Ok(None) => StateCarry::Empty,
            Err(e) => StateCarry::Lost {
                reason: e.to_string(),
            },
        }
    };
    let old = std::mem::replace(slot, new);
    Ok(Swapped {
        pause: started.elapsed(),
        state,
        retired: Some(Retired::new(old)),
    })
}
