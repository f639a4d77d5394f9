//! # v3-metric: a metric plugin of contract 0.3.0 (TEST ONLY)
//!
//! Built with wit-bindgen from the frozen `wit/v0.3.0/`. For every sample it
//! receives it emits `<name>_doubled` with twice the value and the same labels.

wit_bindgen::generate!({
    world: "metric",
    path: "../../../wit/v0.3.0",
});

use exports::wasmeter::plugin::derive::Guest as DeriveGuest;
use exports::wasmeter::plugin::plugin::{Guest as PluginGuest, PluginInfo};
use wasmeter::plugin::types::{PluginKind, Sample};

struct V3Metric;

impl PluginGuest for V3Metric {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "v3-metric".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            kind: PluginKind::Metric,
            description: "TEST ONLY: a metric plugin of contract 0.3.0".to_string(),
            emits: vec!["*_doubled".to_string()],
            stateful: false,
        }
    }

    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn export_state() -> Option<Vec<u8>> {
        None
    }

    fn import_state(_state: Vec<u8>) -> Result<(), String> {
        Ok(())
    }
}

impl DeriveGuest for V3Metric {
    fn on_samples(samples: Vec<Sample>) -> Result<Vec<Sample>, String> {
        Ok(samples
            .into_iter()
            .filter(|s| !s.name.ends_with("_doubled"))
            .map(|s| Sample {
                name: format!("{}_doubled", s.name),
                value: s.value * 2.0,
                ..s
            })
            .collect())
    }

    fn on_tick(_now_ms: i64) -> Result<Vec<Sample>, String> {
        Ok(Vec::new())
    }
}

export!(V3Metric);
