//! # faulty-collector: misbehaves on purpose (world `collector`, TEST ONLY)
//!
//! Exercises the host's sandbox and supervisor. Never deploy it.
//!
//! ## Normal lines
//!
//! Every non-empty line that is not a trigger counts. A chunk with counted lines emits,
//! once, the counter sample `faulty_lines_total` (value = running count) and the topic
//! update `faulty/lines` with field `count`.
//!
//! ## Trigger lines (exact line content)
//!
//! | line          | behaviour                                                            |
//! |---------------|----------------------------------------------------------------------|
//! | `loop`        | loops forever (the per-call deadline must stop it)                   |
//! | `hog`         | allocates and touches 1 MiB blocks until the allocator fails (memory cap) |
//! | `leak`        | keeps 1 MiB it never gives back (not part of its exported state)     |
//! | `panic`       | `panic!("faulty plugin panicked on purpose")`                        |
//! | `unreachable` | executes the `unreachable` instruction                               |
//! | `oversize`    | adds `oversize_count` (2,000,000) samples to the output              |
//! | `hugename`    | adds a sample whose name is 1 MiB long                               |
//! | `nan`         | adds a sample whose value is NaN                                     |
//! | `badname`     | adds a sample named `bad name!`                                      |
//! | `error`       | fails the call: `Err("faulty plugin failed on purpose")`             |
//! | `escape`      | tries to leave the sandbox and reports each attempt as a record error: ``read /etc/passwd: error: ...``, ``connect 127.0.0.1:1: error: ...``, ``env: N variables`` |
//! | `sleep`       | `std::thread::sleep(sleep_ms)`: a WASI monotonic-clock wait, no guest code runs meanwhile (the host's wall-clock bound must stop it) |
//! | `forge`       | adds a topic update to `forge_topic` (a topic another plugin or the host owns) with field `forged` = 1 |
//! | `long-labels` | adds a gauge `faulty_long_labels` with `label_count` labels `l0`, `l1`, ... of `label_bytes` bytes each (by default 16 x 4000 bytes: a series topic name of ~64 KB) |
//! | `log-flood`   | writes `log_lines` lines of `log_line_bytes` bytes through the `log` import (level warn) |
//! | `series:NAME` | adds the gauge `faulty_series{name="NAME"}` = the line's number, with `CollectOutput::sample` (a declared series and a point, contract 0.3.0) |
//!
//! ## Config
//!
//! | key              | default     | meaning                                                  |
//! |------------------|-------------|----------------------------------------------------------|
//! | `init`           | `ok`        | `panic`, `error`, `loop` or `sleep` (for `sleep_ms`) misbehave in `init` instead |
//! | `version`        | `1.0.0`     | reported as the plugin's version (tells swaps apart)      |
//! | `oversize_count` | `2000000`   | samples produced by `oversize` (~110 bytes of guest memory each: mind the memory cap) |
//! | `sleep_ms`       | `30000`     | how long `sleep` (and `init = sleep`) sleeps              |
//! | `forge_topic`    | `trades/BTC-USD` | the topic `forge` writes to (e.g. `_wasmeter/plugins/csv`) |
//! | `label_count`    | `16`        | labels of the `long-labels` sample                        |
//! | `label_bytes`    | `4000`      | bytes of each `long-labels` label value                   |
//! | `log_lines`      | `10`        | lines written by `log-flood`                              |
//! | `log_line_bytes` | `2097152`   | bytes per `log-flood` line (2 MiB)                        |
//!
//! State: the line count (export/import), so swap tests can check carry-over.

use std::hint::black_box;
use std::time::Duration;

use wasmeter_sdk::state::{StateReader, StateWriter};
use wasmeter_sdk::{
    CollectOutput, Collector, Config, LogLevel, MetricKind, Plugin, PluginInfo, Sample,
    TopicUpdate, lines, log,
};

const STATE_SCHEMA: &str = "faulty-collector";

/// The faulty collector and its line count.
pub struct FaultyCollector {
    count: u64,
    /// What `leak` keeps.
    leaked: Vec<Vec<u8>>,
    oversize_count: usize,
    sleep: Duration,
    forge_topic: String,
    label_count: usize,
    label_bytes: usize,
    log_lines: usize,
    log_line_bytes: usize,
}

/// Never returns, and the optimiser cannot prove it does nothing.
fn spin_forever() -> ! {
    let mut n: u64 = 0;
    loop {
        n = black_box(n).wrapping_add(1);
    }
}

/// Allocates and touches memory until allocation fails (which aborts: a trap).
fn hog_memory() -> ! {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = Vec::<u8>::with_capacity(1 << 20);
        // Touch every page so the memory is really used.
        block.resize(1 << 20, 0xA5);
        blocks.push(black_box(block));
        black_box(&blocks);
    }
}

/// Executes wasm's `unreachable` instruction (a trap, not a Rust panic).
fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::unreachable()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::process::abort()
    }
}

