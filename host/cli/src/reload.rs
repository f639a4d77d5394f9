//! Config reload (SIGHUP, the admin API): reads the config file again, checks it
//! and hands its spec to the control plane, which applies the difference all or
//! nothing.

use std::path::PathBuf;

use wasmeter_control::supervisor::ConfigReport;
use wasmeter_control::{ControlError, Supervisor};

use crate::config::Config;

/// Reloads `path` into `supervisor`; `None` (the built-in demo config) is refused.
pub async fn reload_config(
    supervisor: &Supervisor,
    path: Option<PathBuf>,
) -> Result<ConfigReport, ControlError> {
    let Some(path) = path else {
        return Err(ControlError::Conflict(
            "the built-in demo configuration cannot be reloaded; start with --config FILE".into(),
        ));
    };
    let config = tokio::task::spawn_blocking(move || Config::load(&path))
        .await
        .map_err(|e| ControlError::Config(format!("config task: {e}")))?
        .map_err(|e| ControlError::Config(e.to_string()))?;
    supervisor.reload_config(config.spec()).await
}
