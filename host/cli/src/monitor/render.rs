//! The exposition of a [`Monitor`] and the server's counters.

use wasmeter_core::sample::MetricKind;
use wasmeter_pipeline::PipelineStats;
use wasmeter_plugin::unix_now_ms;
use wasmeter_server::ServerState;

use super::Monitor;
use super::exposition::{Format, Writer, sanitize_name};
use super::names::{self as n, Kind, MetricDef};
use crate::broker::BrokerView;
use crate::export::ExportView;
use crate::history::HistoryView;

/// The parts of the host that exist only when configured.
#[derive(Clone, Default)]
pub struct Views {
    /// The metric history (`[history]`).
    pub history: Option<HistoryView>,
    /// Outputs and alerts (`[outputs]`, `[alerts]`).
    pub export: Option<ExportView>,
    /// The Redis broker (`[broker] type = "redis"`).
    pub broker: Option<BrokerView>,
}

/// Renders every self-metric and every collected series.
pub fn render(monitor: &Monitor, server: &ServerState, views: &Views, format: Format) -> String {
    let mut w = Writer::new(format);
    process(&mut w);
    sources(&mut w, monitor);
    pipelines(&mut w, monitor);
    plugins(&mut w, monitor);
    server_and_hub(&mut w, server);
    if let Some(h) = &views.history {
        metric_history(&mut w, h);
    }
    if let Some(e) = &views.export {
        super::export::render(&mut w, e);
    }
    if let Some(b) = &views.broker {
        super::broker::render(&mut w, b);
    }
    series(&mut w, monitor);
    w.finish()
}

fn process(w: &mut Writer) {
    let loaded: Vec<&str> = wasmeter_plugin::Contract::ALL
        .iter()
        .map(|c| c.version())
        .collect();
    w.family(&n::BUILD_INFO);
    w.sample(
        &[
            ("version", env!("CARGO_PKG_VERSION")),
            ("contract", wasmeter_plugin::world::VERSION),
            ("contracts_loaded", &loaded.join(",")),
        ],
        1.0,
    );
    let p = super::process::read();
    let all = [
        (&n::PROCESS_CPU, p.cpu_seconds),
        (&n::PROCESS_RESIDENT, p.resident_bytes),
        (&n::PROCESS_VIRTUAL, p.virtual_bytes),
        (&n::PROCESS_OPEN_FDS, p.open_fds),
        (&n::PROCESS_MAX_FDS, p.max_fds),
        (&n::PROCESS_START, p.start_time_seconds),
    ];
    for (def, value) in all {
        if let Some(v) = value {
            w.family(def);
            w.sample(&[], v);
        }
    }
}

fn metric_history(w: &mut Writer, h: &HistoryView) {
    use std::sync::atomic::Ordering::Relaxed;
    let store = h.store.stats();
    let single: [(&MetricDef, f64); 5] = [
        (&n::HISTORY_WRITTEN, h.stats.written.load(Relaxed) as f64),
        (&n::HISTORY_REFUSED, h.stats.refused.load(Relaxed) as f64),
        (
            &n::HISTORY_FAILED_BATCHES,
            h.stats.failed_batches.load(Relaxed) as f64,
        ),
        (&n::HISTORY_SERIES, store.series as f64),
        (&n::HISTORY_DISK_BYTES, store.disk_bytes as f64),
    ];
    for (def, value) in single {
        w.family(def);
        w.sample(&[], value);
    }
    w.family(&n::HISTORY_CHUNKS);
    for tier in wasmeter_tsdb::Tier::ALL {
        w.sample(&[("tier", tier.name())], store.chunks[tier.index()] as f64);
    }
}

/// A family with one sample per item.
fn each<T>(w: &mut Writer, def: &MetricDef, items: &[T], sample: impl Fn(&mut Writer, &T)) {
    if items.is_empty() {
        return;
    }
    w.family(def);
    for item in items {
        sample(w, item);
    }
}

