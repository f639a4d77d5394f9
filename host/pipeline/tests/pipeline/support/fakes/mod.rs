//! In-process plugins with the failure accounting of a wasm instance (through
//! `HealthHandle::count_call`): quarantined after `quarantine_after` consecutive
//! failures, failing at once while quarantined.
//!
//! Records are lines `topic,seq` (e.g. `feed/t0,3`). The collector turns each into
//! a topic update (`seq` = seq) and a sample `records{topic=<last part>}`; a line
//! without a comma is a malformed record. Every record of a successful call is
//! counted in a [`Ledger`] shared by all versions of the collector.

/// The `PluginCalls` accessors of a fake with the fields `name`, `info`, `limits`
/// and `health`.
macro_rules! identity {
    () => {
        fn name(&self) -> &str {
            &self.name
        }

        fn info(&self) -> &PluginInfo {
            &self.info
        }

        fn limits(&self) -> &PluginLimits {
            &self.limits
        }

        fn health_handle(&self) -> HealthHandle {
            self.health.clone()
        }
    };
}

mod collector;
mod delta;
mod metric;

use std::collections::HashMap;
use std::sync::Mutex;

use wasmeter_core::plugin::{PluginInfo, PluginKind};
use wasmeter_plugin::PluginLimits;

pub use collector::FakeCollector;
pub use delta::FakeDelta;
pub use metric::FakeMetric;

/// How many times each record came out of a successful `collect` call.
#[derive(Debug, Default)]
pub struct Ledger(Mutex<HashMap<String, u32>>);

impl Ledger {
    fn count(&self, records: &[String]) {
        let mut map = self.0.lock().unwrap();
        for r in records {
            *map.entry(r.clone()).or_default() += 1;
        }
    }

    /// Times `record` (a line without its newline) was collected.
    pub fn times(&self, record: &str) -> u32 {
        self.0.lock().unwrap().get(record).copied().unwrap_or(0)
    }

    /// Records collected more than once.
    pub fn repeated(&self) -> Vec<String> {
        let map = self.0.lock().unwrap();
        let mut r: Vec<_> = map
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, _)| k.clone())
            .collect();
        r.sort();
        r
    }
}

fn info(name: &str, kind: PluginKind, stateful: bool) -> PluginInfo {
    PluginInfo {
        name: name.to_string(),
        version: "0.1.0".into(),
        kind,
        description: "in-process test plugin".into(),
        emits: Vec::new(),
        stateful,
    }
}

fn limits(quarantine_after: u32) -> PluginLimits {
    PluginLimits {
        quarantine_after,
        ..PluginLimits::default()
    }
}
