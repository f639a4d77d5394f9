//! The traits a plugin implements.

use crate::{
    CollectOutput, Config, Delta, Field, FieldNames, IndexedField, MetricKind, Points, Sample,
};

/// A plugin's description of itself (the `plugin-info` record without `kind`, which the
/// `export_*!` macro fills in).
#[derive(Debug, Clone, PartialEq)]
pub struct PluginInfo {
    /// Short identifier, `[a-z0-9-]+`.
    pub name: String,
    /// Semantic version of the plugin itself, usually `env!("CARGO_PKG_VERSION")`.
    pub version: String,
    /// One line for humans.
    pub description: String,
    /// Metric names and topic patterns (`trades/*`) the plugin may emit.
    pub emits: Vec<String>,
    /// True if `export_state`/`import_state` carry state across a hot swap.
    pub stateful: bool,
}

impl PluginInfo {
    /// A stateless plugin that declares no output yet.
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        PluginInfo {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            emits: Vec::new(),
            stateful: false,
        }
    }

    /// Declares the metric names and topic patterns the plugin may emit.
    pub fn emits<I, S>(mut self, emits: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.emits.extend(emits.into_iter().map(Into::into));
        self
    }

    /// Declares whether the plugin carries state across a hot swap.
    pub fn stateful(mut self, stateful: bool) -> Self {
        self.stateful = stateful;
        self
    }
}

/// The life cycle shared by every plugin (the `wasmeter:plugin/plugin` interface).
///
/// The host calls, in order: [`info`](Plugin::info) (`describe`), [`init`](Plugin::init),
/// optionally [`import_state`](Plugin::import_state) (after a hot swap), then the world's
/// functions; [`export_state`](Plugin::export_state) before the plugin is swapped out.
pub trait Plugin: Sized + 'static {
    /// Describes the plugin. Called before `init`: it has no instance, but may read the
    /// configuration with [`Config::from_host`].
    fn info() -> PluginInfo;

    /// Creates the instance from its configuration. An error refuses the plugin: name the
    /// key and the problem (the errors of [`Config::parse`] do).
    fn init(config: &Config) -> Result<Self, String>;

    /// The state a newer version can continue from after a hot swap. `None` (the default)
    /// for stateless plugins.
    fn export_state(&self) -> Option<Vec<u8>> {
        None
    }

    /// Restores state produced by `export_state` of this or an older version. An error
    /// means the state was not understood; the host then keeps the fresh instance. The
    /// default ignores the state.
    fn import_state(&mut self, state: &[u8]) -> Result<(), String> {
        let _ = state;
        Ok(())
    }
}

/// A collector: turns chunks of a source into samples and topic updates.
pub trait Collector: Plugin {
    /// Called for each chunk of `source`. The chunk holds only whole records, each ending in
    /// `\n` (see [`lines`](crate::lines)). Report bad records in
    /// [`CollectOutput::errors`]; an `Err` fails the whole chunk.
    fn collect(&mut self, source: &str, chunk: &[u8]) -> Result<CollectOutput, String>;
}

/// A delta algorithm: computes and applies minimal changes between states of a topic.
pub trait DeltaAlgorithm: Plugin {
    /// The change from `previous` to `current` (both complete states of `topic`, sorted by
    /// field name). Merge-patch semantics: `changed` fields are set, `removed` deleted.
    fn diff(
        &mut self,
        topic: &str,
        previous: Vec<Field>,
        current: Vec<Field>,
    ) -> Result<Delta, String>;

    /// [`DeltaAlgorithm::diff`] as the host calls it: the fields of both states
    /// refer by number to the call's `names` (every name once per call). The
    /// default names every field and calls `diff`; an algorithm that compares
    /// fields by number ([`FieldNames::cmp`]) and names only what it returns
    /// copies no other name.
    fn diff_indexed(
        &mut self,
        topic: &str,
        names: &FieldNames,
        previous: Vec<IndexedField>,
        current: Vec<IndexedField>,
    ) -> Result<Delta, String> {
        let (previous, current) = (names.named(previous)?, names.named(current)?);
        self.diff(topic, previous, current)
    }

    /// Applies `delta` to `previous`; the host checks that this reproduces the state
    /// subscribers must end up with.
    fn apply(&mut self, previous: Vec<Field>, delta: Delta) -> Result<Vec<Field>, String>;
}

/// A derived metric: turns samples into more samples; may keep state.
pub trait Metric: Plugin {
    /// Called with each batch of samples the pipeline produced, in order: those
    /// of the series [`Metric::reads`]. (Through [`Metric::on_points`], which
    /// the host calls.)
    fn on_samples(&mut self, samples: Vec<Sample>) -> Result<Vec<Sample>, String>;

    /// [`Metric::on_samples`] as the host calls it: the samples arrive as
    /// [`Points`] of series the host declared once, each named by a number that
    /// stays the same from call to call, and what the metric emits is written
    /// into `out` with [`CollectOutput::sample`], or, for a series registered
    /// once with [`CollectOutput::series`], with [`CollectOutput::point`]. The
    /// default makes whole samples of the points, calls `on_samples` and writes
    /// what it returns. A metric that keeps what it needs per input series by
    /// its number and writes registered series copies and compares no name or
    /// label per sample; its `on_samples` can then be
    /// `PointFeed::default().call(self, samples)`.
    fn on_points(&mut self, points: Points<'_>, out: &mut CollectOutput) -> Result<(), String> {
        let emitted = self.on_samples(points.samples())?;
        crate::derive::write_samples(&emitted, out);
        Ok(())
    }

    /// Whether the plugin reads samples named `name` of `kind`. The SDK asks once
    /// per series the host declares to the instance and hands `on_samples` only
    /// the samples of the series read, so the others cost no copies. The answer
    /// must not change for the life of the instance. The default reads every
    /// sample.
    fn reads(&self, name: &str, kind: MetricKind) -> bool {
        let _ = (name, kind);
        true
    }

    /// Called periodically with the host's wall-clock time (Unix ms). The default emits
    /// nothing.
    fn on_tick(&mut self, now_ms: i64) -> Result<Vec<Sample>, String> {
        let _ = now_ms;
        Ok(Vec::new())
    }
}
