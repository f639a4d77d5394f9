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
//! | `panic`       | `panic!("faulty plugin panicked on purpose")`                        |
//! | `unreachable` | executes the `unreachable` instruction                               |
//! | `oversize`    | adds `oversize_count` (2,000,000) samples to the output              |
//! | `hugename`    | adds a sample whose name is 1 MiB long                               |
//! | `nan`         | adds a sample whose value is NaN                                     |
//! | `badname`     | adds a sample named `bad name!`                                      |
//! | `error`       | fails the call: `Err("faulty plugin failed on purpose")`             |
//! | `escape`      | tries to leave the sandbox and reports each attempt as a record error: ``read /etc/passwd: error: ...``, ``connect 127.0.0.1:1: error: ...``, ``env: N variables`` |
//!
//! ## Config
//!
//! | key              | default     | meaning                                                  |
//! |------------------|-------------|----------------------------------------------------------|
//! | `init`           | `ok`        | `panic`, `error` or `loop` misbehave in `init` instead    |
//! | `version`        | `1.0.0`     | reported as the plugin's version (tells swaps apart)      |
//! | `oversize_count` | `2000000`   | samples produced by `oversize` (~110 bytes of guest memory each: mind the memory cap) |
//!
//! State: the line count (export/import), so swap tests can check carry-over.

use std::hint::black_box;

use wasmeter_sdk::state::{StateReader, StateWriter};
use wasmeter_sdk::{
    CollectOutput, Collector, Config, Plugin, PluginInfo, Sample, TopicUpdate, lines,
};

const STATE_SCHEMA: &str = "faulty-collector";

/// The faulty collector and its line count.
pub struct FaultyCollector {
    count: u64,
    oversize_count: usize,
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
        match config.get_or("init", "ok") {
            "ok" => {}
            "panic" => panic!("faulty plugin panicked on purpose in init"),
            "error" => return Err("faulty plugin failed on purpose in init".to_string()),
            "loop" => spin_forever(),
            other => {
                return Err(format!(
                    "config `init`: `{other}` is not one of ok, panic, error, loop"
                ));
            }
        }
        Ok(FaultyCollector {
            count: 0,
            oversize_count: config.parse_or("oversize_count", 2_000_000usize)?,
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
        let mut counted = false;
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
                "panic" => panic!("faulty plugin panicked on purpose"),
                "unreachable" => trap(),
                "oversize" => out.samples.extend(
                    (0..self.oversize_count).map(|i| Sample::gauge("faulty_oversize", i as f64)),
                ),
                "hugename" => out.samples.push(Sample::gauge("a".repeat(1 << 20), 1.0)),
                "nan" => out.samples.push(Sample::gauge("faulty_nan", f64::NAN)),
                "badname" => out.samples.push(Sample::gauge("bad name!", 1.0)),
                "error" => return Err("faulty plugin failed on purpose".to_string()),
                "escape" => out
                    .errors
                    .extend(escape_attempts().into_iter().map(|m| line.error(m))),
                _ => {
                    self.count += 1;
                    counted = true;
                }
            }
        }
        if counted {
            out.samples
                .push(Sample::counter("faulty_lines_total", self.count as f64));
            out.updates
                .push(TopicUpdate::new("faulty/lines").field("count", self.count as f64));
        }
        Ok(out)
    }
}

wasmeter_sdk::export_collector!(FaultyCollector);
