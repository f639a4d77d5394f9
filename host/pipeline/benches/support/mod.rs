//! What the pipeline benches share: the built plugin components and their
//! instances.

use std::path::PathBuf;

use wasmeter_plugin::{
    CollectorWorld, Compiled, DeltaWorld, Instance, MetricWorld, Runtime, RuntimeConfig, World,
};

/// The plugins the benches run, compiled.
pub struct Plugins {
    /// The CSV collector.
    pub csv: Compiled<CollectorWorld>,
    /// The VWAP metric.
    pub vwap: Compiled<MetricWorld>,
    /// The field delta.
    pub delta: Compiled<DeltaWorld>,
    /// The exact delta of contract 0.1.0 (a call per topic), for comparison.
    #[allow(dead_code, reason = "only the pipeline-path bench compares it")]
    pub v1_delta: Compiled<DeltaWorld>,
}

/// A 2-worker runtime, like the machine the benchmarks are written for, and the
/// plugins loaded on it.
pub fn setup() -> (tokio::runtime::Runtime, Plugins) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let plugins = rt.block_on(async {
        let missing = "build the plugins first: scripts/build-plugins.sh";
        Plugins {
            csv: runtime
                .load(component("csv_collector"))
                .await
                .expect(missing),
            vwap: runtime.load(component("vwap")).await.expect(missing),
            delta: runtime.load(component("field_delta")).await.expect(missing),
            v1_delta: runtime.load(component("v1_delta")).await.expect(missing),
        }
    });
    (rt, plugins)
}

/// A component built by `scripts/build-plugins.sh`.
pub fn component(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/plugins/wasm32-wasip2/release")
        .join(format!("{name}.wasm"))
}

/// An initialised instance of `plugin` named `name` with `config`.
pub async fn instance<W: World>(
    plugin: &Compiled<W>,
    name: &str,
    config: &[(&str, &str)],
) -> Instance<W> {
    let config = config
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    plugin.instantiate(name, config).await.expect("instantiate")
}
