//! # wasmeter-sdk: write wasmeter plugins in a few dozen lines of Rust
//!
//! A wasmeter plugin is a WebAssembly component (built for `wasm32-wasip2`) that exports
//! one of the worlds of `wit/` (package `wasmeter:plugin@0.4.0`):
//!
//! | world       | trait to implement   | macro                  | what it does                           |
//! |-------------|----------------------|------------------------|----------------------------------------|
//! | `collector` | [`Collector`]        | [`export_collector!`]  | bytes of a source -> samples + topics  |
//! | `delta`     | [`DeltaAlgorithm`]   | [`export_delta!`]      | two states of a topic -> a delta       |
//! | `metric`    | [`Metric`]           | [`export_metric!`]     | samples -> derived samples             |
//!
//! Every plugin also implements [`Plugin`] (description, configuration, state for hot
//! swap). The `export_*!` macro creates the instance with [`Plugin::init`] when the host
//! calls `init`, keeps it for the following calls and implements the generated
//! wit-bindgen glue, so a plugin never touches the raw bindings.
//!
//! ## A complete collector
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [package]
//! name = "line-counter"
//! version = "0.1.0"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! wasmeter-sdk = { path = "../sdk" }
//! ```
//!
//! `src/lib.rs`:
//!
//! ```no_run
//! use wasmeter_sdk::{CollectOutput, Collector, Config, Plugin, PluginInfo, Sample, lines};
//!
//! /// Counts the lines of every source; lines must be numbers.
//! struct LineCounter {
//!     metric: String,
//!     lines: u64,
//! }
//!
//! impl Plugin for LineCounter {
//!     fn info() -> PluginInfo {
//!         PluginInfo::new("line-counter", env!("CARGO_PKG_VERSION"), "Counts numeric lines")
//!             .emits(["lines_total", "last_value"])
//!             .stateful(true)
//!     }
//!
//!     fn init(config: &Config) -> Result<Self, String> {
//!         let metric = config.get_or("metric", "lines_total").to_string();
//!         Ok(LineCounter { metric, lines: 0 })
//!     }
//!
//!     fn export_state(&self) -> Option<Vec<u8>> {
//!         Some(self.lines.to_le_bytes().to_vec())
//!     }
//!
//!     fn import_state(&mut self, state: &[u8]) -> Result<(), String> {
//!         let bytes: [u8; 8] = state.try_into().map_err(|_| "state: expected 8 bytes")?;
//!         self.lines = u64::from_le_bytes(bytes);
//!         Ok(())
//!     }
//! }
//!
//! impl Collector for LineCounter {
//!     fn collect(&mut self, source: &str, chunk: &[u8]) -> Result<CollectOutput, String> {
//!         let mut out = CollectOutput::new();
//!         // Each `Err(message)` becomes a record error with the line number and offset.
//!         lines::for_each(chunk, &mut out, |line, out| {
//!             let value: f64 = line.text.trim().parse()
//!                 .map_err(|_| format!("`{}` is not a number", line.text))?;
//!             self.lines += 1;
//!             out.samples.push(Sample::counter(&self.metric, self.lines as f64));
//!             out.samples.push(Sample::gauge("last_value", value).with_label("source", source));
//!             Ok(())
//!         });
//!         Ok(out)
//!     }
//! }
//!
//! wasmeter_sdk::export_collector!(LineCounter);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2`; the component is
//! `target/wasm32-wasip2/release/line_counter.wasm`.
//!
//! ## Helpers
//!
//! * [`lines`]: iterate a chunk line by line (1-based line numbers, byte offsets) and turn
//!   per-line `Err(String)` into [`RecordError`]s; invalid UTF-8 is a record error too.
//! * [`Config`]: `get`, `get_or`, typed [`Config::parse`] with errors naming key and value.
//! * [`log`]: `log::info("...")` and friends, written into the host's log.
//! * [`now_ms`], [`monotonic_ns`]: the host's clocks.
//! * [`state`]: a small versioned, self-describing binary encoding for `export_state`.
//! * [`series`]: series keys (name + sorted labels) and the host's validation rules.
//! * [`trades`]: the standard trade output (topics, fields, samples, running totals) of the
//!   trade collectors.
//! * [`window`]: rolling time windows kept as a fixed number of time buckets (memory and
//!   state bounded by the bucket count, not the sample rate).
//!
//! ## Rules the host enforces
//!
//! Every call has a deadline and the instance a memory cap; output is validated (metric
//! names `[a-zA-Z_:][a-zA-Z0-9_:]*` of at most 200 bytes, at most 16 labels, finite values).
//! A trap (panic, out of memory, deadline) makes the host discard the instance.

