//! The outputs' and alert delivery's counters in `/metrics`.

use std::sync::atomic::Ordering::Relaxed;

use super::exposition::Writer;
use super::names::{self as n, MetricDef};
use crate::export::ExportView;

/// Renders every output's counters (labelled `output`) and alert delivery's.
pub fn render(w: &mut Writer, e: &ExportView) {
    type Pick = fn(&wasmeter_export::OutputStats) -> u64;
    let single: [(&MetricDef, Pick); 7] = [
        (&n::OUTPUT_SELECTED, |s| s.selected.load(Relaxed)),
        (&n::OUTPUT_SENT, |s| s.sent.load(Relaxed)),
        (&n::OUTPUT_REQUESTS, |s| s.requests.load(Relaxed)),
        (&n::OUTPUT_FAILED, |s| s.failed_requests.load(Relaxed)),
        (&n::OUTPUT_RETRIED, |s| s.retries.load(Relaxed)),
        (&n::OUTPUT_BUFFERED, |s| s.buffered_bytes.load(Relaxed)),
        (&n::OUTPUT_DISK, |s| s.disk_bytes.load(Relaxed)),
    ];
    if !e.outputs.is_empty() {
        for (def, pick) in single {
            w.family(def);
            for (name, stats) in &e.outputs {
                w.sample(&[("output", name)], pick(stats) as f64);
            }
        }
        w.family(&n::OUTPUT_DROPPED);
        for (name, s) in &e.outputs {
            for (reason, v) in [
                ("buffer_full", &s.dropped_full),
                ("refused", &s.dropped_refused),
                ("corrupt", &s.dropped_corrupt),
            ] {
                w.sample(
                    &[("output", name), ("reason", reason)],
                    v.load(Relaxed) as f64,
                );
            }
        }
    }
    if let Some(a) = &e.alerts {
        for (def, v) in [
            (&n::ALERTS_SENT, &a.sent),
            (&n::ALERTS_FAILED, &a.failed),
            (&n::ALERTS_FIRING, &a.firing),
            (&n::ALERTS_REFUSED, &a.refused),
        ] {
            w.family(def);
            w.sample(&[], v.load(Relaxed) as f64);
        }
    }
}
