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

/// `on_samples_with!(version, bindings, store, samples)`: one `on-samples` call
/// with the bindings of `version`.
macro_rules! on_samples_with {
    ($version:ident, $b:ident, $store:ident, $samples:ident) => {{
        let input: Vec<_> = $samples.iter().map($version::sample_to_wit).collect();
        $b.wasmeter_plugin_derive()
            .call_on_samples($store, &input)
            .await?
            .map($version::samples_from_wit)
    }};
}

/// `on_tick_with!(version, bindings, store, now_ms)`: one `on-tick` call with the
/// bindings of `version`.
macro_rules! on_tick_with {
    ($version:ident, $b:ident, $store:ident, $now_ms:ident) => {
        $b.wasmeter_plugin_derive()
            .call_on_tick($store, $now_ms)
            .await?
            .map($version::samples_from_wit)
    };
}

impl Instance<MetricWorld> {
    /// Feeds a batch of samples; returns the derived samples, validated.
    pub async fn on_samples(&mut self, samples: &[Sample]) -> Result<Vec<Sample>, CallError> {
        guest_call!(
            self,
            CallKind::OnSamples,
            |b, store| async move {
                Ok(match b {
                    ByVersion::V1(b) => on_samples_with!(v1, b, store, samples),
                    ByVersion::V2(b) => on_samples_with!(v2, b, store, samples),
                    ByVersion::V3(b) => on_samples_with!(v3, b, store, samples),
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
                    ByVersion::V1(b) => on_tick_with!(v1, b, store, now_ms),
                    ByVersion::V2(b) => on_tick_with!(v2, b, store, now_ms),
                    ByVersion::V3(b) => on_tick_with!(v3, b, store, now_ms),
                })
            },
            checked
        )
    }
}
