//! Shared fixtures: the components built from `plugins/` and one runtime per test binary.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use wasmeter_core::field::{FieldValue, TopicState};
use wasmeter_core::sample::Sample;
use wasmeter_plugin::{Runtime, RuntimeConfig};

/// The path of a component built by `scripts/build-plugins.sh`.
pub fn component(name: &str) -> PathBuf {
    let dir = std::env::var_os("WASMETER_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/plugins/wasm32-wasip2/release")
        });
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the plugins first with scripts/build-plugins.sh",
        path.display()
    );
    path
}

/// One runtime shared by the tests of a binary (each engine reserves address space).
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::new(RuntimeConfig {
            max_instances: 64,
            ..RuntimeConfig::default()
        })
        .expect("runtime")
    })
}

/// Config pairs from string literals.
pub fn config(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The value of a label-matching sample, panicking with the samples seen if absent.
pub fn value_of(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .rev()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(v)))
        .unwrap_or_else(|| panic!("no sample {name}{labels:?} in {samples:#?}"))
        .value
}

/// A topic state from `(name, number)` pairs.
pub fn numbers(pairs: &[(&str, f64)]) -> TopicState {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), FieldValue::Number(*v)))
        .collect()
}
