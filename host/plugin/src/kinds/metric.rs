//! World `metric`: samples and ticks -> derived samples.
//!
//! Since contract 0.4.0 both ways carry points of series declared once: the
//! host numbers the series it hands an instance ([`super::GivenSeries`]), the
//! instance those it gives back ([`super::DeclaredSeries`]). Earlier versions
//! take and give whole samples.

use wasmeter_core::sample::Sample;
use wasmeter_core::sample_batch::SampleBatch;
use wasmeter_core::validate::{OutputError, OutputLimits, check_samples};

use super::convert::{v1, v2, v3, v4};
use crate::bindings::ByVersion;
use crate::call::{CallKind, guest_call};
use crate::error::CallError;
use crate::instance::Instance;
use crate::lifecycle::lifecycle;

/// The `metric` world.
pub struct MetricWorld;

lifecycle!(MetricWorld, Metric, metric, Metric, MetricPre);

/// A call's output as the host takes it: refused whole if the plugin said
/// `error` or broke an output rule.
type Derived = Result<Result<SampleBatch, OutputError>, String>;

fn checked(result: Derived, _limits: &crate::PluginLimits) -> Result<SampleBatch, CallError> {
    Ok(result.map_err(CallError::Plugin)??)
}

/// Whole samples of a version before 0.4.0, checked, as a batch.
fn whole(samples: Result<Vec<Sample>, String>, limits: &OutputLimits) -> Derived {
    samples.map(|samples| {
        check_samples(&samples, limits)?;
        Ok(SampleBatch::from(&samples[..]))
    })
}

/// `on_samples_with!(version, bindings, store, samples, limits)`: one
/// `on-samples` call with the whole samples of a version before 0.4.0.
macro_rules! on_samples_with {
    ($version:ident, $b:ident, $store:ident, $samples:ident, $limits:ident) => {{
        let input = $version::batch_to_samples($samples);
        let out = $b
            .wasmeter_plugin_derive()
            .call_on_samples($store, &input)
            .await?;
        whole(out.map($version::samples_from_wit), &$limits)
    }};
}

/// `on_tick_with!(version, bindings, store, now_ms, limits)`: one `on-tick`
/// call of a version before 0.4.0.
macro_rules! on_tick_with {
    ($version:ident, $b:ident, $store:ident, $now_ms:ident, $limits:ident) => {{
        let out = $b
            .wasmeter_plugin_derive()
            .call_on_tick($store, $now_ms)
            .await?;
        whole(out.map($version::samples_from_wit), &$limits)
    }};
}

impl Instance<MetricWorld> {
    /// Feeds a batch of samples; returns the derived samples, validated.
    pub async fn on_samples(&mut self, samples: &SampleBatch) -> Result<SampleBatch, CallError> {
        let limits = self.limits.output.clone();
        guest_call!(
            self,
            CallKind::OnSamples,
            |b, store| async move {
                Ok(match b {
                    ByVersion::V1(b) => on_samples_with!(v1, b, store, samples, limits),
                    ByVersion::V2(b) => on_samples_with!(v2, b, store, samples, limits),
                    ByVersion::V3(b) => on_samples_with!(v3, b, store, samples, limits),
                    ByVersion::V4(b) => {
                        let given = store.data_mut().given.give(samples, v4::point_to_wit);
                        let input = v4::batch_to_wit(given);
                        let out = b
                            .wasmeter_plugin_derive()
                            .call_on_samples(&mut *store, &input)
                            .await?;
                        let declared = &mut store.data_mut().series;
                        out.map(|out| v4::batch_from_wit(out, declared, &limits))
                    }
                })
            },
            checked
        )
    }

    /// [`Instance::on_samples`] for a caller that holds whole samples.
    pub async fn on_sample_list(&mut self, samples: &[Sample]) -> Result<Vec<Sample>, CallError> {
        let batch = self.on_samples(&SampleBatch::from(samples)).await?;
        Ok(batch.to_samples())
    }

    /// A periodic tick at `now_ms` (Unix ms); returns time-based output, validated.
    pub async fn on_tick(&mut self, now_ms: i64) -> Result<SampleBatch, CallError> {
        let limits = self.limits.output.clone();
        guest_call!(
            self,
            CallKind::OnTick,
            |b, store| async move {
                Ok(match b {
                    ByVersion::V1(b) => on_tick_with!(v1, b, store, now_ms, limits),
                    ByVersion::V2(b) => on_tick_with!(v2, b, store, now_ms, limits),
                    ByVersion::V3(b) => on_tick_with!(v3, b, store, now_ms, limits),
                    ByVersion::V4(b) => {
                        let out = b
                            .wasmeter_plugin_derive()
                            .call_on_tick(&mut *store, now_ms)
                            .await?;
                        let declared = &mut store.data_mut().series;
                        out.map(|out| v4::batch_from_wit(out, declared, &limits))
                    }
                })
            },
            checked
        )
    }
}
