//! # faulty-metric: misbehaves on purpose (world `metric`, TEST ONLY)
//!
//! Exercises the host's limits on time, logging, state and series. Never deploy it.
//!
//! ## Normal behaviour (`mode = ok`)
//!
//! Every `on-samples` and `on-tick` call returns one counter sample
//! `faulty_metric_calls_total` (value = calls so far in this instance). State: that
//! count (schema `faulty-metric`), so swap tests can check carry-over.
//!
//! ## Modes (config `mode`)
//!
//! | mode           | behaviour                                                                 |
//! |----------------|---------------------------------------------------------------------------|
//! | `ok`           | the normal behaviour above (default)                                      |
//! | `sleep`        | `std::thread::sleep(sleep_ms)` in each call listed in `sleep_in` (a WASI monotonic-clock wait: no guest code runs meanwhile), then behaves normally |
//! | `log-flood`    | each `on-samples`/`on-tick` writes `log_lines` lines of `log_line_bytes` bytes through `log_via`, then behaves normally |
//! | `big-state`    | `export-state` returns `state_bytes` bytes (all `0xAB`)                   |
//! | `export-trap`  | `export-state` panics (a trap): `faulty-metric: export-state trapped on purpose` |
//! | `series-flood` | each `on-samples`/`on-tick` also emits `series_per_tick` gauges `faulty_series{series="<n>"}`, with `n` new each time (distinct series without end) |
//!
//! ## Config
//!
//! | key               | default      | meaning                                                         |
//! |-------------------|--------------|-----------------------------------------------------------------|
//! | `mode`            | `ok`         | one of the modes above                                          |
//! | `sleep_ms`        | `30000`      | how long `sleep` sleeps                                         |
//! | `sleep_in`        | `on-samples` | comma list of calls that sleep: `init`, `on-samples`, `on-tick`, `export-state`, `import-state` |
//! | `log_lines`       | `10`         | lines per call in `log-flood`                                   |
//! | `log_line_bytes`  | `2097152`    | bytes per line in `log-flood` (2 MiB)                           |
//! | `log_via`         | `host`       | `host` (the `log` import, level warn), `stdout` or `stderr`     |
//! | `state_bytes`     | `15728640`   | size of the state `big-state` exports (15 MiB)                  |
//! | `series_per_tick` | `1000`       | new series per call in `series-flood`                           |
//!
//! Unknown modes, call names or `log_via` values fail `init` with a message naming them.

use std::io::Write;
use std::time::Duration;

use wasmeter_sdk::state::{StateReader, StateWriter};
use wasmeter_sdk::{Config, LogLevel, Metric, Plugin, PluginInfo, Sample, log};