#![warn(missing_docs)]

pub mod config;
pub mod heap;
pub mod lines;
pub mod log;
pub mod series;
pub mod state;
pub mod trades;
pub mod window;

mod derive;
mod field_names;
mod output;
mod per_series;
mod plugin;
mod str_map;

pub use config::Config;

/// The plugin's allocator (see [`heap`]): a single-threaded plugin's small
/// blocks are kept per size class for reuse.
#[cfg(all(
    feature = "fast-alloc",
    target_arch = "wasm32",
    not(target_feature = "atomics")
))]
#[global_allocator]
static HEAP: heap::SizeClasses = heap::SizeClasses::new();
pub use plugin::{Collector, DeltaAlgorithm, Metric, Plugin, PluginInfo};

/// Raw bindings generated by wit-bindgen, one crate per world (see the `wasmeter-sdk-*`
/// crates). Plugins normally only use the re-exported types of the crate root.
pub mod bindings {
    pub use wasmeter_sdk_collector as collector;
    pub use wasmeter_sdk_delta as delta;
    pub use wasmeter_sdk_metric as metric;
}

/// A measurement: name, labels, value, kind and timestamp (Unix ms, 0 = stamped by host).
pub use wasmeter_sdk_collector::wasmeter::plugin::types::Sample;

/// One label of a sample, e.g. `symbol = "BTC-USD"`.
pub use wasmeter_sdk_collector::wasmeter::plugin::types::Label;

/// Gauge or counter (Prometheus semantics).
pub use wasmeter_sdk_collector::wasmeter::plugin::types::MetricKind;

/// The value of a topic field: number, text or flag.
pub use wasmeter_sdk_collector::wasmeter::plugin::types::FieldValue;

/// A named field of a topic.
pub use wasmeter_sdk_collector::wasmeter::plugin::types::Field;

/// New values for some fields of a topic.
pub use wasmeter_sdk_collector::wasmeter::plugin::types::TopicUpdate;

/// A record (line) of a chunk that could not be used.
pub use wasmeter_sdk_collector::wasmeter::plugin::types::RecordError;

/// The three kinds of plugin (filled in by the `export_*!` macros).
pub use wasmeter_sdk_collector::wasmeter::plugin::types::PluginKind;

/// Severity of a log line.
pub use wasmeter_sdk_collector::wasmeter::plugin::host::LogLevel;

pub use derive::{InputPoint, PointFeed, Points};
pub use output::{CollectOutput, MAX_SERIES, SeriesId};
pub use per_series::PerSeries;

/// Samples as points of series declared once: what a derive call takes and
/// gives (contract 0.4.0). The SDK converts it: plugins see [`Points`] or whole samples.
#[doc(hidden)]
pub use wasmeter_sdk_collector::wasmeter::plugin::types::SampleBatch;

/// One event of a stream topic (since contract 0.2.0).
pub use wasmeter_sdk_collector::wasmeter::plugin::types::StreamEvent;

/// A delta between two states of a topic: fields to set and field names to delete.
pub use wasmeter_sdk_delta::exports::wasmeter::plugin::diff::Delta;

/// A field of a topic change as the host sends it: its name is a number into
/// the call's [`FieldNames`].
pub use wasmeter_sdk_delta::exports::wasmeter::plugin::diff::IndexedField;

pub use field_names::FieldNames;

pub use log::{monotonic_ns, now_ms};

/// Glue used by the `export_*!` macros. Not part of the public API.
#[doc(hidden)]
pub mod __private;

/// Exports a [`Collector`] as the `collector` world of the component.
///
/// Use it once per crate, with the type that implements [`Collector`]:
/// `wasmeter_sdk::export_collector!(MyCollector);`
#[macro_export]
macro_rules! export_collector {
    ($t:ty) => {
        const _: () = {
            $crate::__export_plugin!($t, collector, Collector);

            impl $crate::bindings::collector::exports::wasmeter::plugin::collect::Guest
                for __WasmeterExport
            {
                fn collect(
                    source: ::std::string::String,
                    chunk: ::std::vec::Vec<u8>,
                ) -> ::core::result::Result<
                    $crate::bindings::collector::exports::wasmeter::plugin::collect::CollectOutput,
                    ::std::string::String,
                > {
                    __with_instance(|p| <$t as $crate::Collector>::collect(p, &source, &chunk))
                        .map($crate::__private::wire_output)
                }
            }

            $crate::bindings::collector::export!(
                __WasmeterExport with_types_in $crate::bindings::collector
            );
        };
    };
}

