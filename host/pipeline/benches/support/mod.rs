//! What the pipeline benches share: the built plugin components and their
//! instances.

use std::path::PathBuf;

use wasmeter_plugin::{Compiled, Instance, World};

/// A component built by `scripts/build-plugins.sh`.
pub fn component(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/plugins/wasm32-wasip2/release")
        .join(format!("{name}.wasm"))
}

/// An initialised instance of `plugin` named `name` with `config`.
pub async fn instance<W: World>(
    plugin: &Compiled<W>,
    name: &str,
    config: &[(&str, &str)],
) -> Instance<W> {
    let config = config
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    plugin.instantiate(name, config).await.expect("instantiate")
}
