//! `wasmeter check-config FILE`: what `serve` checks before it serves, without
//! serving: the file parses and validates, every plugin loads (compiled,
//! checked against the contract, described) and every pipeline's plugins start
//! with their config (`init`). Nothing is written: no data directory, no cache,
//! no listener.

use std::path::Path;

use wasmeter_plugin::Runtime;

use crate::config::Config;

/// Checks the config at `path`; prints a summary, or fails with the first problem.
pub async fn check_config(path: &Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    config.auth.authenticator(&config)?;
    config.server_tls()?;
    config.admin_tls()?;
    let runtime = Runtime::new(config.runtime.runtime_config(None))?;
    let spec = config.spec();
    let plugins = wasmeter_control::load::load_all(&runtime, &spec).await?;
    for (name, def) in &spec.pipelines {
        // Its error names the file, the pipeline, the plugin and the plugin's words.
        wasmeter_control::load::instantiate_pipeline(&plugins, &spec.origin, name, def).await?;
    }
    println!(
        "{}: ok: {} plugins, {} sources, {} pipelines",
        path.display(),
        spec.plugins.len(),
        spec.sources.len(),
        spec.pipelines.len()
    );
    Ok(())
}