fn sources(w: &mut Writer, m: &Monitor) {
    let sources = m.sources();
    let snaps: Vec<_> = sources
        .iter()
        .map(|(name, stats)| (name.as_str(), stats.snapshot()))
        .collect();
    type Get = fn(&wasmeter_source::StatsSnapshot) -> u64;
    let families: [(&MetricDef, Get); 16] = [
        (&n::SOURCE_READ_BYTES, |s| s.bytes_read),
        (&n::SOURCE_RECORDS, |s| s.records),
        (&n::SOURCE_CHUNKS, |s| s.chunks),
        (&n::SOURCE_ROTATIONS, |s| s.rotations),
        (&n::SOURCE_TRUNCATIONS, |s| s.truncations),
        (&n::SOURCE_OVERSIZED_LINES, |s| s.oversized_lines),
        (&n::SOURCE_READ_ERRORS, |s| s.read_errors),
        (&n::SOURCE_OPEN_FILES, |s| s.files_open),
        (&n::SOURCE_OPEN_BUDGET, |s| s.open_budget),
        (&n::SOURCE_FILES_WAITING, |s| s.files_waiting),
        (&n::SOURCE_FILES_TRACKED, |s| s.files_tracked),
        (&n::SOURCE_OPENS_DEFERRED, |s| s.opens_deferred),
        (&n::SOURCE_IDLE_CLOSES, |s| s.idle_closes),
        (&n::SOURCE_FILES_FOUND_RENAMED, |s| s.files_found_renamed),
        (&n::SOURCE_FILES_GONE, |s| s.files_gone),
        (&n::SOURCE_BYTES_GONE, |s| s.bytes_gone),
    ];
    for (def, get) in families {
        each(w, def, &snaps, |w, (name, s)| {
            w.sample(&[("source", *name)], get(s) as f64)
        });
    }
}

fn pipelines(w: &mut Writer, m: &Monitor) {
    type Get = fn(&PipelineStats) -> f64;
    let families: [(&MetricDef, Get); 18] = [
        (&n::PIPELINE_SWAPS, |s| PipelineStats::get(&s.swaps) as f64),
        (&n::PIPELINE_SWAP_PAUSE_MAX_SECONDS, |s| {
            PipelineStats::get(&s.swap_pause_max_nanos) as f64 / 1e9
        }),
        (&n::PIPELINE_CHUNKS, |s| {
            PipelineStats::get(&s.chunks) as f64
        }),
        (&n::PIPELINE_RECORD_ERRORS, |s| {
            PipelineStats::get(&s.record_errors) as f64
        }),
        (&n::PIPELINE_SAMPLES, |s| {
            PipelineStats::get(&s.samples) as f64
        }),
        (&n::PIPELINE_CHANGES, |s| {
            PipelineStats::get(&s.changes) as f64
        }),
        (&n::PIPELINE_CHANGES_REFUSED, |s| {
            PipelineStats::get(&s.changes_refused) as f64
        }),
        (&n::PIPELINE_FLUSH_FAILURES, |s| {
            PipelineStats::get(&s.flush_failures) as f64
        }),
        (&n::PIPELINE_BROKER_WAITING, |s| {
            PipelineStats::get(&s.broker_waiting) as f64
        }),
        (&n::PIPELINE_SERIES_CHANGES_HELD, |s| {
            PipelineStats::get(&s.series_changes_held) as f64
        }),
        (&n::PIPELINE_SERIES_DORMANT, |s| {
            PipelineStats::get(&s.series_dormant) as f64
        }),
        (&n::PIPELINE_DELTA_FALLBACKS, |s| {
            PipelineStats::get(&s.delta_fallbacks) as f64
        }),
        (&n::PIPELINE_CHECKPOINTS, |s| {
            PipelineStats::get(&s.checkpoints) as f64
        }),
        (&n::PIPELINE_CHECKPOINT_ERRORS, |s| {
            PipelineStats::get(&s.checkpoint_errors) as f64
        }),
        (&n::PIPELINE_CHECKPOINT_LAG_BYTES, |s| {
            PipelineStats::get(&s.uncheckpointed_bytes) as f64
        }),
        (&n::PIPELINE_CHECKPOINTS_SKIPPED, |s| {
            PipelineStats::get(&s.checkpoints_skipped) as f64
        }),
        (&n::PIPELINE_REFUSED_OUTPUTS, |s| {
            PipelineStats::get(&s.refused_outputs) as f64
        }),
        (&n::PIPELINE_INPUT_PAUSED, |s| {
            PipelineStats::get(&s.input_paused) as f64
        }),
    ];
    let pipelines = m.pipelines();
    for (def, value) in families {
        each(w, def, &pipelines, |w, p| {
            w.sample(&[("pipeline", p.name.as_str())], value(&p.stats))
        });
    }
    let now = unix_now_ms();
    each(
        w,
        &n::PIPELINE_CHECKPOINT_LAG_SECONDS,
        &pipelines,
        |w, p| {
            w.sample(
                &[("pipeline", &p.name)],
                p.stats.checkpoint_lag_seconds(now),
            )
        },
    );
}

