//! Host-side bindings generated from `wit/`, one module per world.
//!
//! The three worlds share the `types` and `host` interfaces; the delta and metric
//! bindings reuse the collector's modules for them (`with:`), so a `Sample` or a
//! `PluginInfo` is one Rust type whichever world produced it.
#![allow(missing_docs)]

/// World `collector`.
pub mod collector {
    wasmtime::component::bindgen!({
        world: "collector",
        path: "../../wit",
        exports: { default: async },
    });
}

/// World `delta`.
pub mod delta {
    wasmtime::component::bindgen!({
        world: "delta",
        path: "../../wit",
        exports: { default: async },
        with: {
            "wasmeter:plugin/types": crate::bindings::collector::wasmeter::plugin::types,
            "wasmeter:plugin/host": crate::bindings::collector::wasmeter::plugin::host,
        },
    });
}

/// World `metric`.
pub mod metric {
    wasmtime::component::bindgen!({
        world: "metric",
        path: "../../wit",
        exports: { default: async },
        with: {
            "wasmeter:plugin/types": crate::bindings::collector::wasmeter::plugin::types,
            "wasmeter:plugin/host": crate::bindings::collector::wasmeter::plugin::host,
        },
    });
}

pub use collector::wasmeter::plugin::{host, types};
