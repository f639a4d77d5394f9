//! Host-side bindings generated from `wit/`: the current contract (`v4`,
//! `wasmeter:plugin@0.4.0`, `wit/`) and the ones before it (`v3`, `0.3.0`,
//! `wit/v0.3.0/`; `v2`, `0.2.0`, `wit/v0.2.0/`; `v1`, `0.1.0`, `wit/v0.1.0/`),
//! whose components still load.
//! One module per world.
//!
//! Within a version the three worlds share the `types` and `host` interfaces;
//! the delta and metric bindings reuse the collector's modules for them (`with:`),
//! so a `Sample` or a `PluginInfo` is one Rust type whichever world produced it.
#![allow(missing_docs)]

/// Generates the three worlds of one contract version from `$path`.
macro_rules! worlds {
    ($path:literal, $version:ident) => {
        /// World `collector`.
        pub mod collector {
            wasmtime::component::bindgen!({
                world: "collector",
                path: $path,
                exports: { default: async },
            });
        }

        /// World `delta`.
        pub mod delta {
            wasmtime::component::bindgen!({
                world: "delta",
                path: $path,
                exports: { default: async },
                with: {
                    "wasmeter:plugin/types": crate::bindings::$version::collector::wasmeter::plugin::types,
                    "wasmeter:plugin/host": crate::bindings::$version::collector::wasmeter::plugin::host,
                },
            });
        }

        /// World `metric`.
        pub mod metric {
            wasmtime::component::bindgen!({
                world: "metric",
                path: $path,
                exports: { default: async },
                with: {
                    "wasmeter:plugin/types": crate::bindings::$version::collector::wasmeter::plugin::types,
                    "wasmeter:plugin/host": crate::bindings::$version::collector::wasmeter::plugin::host,
                },
            });
        }

        pub use collector::wasmeter::plugin::{host, types};
    };
}

/// Contract 0.1.0: one `diff` call per topic, no stream events.
pub mod v1 {
    worlds!("../../wit/v0.1.0", v1);
}

/// Contract 0.2.0: one `diff` call per chunk, stream events.
pub mod v2 {
    worlds!("../../wit/v0.2.0", v2);
}

/// Contract 0.3.0: collectors may declare series once and send points.
pub mod v3 {
    worlds!("../../wit/v0.3.0", v3);
}

/// Contract 0.4.0, the current one: derived metrics take and give points of
/// series declared once.
pub mod v4 {
    worlds!("../../wit", v4);
}

pub use v4::{host, types};

/// A value of one of the contract versions the host speaks: a pre-instantiated
/// component or its instance's bindings.
#[doc(hidden)]
#[derive(Clone)]
pub enum ByVersion<V1, V2, V3, V4> {
    /// Built against `wasmeter:plugin@0.1.0`.
    V1(V1),
    /// Built against `wasmeter:plugin@0.2.0`.
    V2(V2),
    /// Built against `wasmeter:plugin@0.3.0`.
    V3(V3),
    /// Built against `wasmeter:plugin@0.4.0`.
    V4(V4),
}