/// Tries to read a file, open a connection and list the environment; one message each.
/// In the host's sandbox the first two fail and the environment is empty.
fn escape_attempts() -> [String; 3] {
    let read = match std::fs::read("/etc/passwd") {
        Ok(bytes) => format!("read /etc/passwd: succeeded ({} bytes)", bytes.len()),
        Err(e) => format!("read /etc/passwd: error: {e}"),
    };
    let connect = match std::net::TcpStream::connect("127.0.0.1:1") {
        Ok(_) => "connect 127.0.0.1:1: succeeded".to_string(),
        Err(e) => format!("connect 127.0.0.1:1: error: {e}"),
    };
    let env = format!("env: {} variables", std::env::vars_os().count());
    [read, connect, env]
}

impl Plugin for FaultyCollector {
    fn info() -> PluginInfo {
        let version = Config::from_host().get_or("version", "1.0.0").to_string();
        PluginInfo::new(
            "faulty-collector",
            version,
            "TEST ONLY: misbehaves on purpose (loop, hog, panic, oversize output, ...)",
        )
        .emits(["faulty_lines_total", "faulty/lines"])
        .stateful(true)
    }

    fn init(config: &Config) -> Result<Self, String> {
        let sleep = Duration::from_millis(config.parse_or("sleep_ms", 30_000u64)?);
        match config.get_or("init", "ok") {
            "ok" => {}
            "panic" => panic!("faulty plugin panicked on purpose in init"),
            "error" => return Err("faulty plugin failed on purpose in init".to_string()),
            "loop" => spin_forever(),
            "sleep" => std::thread::sleep(sleep),
            other => {
                return Err(format!(
                    "config `init`: `{other}` is not one of ok, panic, error, loop, sleep"
                ));
            }
        }
        Ok(FaultyCollector {
            count: 0,
            leaked: Vec::new(),
            oversize_count: config.parse_or("oversize_count", 2_000_000usize)?,
            sleep,
            forge_topic: config.get_or("forge_topic", "trades/BTC-USD").to_string(),
            label_count: config.parse_or("label_count", 16usize)?,
            label_bytes: config.parse_or("label_bytes", 4000usize)?,
            log_lines: config.parse_or("log_lines", 10usize)?,
            log_line_bytes: config.parse_or("log_line_bytes", 2usize << 20)?,
        })
    }

    fn export_state(&self) -> Option<Vec<u8>> {
        let mut w = StateWriter::new(STATE_SCHEMA, 1);
        w.u64(self.count);
        Some(w.finish())
    }

    fn import_state(&mut self, state: &[u8]) -> Result<(), String> {
        let mut r = StateReader::new(state, STATE_SCHEMA)?;
        let count = r.u64()?;
        r.finish()?;
        self.count = count;
        Ok(())
    }
}

impl Collector for FaultyCollector {
    fn collect(&mut self, _source: &str, chunk: &[u8]) -> Result<CollectOutput, String> {
        let mut out = CollectOutput::new();
        // Counted lines join the state only if the call succeeds: a failed call is
        // retried record by record, and must not have counted anything.
        let mut counted = 0;
        for line in lines::iter(chunk) {
            let line = match line {
                Ok(line) => line,
                Err(e) => {
                    out.errors.push(e);
                    continue;
                }
            };
            match line.text {
                "" => {}
                "loop" => spin_forever(),
                "hog" => hog_memory(),
                "leak" => self.leaked.push(black_box(vec![1u8; 1 << 20])),
                "panic" => panic!("faulty plugin panicked on purpose"),
                "unreachable" => trap(),
                "oversize" => out.samples.extend(
                    (0..self.oversize_count).map(|i| Sample::gauge("faulty_oversize", i as f64)),
                ),
                "hugename" => out.samples.push(Sample::gauge("a".repeat(1 << 20), 1.0)),
                "nan" => out.samples.push(Sample::gauge("faulty_nan", f64::NAN)),
                "badname" => out.samples.push(Sample::gauge("bad name!", 1.0)),
                "error" => return Err("faulty plugin failed on purpose".to_string()),
                "sleep" => std::thread::sleep(self.sleep),
                "forge" => out
                    .updates
                    .push(TopicUpdate::new(self.forge_topic.as_str()).field("forged", 1.0)),
                "long-labels" => {
                    let mut sample = Sample::gauge("faulty_long_labels", 1.0);
                    for i in 0..self.label_count {
                        let value = char::from(b'a' + (i % 26) as u8)
                            .to_string()
                            .repeat(self.label_bytes);
                        sample = sample.with_label(format!("l{i}"), value);
                    }
                    out.samples.push(sample);
                }
                "log-flood" => {
                    let text = "F".repeat(self.log_line_bytes);
                    for _ in 0..self.log_lines {
                        log::log(LogLevel::Warn, &text, &[("mode", "log-flood")]);
                    }
                }
                "escape" => out
                    .errors
                    .extend(escape_attempts().into_iter().map(|m| line.error(m))),
                text if text.starts_with("series:") => out.sample(
                    MetricKind::Gauge,
                    "faulty_series",
                    &[("name", &text["series:".len()..])],
                    line.number as f64,
                    0,
                ),
                _ => counted += 1,
            }
        }
        if counted > 0 {
            self.count += counted;
            out.samples
                .push(Sample::counter("faulty_lines_total", self.count as f64));
            out.updates
                .push(TopicUpdate::new("faulty/lines").field("count", self.count as f64));
        }
        Ok(out)
    }
}

wasmeter_sdk::export_collector!(FaultyCollector);