const STATE_SCHEMA: &str = "faulty-metric";
const CALLS: [&str; 5] = [
    "init",
    "on-samples",
    "on-tick",
    "export-state",
    "import-state",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ok,
    Sleep,
    LogFlood,
    BigState,
    ExportTrap,
    SeriesFlood,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogVia {
    Host,
    Stdout,
    Stderr,
}

/// The faulty metric: its mode, parameters and counters.
pub struct FaultyMetric {
    mode: Mode,
    sleep: Duration,
    sleep_in: Vec<String>,
    log_lines: usize,
    log_line_bytes: usize,
    log_via: LogVia,
    state_bytes: usize,
    series_per_tick: usize,
    calls: u64,
    next_series: u64,
}

fn parse_mode(text: &str) -> Result<Mode, String> {
    Ok(match text {
        "ok" => Mode::Ok,
        "sleep" => Mode::Sleep,
        "log-flood" => Mode::LogFlood,
        "big-state" => Mode::BigState,
        "export-trap" => Mode::ExportTrap,
        "series-flood" => Mode::SeriesFlood,
        other => {
            return Err(format!(
                "config `mode`: `{other}` is not one of ok, sleep, log-flood, big-state, export-trap, series-flood"
            ));
        }
    })
}

fn parse_via(text: &str) -> Result<LogVia, String> {
    Ok(match text {
        "host" => LogVia::Host,
        "stdout" => LogVia::Stdout,
        "stderr" => LogVia::Stderr,
        other => {
            return Err(format!(
                "config `log_via`: `{other}` is not one of host, stdout, stderr"
            ));
        }
    })
}

impl FaultyMetric {
    /// Sleeps if the mode is `sleep` and `call` is listed in `sleep_in`.
    fn maybe_sleep(&self, call: &str) {
        if self.mode == Mode::Sleep && self.sleep_in.iter().any(|c| c == call) {
            std::thread::sleep(self.sleep);
        }
    }

    /// The output of `on-samples` and `on-tick`, after the mode's misbehaviour.
    fn call(&mut self, name: &str) -> Vec<Sample> {
        self.maybe_sleep(name);
        self.calls += 1;
        if self.mode == Mode::LogFlood {
            let line = "F".repeat(self.log_line_bytes);
            for _ in 0..self.log_lines {
                match self.log_via {
                    LogVia::Host => log::log(LogLevel::Warn, &line, &[("mode", "log-flood")]),
                    LogVia::Stdout => {
                        let _ = writeln!(std::io::stdout(), "{line}");
                    }
                    LogVia::Stderr => {
                        let _ = writeln!(std::io::stderr(), "{line}");
                    }
                }
            }
        }
        let mut out = vec![Sample::counter(
            "faulty_metric_calls_total",
            self.calls as f64,
        )];
        if self.mode == Mode::SeriesFlood {
            for _ in 0..self.series_per_tick {
                out.push(
                    Sample::gauge("faulty_series", 1.0)
                        .with_label("series", self.next_series.to_string()),
                );
                self.next_series += 1;
            }
        }
        out
    }
}

impl Plugin for FaultyMetric {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "faulty-metric",
            env!("CARGO_PKG_VERSION"),
            "TEST ONLY: misbehaves on purpose (sleep, log flood, big state, export trap, series flood)",
        )
        .emits(["faulty_metric_calls_total", "faulty_series"])
        .stateful(true)
    }

    fn init(config: &Config) -> Result<Self, String> {
        let sleep_in = config
            .list("sleep_in")
            .unwrap_or_else(|| vec!["on-samples".to_string()]);
        if let Some(bad) = sleep_in.iter().find(|c| !CALLS.contains(&c.as_str())) {
            return Err(format!(
                "config `sleep_in`: `{bad}` is not one of {}",
                CALLS.join(", ")
            ));
        }
        let metric = FaultyMetric {
            mode: parse_mode(config.get_or("mode", "ok"))?,
            sleep: Duration::from_millis(config.parse_or("sleep_ms", 30_000u64)?),
            sleep_in,
            log_lines: config.parse_or("log_lines", 10usize)?,
            log_line_bytes: config.parse_or("log_line_bytes", 2usize << 20)?,
            log_via: parse_via(config.get_or("log_via", "host"))?,
            state_bytes: config.parse_or("state_bytes", 15usize << 20)?,
            series_per_tick: config.parse_or("series_per_tick", 1000usize)?,
            calls: 0,
            next_series: 0,
        };
        metric.maybe_sleep("init");
        Ok(metric)
    }

    fn export_state(&self) -> Option<Vec<u8>> {
        self.maybe_sleep("export-state");
        match self.mode {
            Mode::ExportTrap => panic!("faulty-metric: export-state trapped on purpose"),
            Mode::BigState => Some(vec![0xAB; self.state_bytes]),
            _ => {
                let mut w = StateWriter::new(STATE_SCHEMA, 1);
                w.u64(self.calls);
                Some(w.finish())
            }
        }
    }

    fn import_state(&mut self, state: &[u8]) -> Result<(), String> {
        self.maybe_sleep("import-state");
        let mut r = StateReader::new(state, STATE_SCHEMA)?;
        let calls = r.u64()?;
        r.finish()?;
        self.calls = calls;
        Ok(())
    }
}

impl Metric for FaultyMetric {
    fn on_samples(&mut self, _samples: Vec<Sample>) -> Result<Vec<Sample>, String> {
        Ok(self.call("on-samples"))
    }

    fn on_tick(&mut self, _now_ms: i64) -> Result<Vec<Sample>, String> {
        Ok(self.call("on-tick"))
    }
}

wasmeter_sdk::export_metric!(FaultyMetric);
