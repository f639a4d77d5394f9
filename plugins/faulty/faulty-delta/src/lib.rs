//! # faulty-delta: misbehaves on purpose (world `delta`, TEST ONLY)
//!
//! Exercises the host's wall-clock bound on `diff` and `apply`. Never deploy it.
//!
//! ## Behaviour
//!
//! | call    | trigger                                    | behaviour                                      |
//! |---------|--------------------------------------------|------------------------------------------------|
//! | `diff`  | the topic is `sleep`                       | `std::thread::sleep(sleep_ms)` (a WASI monotonic-clock wait: no guest code runs meanwhile), then as below |
//! | `diff`  | any other topic                            | `changed` = every field of the current state, `removed` = none |
//! | `apply` | the delta changes a field named `sleep`    | sleeps `sleep_ms`, then as below               |
//! | `apply` | otherwise                                  | the previous fields, overwritten and extended by `changed`, minus `removed` (sorted) |
//!
//! ## Config
//!
//! | key        | default | meaning                    |
//! |------------|---------|----------------------------|
//! | `sleep_ms` | `30000` | how long a triggered call sleeps |
//!
//! Stateless.

use std::collections::BTreeMap;
use std::time::Duration;

use wasmeter_sdk::{Config, Delta, DeltaAlgorithm, Field, Plugin, PluginInfo};

/// The faulty delta and how long it sleeps when triggered.
pub struct FaultyDelta {
    sleep: Duration,
}

impl Plugin for FaultyDelta {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "faulty-delta",
            env!("CARGO_PKG_VERSION"),
            "TEST ONLY: sleeps in diff or apply when triggered",
        )
    }

    fn init(config: &Config) -> Result<Self, String> {
        Ok(FaultyDelta {
            sleep: Duration::from_millis(config.parse_or("sleep_ms", 30_000u64)?),
        })
    }
}

impl DeltaAlgorithm for FaultyDelta {
    fn diff(
        &mut self,
        topic: &str,
        _previous: Vec<Field>,
        current: Vec<Field>,
    ) -> Result<Delta, String> {
        if topic == "sleep" {
            std::thread::sleep(self.sleep);
        }
        Ok(Delta {
            changed: current,
            removed: Vec::new(),
        })
    }

    fn apply(&mut self, previous: Vec<Field>, delta: Delta) -> Result<Vec<Field>, String> {
        if delta.changed.iter().any(|f| f.name == "sleep") {
            std::thread::sleep(self.sleep);
        }
        let mut fields: BTreeMap<String, Field> =
            previous.into_iter().map(|f| (f.name.clone(), f)).collect();
        for f in delta.changed {
            fields.insert(f.name.clone(), f);
        }
        for name in &delta.removed {
            fields.remove(name);
        }
        Ok(fields.into_values().collect())
    }
}

wasmeter_sdk::export_delta!(FaultyDelta);
