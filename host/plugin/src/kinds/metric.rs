//! World `metric`: samples and ticks -> derived samples.

use wasmeter_core::sample::Sample;
use wasmeter_core::validate::check_samples;

use super::convert::{sample_to_wit, samples_from_wit};
use crate::call::{CallKind, guest_call};
use crate::error::CallError;
use crate::instance::Instance;
use crate::lifecycle::lifecycle;

/// The `metric` world.
pub struct MetricWorld;

lifecycle!(MetricWorld, Metric, metric, Metric, MetricPre);

fn checked(
    result: Result<Vec<crate::bindings::types::Sample>, String>,
    limits: &crate::PluginLimits,
) -> Result<Vec<Sample>, CallError> {
    let samples = samples_from_wit(result.map_err(CallError::Plugin)?);
    check_samples(&samples, &limits.output)?;
    Ok(samples)
}

impl Instance<MetricWorld> {
    /// Feeds a batch of samples; returns the derived samples, validated.
    pub async fn on_samples(&mut self, samples: &[Sample]) -> Result<Vec<Sample>, CallError> {
        let input: Vec<_> = samples.iter().map(sample_to_wit).collect();
        guest_call!(
            self,
            CallKind::OnSamples,
            |b, store| b.wasmeter_plugin_derive().call_on_samples(store, &input),
            checked
        )
    }

    /// A periodic tick at `now_ms` (Unix ms); returns time-based output, validated.
    pub async fn on_tick(&mut self, now_ms: i64) -> Result<Vec<Sample>, CallError> {
        guest_call!(
            self,
            CallKind::OnTick,
            |b, store| b.wasmeter_plugin_derive().call_on_tick(store, now_ms),
            checked
        )
    }
}
