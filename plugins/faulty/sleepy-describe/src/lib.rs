//! # sleepy-describe: sleeps in `describe` (world `collector`, TEST ONLY)
//!
//! `describe` (the plugin's self-description, asked for when the host loads the
//! component) sleeps `sleep_ms` (default 30,000 ms; read from the host config, which
//! is empty when the host loads a component, so the default applies there) with
//! `std::thread::sleep`, a WASI monotonic-clock wait during which no guest code
//! runs. The host must abandon the load within about its call timeout. Everything
//! else is a collector that emits nothing. Never deploy it.

use std::time::Duration;

use wasmeter_sdk::{CollectOutput, Collector, Config, Plugin, PluginInfo};

/// A collector that emits nothing, slowly described.
pub struct SleepyDescribe;

impl Plugin for SleepyDescribe {
    fn info() -> PluginInfo {
        let sleep_ms = Config::from_host()
            .parse_or("sleep_ms", 30_000u64)
            .unwrap_or(30_000);
        std::thread::sleep(Duration::from_millis(sleep_ms));
        PluginInfo::new(
            "sleepy-describe",
            env!("CARGO_PKG_VERSION"),
            "TEST ONLY: sleeps in describe",
        )
    }

    fn init(_config: &Config) -> Result<Self, String> {
        Ok(SleepyDescribe)
    }
}

impl Collector for SleepyDescribe {
    fn collect(&mut self, _source: &str, _chunk: &[u8]) -> Result<CollectOutput, String> {
        Ok(CollectOutput::new())
    }
}

wasmeter_sdk::export_collector!(SleepyDescribe);
