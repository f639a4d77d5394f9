//! World `metric`: samples and ticks -> derived samples.

use wasmeter_core::sample::Sample;
use wasmeter_core::validate::check_samples;

use super::convert::{v1, v2, v3};
use crate::bindings::ByVersion;
use crate::call::{CallKind, guest_call};
use crate::error::CallError;
use crate::instance::Instance;
use crate::lifecycle::lifecycle;

/// The `metric` world.
pub struct MetricWorld;

lifecycle!(MetricWorld, Metric, metric, Metric, MetricPre);

fn checked(
    result: Result<Vec<Sample>, String>,
    limits: &crate::PluginLimits,
) -> Result<Vec<Sample>, CallError> {
    let samples = result.map_err(CallError::Plugin)?;
    check_samples(&samples, &limits.output)?;
    Ok(samples)
}

impl Instance<MetricWorld> {
    /// Feeds a batch of samples; returns the derived samples, validated.
    pub async fn on_samples(&mut self, samples: &[Sample]) -> Result<Vec<Sample>, CallError> {
        guest_call!(
            self,
            CallKind::OnSamples,
            |b, store| async move {
                Ok(match b {
                    ByVersion::V1(b) => {
                        let input: Vec<_> = samples.iter().map(v1::sample_to_wit).collect();
                        b.wasmeter_plugin_derive()
                            .call_on_samples(store, &input)
                            .await?
                            .map(v1::samples_from_wit)
                    }
                    ByVersion::V2(b) => {
                        let input: Vec<_> = samples.iter().map(v2::sample_to_wit).collect();
                        b.wasmeter_plugin_derive()
                            .call_on_samples(store, &input)
                            .await?
                            .map(v2::samples_from_wit)
                    }
                    ByVersion::V3(b) => {
                        let input: Vec<_> = samples.iter().map(v3::sample_to_wit).collect();
                        b.wasmeter_plugin_derive()
                            .call_on_samples(store, &input)
                            .await?
                            .map(v3::samples_from_wit)
                    }
                })
            },
            checked
        )
    }

    /// A periodic tick at `now_ms` (Unix ms); returns time-based output, validated.
    pub async fn on_tick(&mut self, now_ms: i64) -> Result<Vec<Sample>, CallError> {
        guest_call!(
            self,
            CallKind::OnTick,
            |b, store| async move {
                Ok(match b {
                    ByVersion::V1(b) => b
                        .wasmeter_plugin_derive()
                        .call_on_tick(store, now_ms)
                        .await?
                        .map(v1::samples_from_wit),
                    ByVersion::V2(b) => b
                        .wasmeter_plugin_derive()
                        .call_on_tick(store, now_ms)
                        .await?
                        .map(v2::samples_from_wit),
                    ByVersion::V3(b) => b
                        .wasmeter_plugin_derive()
                        .call_on_tick(store, now_ms)
                        .await?
                        .map(v3::samples_from_wit),
                })
            },
            checked
        )
    }
}
