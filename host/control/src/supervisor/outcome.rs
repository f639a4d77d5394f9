//! The outcome of a change: the registry entry's last error, a log line, a
//! notice on `_wasmeter/plugins/<name>`, and the report returned to the caller.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use wasmeter_core::field::FieldValue;
use wasmeter_pipeline::Swapped;
use wasmeter_plugin::unix_now_ms;

use super::ask::Sent;
use super::{ControlError, Inner, Supervisor};
use crate::registry::PluginEntry;

/// The outcome of a swap, reload, rollback or load.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SwapReport {
    /// The host's name for the plugin.
    pub plugin: String,
    /// The version now running.
    pub version: String,
    /// Its SHA-256 (hex).
    pub hash: String,
    /// The version it replaced, if any.
    pub replaced: Option<String>,
    /// Nothing was done: the file had not changed.
    pub unchanged: bool,
    /// Each pipeline's swap.
    pub pipelines: Vec<PipelineSwap>,
}

/// One pipeline's part of a swap.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineSwap {
    /// The pipeline.
    pub pipeline: String,
    /// How long the pipeline stopped processing, in microseconds.
    pub pause_us: f64,
    /// What happened to the plugin's state.
    pub state: String,
}

impl Supervisor {
    /// Records the outcome of a change: the entry's last error, a log line, a notice.
    pub(super) fn finish(
        &self,
        inner: &mut Inner,
        name: &str,
        event: &str,
        result: Result<SwapReport, ControlError>,
    ) -> Result<SwapReport, ControlError> {
        let Some(entry) = inner.plugins.get_mut(name) else {
            return result;
        };
        match &result {
            Ok(report) => {
                tracing::info!(plugin = %name, version = %report.version, pipelines = report.pipelines.len(), "plugin {event}");
                self.notice(entry, event, None);
            }
            Err(error) => {
                let message = error.to_string();
                tracing::error!(plugin = %name, error = %message, "plugin change refused; the running version stays");
                entry.failed(&message);
                self.notice(entry, &format!("{event}-failed"), Some(&message));
            }
        }
        result
    }

    /// Publishes what happened to a plugin on `_wasmeter/plugins/<name>`.
    pub(super) fn notice(&self, entry: &PluginEntry, event: &str, error: Option<&str>) {
        let meta = entry.current.loaded.meta();
        let version = (meta.info.version.as_str(), &meta.hash_hex()[..16]);
        self.publish_notice(&entry.name, event, version, error);
    }

    /// Publishes `load-failed` for a plugin that never was loaded (no version).
    pub(super) fn notice_failed_load(&self, name: &str, error: &str) {
        self.publish_notice(name, "load-failed", ("", ""), Some(error));
    }

    fn publish_notice(
        &self,
        name: &str,
        event: &str,
        (version, hash): (&str, &str),
        error: Option<&str>,
    ) {
        let text = |s: &str| FieldValue::Text(s.to_string());
        let fields = BTreeMap::from([
            ("event".to_string(), text(event)),
            ("version".to_string(), text(version)),
            ("hash".to_string(), text(hash)),
            ("error".to_string(), text(error.unwrap_or(""))),
            (
                "at_ms".to_string(),
                FieldValue::Number(unix_now_ms() as f64),
            ),
        ]);
        let topic = format!("_wasmeter/plugins/{name}").into();
        self.shared.topics.set_fields(&topic, fields);
    }
}

/// What a swap to `entry`'s current version sends, for a late answer.
pub(super) fn sent(entry: &PluginEntry) -> Sent {
    Sent::Swap {
        plugin: entry.name.clone(),
        hash: entry.current.loaded.meta().hash,
        config: entry.config.clone(),
    }
}

pub(super) fn pipeline_swap(pipeline: &str, swapped: &Swapped) -> PipelineSwap {
    use wasmeter_pipeline::StateCarry;
    PipelineSwap {
        pipeline: pipeline.to_string(),
        pause_us: swapped.pause.as_secs_f64() * 1e6,
        state: match &swapped.state {
            StateCarry::Stateless => "stateless".into(),
            StateCarry::Carried { bytes } => format!("carried ({bytes} bytes)"),
            StateCarry::Empty => "empty".into(),
            StateCarry::Fresh => "fresh (as asked)".into(),
            StateCarry::Lost { reason } => format!("lost: {reason}"),
        },
    }
}

pub(super) fn report(
    next: &PluginEntry,
    old: Option<&PluginEntry>,
    pipelines: Vec<PipelineSwap>,
) -> SwapReport {
    let meta = next.current.loaded.meta();
    SwapReport {
        plugin: next.name.clone(),
        version: meta.info.version.clone(),
        hash: meta.hash_hex(),
        replaced: old.map(|o| o.current.loaded.meta().info.version.clone()),
        unchanged: false,
        pipelines,
    }
}

pub(super) fn unchanged(entry: &PluginEntry) -> SwapReport {
    SwapReport {
        unchanged: true,
        ..report(entry, None, Vec::new())
    }
}
