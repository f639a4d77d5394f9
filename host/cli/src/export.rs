//! Outputs and alert delivery in the host: started from `[outputs.*]` and
//! `[alerts]` before the pipelines, fed from the same seam as the metric
//! history (one shared batch per pipeline step), closed after the pipelines.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use wasmeter_core::sample_batch::SampleBatch;
use wasmeter_export::{AlertStats, Alerts, Output, OutputSender, OutputStats};
use wasmeter_history::HistorySender;
use wasmeter_pipeline::SampleSink;

use crate::config::Config;
use crate::export_config::{alert_config, output_config};

/// What `/metrics` reports of the outputs and alert delivery.
#[derive(Clone, Default)]
pub struct ExportView {
    /// Each output's name and counters.
    pub outputs: Vec<(String, Arc<OutputStats>)>,
    /// Alert delivery's counters, if alerts go anywhere.
    pub alerts: Option<Arc<AlertStats>>,
}

/// The running outputs and alert delivery.
pub struct Export {
    outputs: Vec<Output>,
    alerts: Option<Alerts>,
}

impl Export {
    /// Starts every output (replaying its disk buffer) and alert delivery;
    /// `None` when the config has neither.
    pub async fn start(config: &Config, data_dir: &Path) -> anyhow::Result<Option<Export>> {
        if config.outputs.is_empty() && !config.alerts.enabled() {
            return Ok(None);
        }
        let configs: Vec<_> = config
            .outputs
            .iter()
            .map(|(name, o)| output_config(name, o, data_dir))
            .collect();
        // Opening a buffer reads its segments: off the runtime's workers.
        let started = tokio::task::spawn_blocking(move || {
            let mut outputs = Vec::new();
            for c in configs {
                let name = c.name.clone();
                let dir = c.buffer_dir.clone();
                let (output, recovery) = Output::start(c).with_context(|| {
                    format!(
                        "outputs.{name}: cannot open its buffer in {}",
                        dir.display()
                    )
                })?;
                for damage in &recovery.damage {
                    tracing::warn!(output = name, "output buffer damaged: {damage}");
                }
                if recovery.frames > 0 {
                    tracing::info!(
                        output = name,
                        samples = recovery.samples,
                        "output: unsent samples from the last run will be sent"
                    );
                }
                outputs.push(output);
            }
            anyhow::Ok(outputs)
        });
        let outputs = started.await.context("outputs: start task failed")??;
        let alerts = match config.alerts.enabled() {
            true => {
                Some(Alerts::start(alert_config(&config.alerts)).context("alerts: cannot start")?)
            }
            false => None,
        };
        Ok(Some(Export { outputs, alerts }))
    }

    /// What `/metrics` reports.
    pub fn view(&self) -> ExportView {
        ExportView {
            outputs: self
                .outputs
                .iter()
                .map(|o| (o.name().to_string(), o.stats()))
                .collect(),
            alerts: self.alerts.as_ref().map(Alerts::stats),
        }
    }

    fn senders(&self) -> Vec<OutputSender> {
        let mut s: Vec<_> = self.outputs.iter().map(Output::sender).collect();
        s.extend(self.alerts.as_ref().map(Alerts::sender));
        s
    }

    /// Stops after the pipelines stopped: each output gets up to half of
    /// `bound` to send what is queued; the rest stays in its disk buffer.
    pub async fn close(self, bound: Duration) {
        let drain = bound / 2;
        let closing = tokio::task::spawn_blocking(move || {
            for o in self.outputs {
                o.close(drain / 2);
            }
            if let Some(a) = self.alerts {
                a.close();
            }
        });
        if tokio::time::timeout(bound, closing).await.is_err() {
            tracing::error!("outputs did not stop in time; unsent batches stay in their buffers");
        }
    }
}

/// The pipelines' sink: each batch goes, shared, to the metric history and to
/// every output and alert delivery. `None` when there is neither.
pub fn sink(
    history: Option<HistorySender>,
    export: Option<&Export>,
) -> Option<Arc<dyn SampleSink>> {
    let outputs = export.map(Export::senders).unwrap_or_default();
    if history.is_none() && outputs.is_empty() {
        return None;
    }
    Some(Arc::new(FanOut { history, outputs }))
}

struct FanOut {
    history: Option<HistorySender>,
    outputs: Vec<OutputSender>,
}

impl SampleSink for FanOut {
    fn record(&self, samples: SampleBatch) -> BoxFuture<'_, ()> {
        async move {
            if samples.is_empty() {
                return;
            }
            if !self.outputs.is_empty() {
                // The outputs and alerts take whole samples, made once for all.
                let whole = Arc::new(samples.to_samples());
                for o in &self.outputs {
                    o.send(whole.clone()).await;
                }
            }
            if let Some(h) = &self.history {
                h.send(samples).await;
            }
        }
        .boxed()
    }
}
