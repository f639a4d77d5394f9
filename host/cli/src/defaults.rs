//! What `wasmeter serve` runs with no arguments: the built-in plugins (prebuilt
//! components shipped inside the binary, so a machine without a wasm toolchain
//! runs them) and a demo configuration around a generated market feed.
//!
//! The components in `host/cli/builtin/` are built from `plugins/` by
//! `scripts/builtin-plugins.sh --update`; CI runs it with `--check` to prove they
//! match their sources.

/// A plugin shipped inside the binary.
#[derive(Debug)]
pub struct Builtin {
    /// Its name in configs (`builtin = "csv-collector"`).
    pub name: &'static str,
    /// The component.
    pub bytes: &'static [u8],
}

macro_rules! builtins {
    ($($name:literal => $file:literal),* $(,)?) => {
        /// Every built-in plugin.
        pub const BUILTINS: &[Builtin] = &[
            $(Builtin { name: $name, bytes: include_bytes!(concat!("../builtin/", $file, ".wasm")) },)*
        ];
    };
}

builtins! {
    "csv-collector" => "csv_collector",
    "jsonl-collector" => "jsonl_collector",
    "system-collector" => "system_collector",
    "field-delta" => "field_delta",
    "counter-rate" => "counter_rate",
    "ewma" => "ewma",
    "rolling-minmax" => "rolling_minmax",
    "vwap" => "vwap",
    "threshold-alert" => "threshold_alert",
}

/// The built-in plugin called `name`.
pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// The names of the built-in plugins.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTINS.iter().map(|b| b.name).collect()
}

/// The demo configuration. Paths are relative to the demo's data directory, where
/// the demo feed writes `feed/trades.csv`, `feed/history.jsonl` and
/// `feed/ticker.jsonl`.
pub const DEMO_CONFIG: &str = r#"
data_dir = "."

[server]
listen = "127.0.0.1:8080"

[state]
field_ttl_ms = 15000

[plugins.csv]
builtin = "csv-collector"
# Every trade is also an event of the stream topic tape/<symbol>: each one delivered.
config = { tape_prefix = "tape" }

[plugins.history]
builtin = "jsonl-collector"
config = { topic_prefix = "history", extra_fields = "side", field = { symbol = "s", price = "p", qty = "q", ts = "T" } }

# Each line is a symbol's whole 24 h ticker (20 fields): topic ticker/<symbol>, whose
# updates carry only the 2-3 fields that changed.
[plugins.ticker]
builtin = "jsonl-collector"
config = { mode = "latest", topic_prefix = "ticker" }

[plugins.system]
builtin = "system-collector"

[plugins.delta]
builtin = "field-delta"
config = { epsilon = 0.000001 }

[plugins.rate]
builtin = "counter-rate"
config = { metrics = "trades_total,trade_volume_total" }

[plugins.vwap]
builtin = "vwap"
config = { window_ms = 60000 }

[plugins.ewma]
builtin = "ewma"
config = { metrics = "trade_price", alpha = 0.1 }

[plugins.minmax]
builtin = "rolling-minmax"
config = { metrics = "trade_price", window_ms = 60000 }

[plugins.cpu_alert]
builtin = "threshold-alert"
config = { metric = "system_cpu_usage_percent", op = ">", threshold = 90, for_samples = 3, name = "cpu_busy" }

[sources.trades]
type = "file"
include = ["feed/*.csv"]

[sources.history]
type = "file"
include = ["feed/history.jsonl"]

[sources.ticker]
type = "file"
include = ["feed/ticker.jsonl"]

[sources.system]
type = "system"
interval_ms = 1000

[pipelines.trades]
topics = ["trades", "tape"]
sources = ["trades"]
collector = "csv"
metrics = ["rate", "vwap", "ewma", "minmax"]
delta = "delta"

[pipelines.history]
sources = ["history"]
collector = "history"
delta = "delta"
# The same symbols as the CSV feed: its series are told apart by this label.
labels = { feed = "history" }

[pipelines.ticker]
topics = ["ticker"]
sources = ["ticker"]
collector = "ticker"
delta = "delta"

[pipelines.system]
sources = ["system"]
collector = "system"
metrics = ["cpu_alert"]
delta = "delta"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_config_is_valid() {
        crate::config::Config::parse(
            DEMO_CONFIG,
            "built-in default",
            std::path::Path::new("/tmp/demo"),
        )
        .unwrap();
    }

    #[test]
    fn builtins_are_components() {
        for b in BUILTINS {
            assert_eq!(
                &b.bytes[..8],
                b"\0asm\x0d\0\x01\0",
                "{} is not a component",
                b.name
            );
        }
    }
}
