//! The calls a pipeline makes on its plugins, as object-safe traits: the
//! pipeline holds `Box<dyn CollectorCalls>`, `Box<dyn MetricCalls>` and
//! `Box<dyn DeltaCalls>`, implemented here for the supervised wasm instances and
//! elsewhere by anything that behaves like one (in-process plugins in tests).
//!
//! An implementation keeps the failure accounting the pipeline relies on: every
//! failed call counts on its [`HealthHandle`], the plugin is quarantined after
//! `quarantine_after` consecutive failures (see [`Instance`]), and while it is
//! quarantined its calls fail at once with [`CallError::Quarantined`] (an
//! instance still alive may export its state).
//!
//! Asynchronous calls return a [`BoxFuture`]: one allocation per call, nothing
//! next to a call into a wasm component; inputs are borrowed, never copied.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use wasmeter_core::plugin::PluginInfo;
use wasmeter_core::sample_batch::SampleBatch;
use wasmeter_core::update::CollectOutput;
use wasmeter_plugin::{
    CallError, CollectorWorld, DeltaWorld, Deltas, HealthHandle, Instance, MetricWorld,
    PluginLimits, TopicDiff, World,
};

/// What every plugin of a pipeline offers, whatever its role.
pub trait PluginCalls: Send {
    /// The host's name for the instance (config key), used in logs and checkpoints.
    fn name(&self) -> &str;

    /// What the plugin says about itself (name, version, `stateful`, `emits`).
    fn info(&self) -> &PluginInfo;

    /// The limits it runs under (the pipeline enforces `max_topics`, `max_series`).
    fn limits(&self) -> &PluginLimits;

    /// A live handle on its health counters; quarantining or releasing through it
    /// applies to the plugin.
    fn health_handle(&self) -> HealthHandle;

    /// The host refused the output of the last call: counts as a failed call
    /// (see [`Instance::record_failure`]).
    fn record_failure(&mut self, message: &str);

    /// Its state, for a checkpoint or a new version; `None` if it has none.
    fn export_state(&mut self) -> BoxFuture<'_, Result<Option<Vec<u8>>, CallError>>;

    /// Restores a state exported by this or another version of the plugin.
    fn import_state<'a>(&'a mut self, state: &'a [u8]) -> BoxFuture<'a, Result<(), CallError>>;
}

/// A collector: chunks of whole records -> samples and topic updates.
pub trait CollectorCalls: PluginCalls {
    /// Hands the plugin a chunk of whole records from `source`; bad records come
    /// back in the output's `errors`, good ones still count.
    fn collect<'a>(
        &'a mut self,
        source: &'a str,
        chunk: &'a [u8],
    ) -> BoxFuture<'a, Result<CollectOutput, CallError>>;
}

/// A metric plugin: samples and ticks -> derived samples.
pub trait MetricCalls: PluginCalls {
    /// Feeds a batch of samples; returns the derived samples.
    fn on_samples<'a>(
        &'a mut self,
        samples: &'a SampleBatch,
    ) -> BoxFuture<'a, Result<SampleBatch, CallError>>;

    /// A periodic tick at `now_ms` (Unix ms); returns time-based output.
    fn on_tick(&mut self, now_ms: i64) -> BoxFuture<'_, Result<SampleBatch, CallError>>;
}

/// A delta plugin: states of topics -> the changes between them.
pub trait DeltaCalls: PluginCalls {
    /// The deltas of `changes`, one per change, in order (see
    /// [`Instance::diff_many`]): `Err` if the call failed as a whole, an inner
    /// `Err` for a topic the plugin refused.
    fn diff_many<'a>(
        &'a mut self,
        changes: &'a [TopicDiff<'a>],
    ) -> BoxFuture<'a, Result<Deltas, CallError>>;
}

impl<W: World> PluginCalls for Instance<W>
where
    Instance<W>: Send,
{
    fn name(&self) -> &str {
        Instance::name(self)
    }

    fn info(&self) -> &PluginInfo {
        &self.plugin().meta().info
    }

    fn limits(&self) -> &PluginLimits {
        Instance::limits(self)
    }

    fn health_handle(&self) -> HealthHandle {
        Instance::health_handle(self)
    }

    fn record_failure(&mut self, message: &str) {
        Instance::record_failure(self, message);
    }

    fn export_state(&mut self) -> BoxFuture<'_, Result<Option<Vec<u8>>, CallError>> {
        Instance::export_state(self).boxed()
    }

    fn import_state<'a>(&'a mut self, state: &'a [u8]) -> BoxFuture<'a, Result<(), CallError>> {
        Instance::import_state(self, state).boxed()
    }
}

impl CollectorCalls for Instance<CollectorWorld> {
    fn collect<'a>(
        &'a mut self,
        source: &'a str,
        chunk: &'a [u8],
    ) -> BoxFuture<'a, Result<CollectOutput, CallError>> {
        Instance::collect(self, source, chunk).boxed()
    }
}

impl MetricCalls for Instance<MetricWorld> {
    fn on_samples<'a>(
        &'a mut self,
        samples: &'a SampleBatch,
    ) -> BoxFuture<'a, Result<SampleBatch, CallError>> {
        Instance::on_samples(self, samples).boxed()
    }

    fn on_tick(&mut self, now_ms: i64) -> BoxFuture<'_, Result<SampleBatch, CallError>> {
        Instance::on_tick(self, now_ms).boxed()
    }
}

impl DeltaCalls for Instance<DeltaWorld> {
    fn diff_many<'a>(
        &'a mut self,
        changes: &'a [TopicDiff<'a>],
    ) -> BoxFuture<'a, Result<Deltas, CallError>> {
        Instance::diff_many(self, changes).boxed()
    }
}
