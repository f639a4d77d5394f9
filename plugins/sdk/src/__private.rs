//! Glue used by the `export_*!` macros. Not part of the public API.

use std::cell::RefCell;

use crate::bindings::collector::exports::wasmeter::plugin::collect::CollectOutput as WireOutput;
use crate::bindings::collector::wasmeter::plugin::types::PluginInfo as RawPluginInfo;
pub use crate::derive::{batch_out, call_on_points, given_points, samples_out};
use crate::output::SeriesNumbers;
use crate::{CollectOutput, Config, Plugin, PluginKind};

thread_local! {
    /// The series this instance declared to the host (a component has one instance).
    static SERIES: RefCell<SeriesNumbers> = RefCell::new(SeriesNumbers::default());
}

/// `collect`'s output as the host receives it: new series declared, the samples
/// written with `CollectOutput::sample` sent as points. Only for a call that
/// returns `ok`: a failed call declares nothing.
pub fn wire_output(out: CollectOutput) -> WireOutput {
    SERIES.with(|numbers| numbers.borrow_mut().wire(out))
}

/// `describe`: the plugin's info plus the world's kind.
pub fn describe<T: Plugin>(kind: PluginKind) -> RawPluginInfo {
    let info = T::info();
    RawPluginInfo {
        name: info.name,
        version: info.version,
        kind,
        description: info.description,
        emits: info.emits,
        stateful: info.stateful,
    }
}

/// `init`: creates the instance; a later `init` replaces it.
pub fn init<T: Plugin>(
    slot: &RefCell<Option<T>>,
    config: Vec<(String, String)>,
) -> Result<(), String> {
    let config = Config::new(config);
    let instance = T::init(&config)?;
    *slot.borrow_mut() = Some(instance);
    Ok(())
}

/// `export-state`: `None` before `init`.
pub fn export_state<T: Plugin>(slot: &RefCell<Option<T>>) -> Option<Vec<u8>> {
    slot.borrow().as_ref().and_then(T::export_state)
}

/// Runs `f` on the instance, or fails if `init` has not succeeded yet.
pub fn with_instance<T, R>(
    slot: &RefCell<Option<T>>,
    f: impl FnOnce(&mut T) -> Result<R, String>,
) -> Result<R, String> {
    match slot.borrow_mut().as_mut() {
        Some(instance) => f(instance),
        None => Err("plugin is not initialised: `init` was not called or failed".to_string()),
    }
}