/// Exports a [`DeltaAlgorithm`] as the `delta` world of the component.
///
/// Use it once per crate: `wasmeter_sdk::export_delta!(MyDelta);`
#[macro_export]
macro_rules! export_delta {
    ($t:ty) => {
        const _: () = {
            $crate::__export_plugin!($t, delta, Delta);

            impl $crate::bindings::delta::exports::wasmeter::plugin::diff::Guest for __WasmeterExport {
                fn diff(
                    names: ::std::vec::Vec<::std::string::String>,
                    changes: ::std::vec::Vec<
                        $crate::bindings::delta::exports::wasmeter::plugin::diff::TopicChange,
                    >,
                ) -> ::std::vec::Vec<::core::result::Result<$crate::Delta, ::std::string::String>>
                {
                    let count = changes.len();
                    let names = $crate::FieldNames::new(names);
                    let deltas = __with_instance(|p| {
                        Ok(changes
                            .into_iter()
                            .map(|c| {
                                <$t as $crate::DeltaAlgorithm>::diff_indexed(p, &c.topic, &names, c.previous, c.current)
                            })
                            .collect::<::std::vec::Vec<_>>())
                    });
                    match deltas {
                        Ok(deltas) => deltas,
                        Err(error) => ::std::vec![Err(error); count],
                    }
                }

                fn apply(
                    previous: ::std::vec::Vec<$crate::Field>,
                    delta: $crate::Delta,
                ) -> ::core::result::Result<::std::vec::Vec<$crate::Field>, ::std::string::String>
                {
                    __with_instance(|p| <$t as $crate::DeltaAlgorithm>::apply(p, previous, delta))
                }
            }

            $crate::bindings::delta::export!(__WasmeterExport with_types_in $crate::bindings::delta);
        };
    };
}

/// Exports a [`Metric`] as the `metric` world of the component.
///
/// Use it once per crate: `wasmeter_sdk::export_metric!(MyMetric);`
#[macro_export]
macro_rules! export_metric {
    ($t:ty) => {
        const _: () = {
            $crate::__export_plugin!($t, metric, Metric);

            impl $crate::bindings::metric::exports::wasmeter::plugin::derive::Guest
                for __WasmeterExport
            {
                fn on_samples(
                    samples: $crate::SampleBatch,
                ) -> ::core::result::Result<$crate::SampleBatch, ::std::string::String> {
                    // The host's declarations are taken first, whatever follows.
                    let points = $crate::__private::given_points(samples);
                    __with_instance(|p| $crate::__private::call_on_points(p, points))
                        .and_then($crate::__private::batch_out)
                }

                fn on_tick(
                    now_ms: i64,
                ) -> ::core::result::Result<$crate::SampleBatch, ::std::string::String> {
                    __with_instance(|p| <$t as $crate::Metric>::on_tick(p, now_ms))
                        .and_then($crate::__private::samples_out)
                }
            }

            $crate::bindings::metric::export!(
                __WasmeterExport with_types_in $crate::bindings::metric
            );
        };
    };
}

/// The part shared by the three `export_*!` macros: the instance slot and the
/// `wasmeter:plugin/plugin` life cycle. Not part of the public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_plugin {
    ($t:ty, $world:ident, $kind:ident) => {
        struct __WasmeterExport;

        ::std::thread_local! {
            static __WASMETER_INSTANCE: ::core::cell::RefCell<::core::option::Option<$t>> =
                const { ::core::cell::RefCell::new(::core::option::Option::None) };
        }

        fn __with_instance<R>(
            f: impl FnOnce(&mut $t) -> ::core::result::Result<R, ::std::string::String>,
        ) -> ::core::result::Result<R, ::std::string::String> {
            __WASMETER_INSTANCE.with(|slot| $crate::__private::with_instance(slot, f))
        }

        impl $crate::bindings::$world::exports::wasmeter::plugin::plugin::Guest
            for __WasmeterExport
        {
            fn describe() -> $crate::bindings::collector::wasmeter::plugin::types::PluginInfo {
                $crate::__private::describe::<$t>($crate::PluginKind::$kind)
            }

            fn init(
                config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
            ) -> ::core::result::Result<(), ::std::string::String> {
                __WASMETER_INSTANCE.with(|slot| $crate::__private::init::<$t>(slot, config))
            }

            fn export_state() -> ::core::option::Option<::std::vec::Vec<u8>> {
                __WASMETER_INSTANCE.with(|slot| $crate::__private::export_state::<$t>(slot))
            }

            fn import_state(
                state: ::std::vec::Vec<u8>,
            ) -> ::core::result::Result<(), ::std::string::String> {
                __with_instance(|p| <$t as $crate::Plugin>::import_state(p, &state))
            }
        }
    };
}

/// The authoring guide's example (`plugins/README.md`) is compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