fn plugins(w: &mut Writer, m: &Monitor) {
    let rows: Vec<_> = m
        .plugin_instances()
        .into_iter()
        .map(|(pipeline, r)| (pipeline, r.name, r.role.to_string(), r.health.snapshot()))
        .collect();
    type Get = fn(&wasmeter_plugin::Health) -> f64;
    let families: [(&MetricDef, Get); 7] = [
        (&n::PLUGIN_CALLS, |h| h.calls as f64),
        (&n::PLUGIN_ERRORS, |h| h.failures as f64),
        (&n::PLUGIN_BUSY_SECONDS, |h| h.busy.as_secs_f64()),
        (&n::PLUGIN_REBUILDS, |h| h.rebuilds as f64),
        (&n::PLUGIN_RECYCLES, |h| h.recycles as f64),
        (&n::PLUGIN_QUARANTINED, |h| {
            f64::from(u8::from(h.quarantined))
        }),
        (&n::PLUGIN_QUARANTINES, |h| h.quarantines as f64),
    ];
    for (def, get) in families {
        each(w, def, &rows, |w, (pipeline, plugin, role, h)| {
            w.sample(
                &[
                    ("pipeline", pipeline.as_str()),
                    ("plugin", plugin.as_str()),
                    ("role", role.as_str()),
                ],
                get(h),
            )
        });
    }
}

fn server_and_hub(w: &mut Writer, server: &ServerState) {
    let s = server.metrics();
    let hub = server.hub().stats();
    let single: [(&MetricDef, f64); 20] = [
        (&n::SERVER_CONNECTIONS, s.connections_active as f64),
        (&n::SERVER_CONNECTIONS_ACCEPTED, s.connections_total as f64),
        (&n::SERVER_CONNECTIONS_REFUSED, s.connections_refused as f64),
        (
            &n::SERVER_HTTP_CONNECTIONS,
            s.http_connections_active as f64,
        ),
        (
            &n::SERVER_HTTP_CONNECTIONS_REFUSED,
            s.http_connections_refused as f64,
        ),
        (&n::SERVER_CONFLATIONS, s.conflations as f64),
        (&n::SERVER_STREAM_GAPS, s.stream_gaps as f64),
        (
            &n::SERVER_SLOW_CONSUMER_DISCONNECTS,
            s.slow_consumer_disconnects as f64,
        ),
        (&n::SERVER_HEARTBEAT_TIMEOUTS, s.heartbeat_timeouts as f64),
        (&n::SERVER_ABUSIVE_DISCONNECTS, s.abusive_disconnects as f64),
        (&n::SERVER_MALFORMED_MESSAGES, s.malformed_messages as f64),
        (&n::SERVER_REFUSED_MESSAGES, s.refused_messages as f64),
        (&n::SERVER_UNAUTHORIZED, s.unauthorized as f64),
        (&n::SERVER_FORBIDDEN, s.forbidden as f64),
        (&n::SERVER_TOKEN_EXPIRIES, s.token_expiries as f64),
        (&n::HUB_TOPICS, hub.topics as f64),
        (&n::HUB_SUBSCRIPTIONS, hub.slots as f64),
        (&n::HUB_PUBLISHED, hub.published as f64),
        (&n::HUB_HISTORY_MESSAGES, hub.history_messages as f64),
        (&n::HUB_HISTORY_BYTES, hub.history_bytes as f64),
    ];
    for (def, value) in single {
        w.family(def);
        w.sample(&[], value);
    }
    w.family(&n::SERVER_SENT_MESSAGES);
    w.sample(&[("format", "json")], s.messages_sent_json as f64);
    w.sample(&[("format", "msgpack")], s.messages_sent_msgpack as f64);
    w.family(&n::SERVER_SENT_BYTES);
    w.sample(&[("format", "json")], s.bytes_sent_json as f64);
    w.sample(&[("format", "msgpack")], s.bytes_sent_msgpack as f64);
}

/// The collected series, one family per metric name (names starting with
/// `wasmeter_` are left out: they are the host's own).
/// The help of a plugin's series (the host knows no more about it).
const SERIES_HELP: &str = "A sample series published by the host's plugins (latest value).";

fn series(w: &mut Writer, m: &Monitor) {
    let all = m.series().all();
    w.family(&n::SERIES);
    w.sample(&[], all.len() as f64);
    let mut current: Option<&str> = None;
    for (key, value) in &all {
        let name = key.name();
        if name.starts_with("wasmeter_") {
            continue;
        }
        if current != Some(name) {
            current = Some(name);
            let kind = match value.kind {
                MetricKind::Gauge => Kind::Gauge,
                MetricKind::Counter => Kind::Counter,
            };
            w.family_named(&sanitize_name(name, true), kind, SERIES_HELP);
        }
        let names: Vec<String> = key
            .labels()
            .map(|(name, _)| sanitize_name(name, false))
            .collect();
        let labels: Vec<(&str, &str)> = names
            .iter()
            .zip(key.labels())
            .map(|(name, (_, v))| (name.as_str(), v))
            .collect();
        w.sample(&labels, value.value);
    }
}
