//! Fan-out with the demo's derived metrics on: the `fanout` scenario (every
//! subscriber takes all 1,000 `bench/*` topics, 2,000,000 messages/s offered) run
//! three times in a row per subscriber count and format: the floor, the host as in
//! `fanout`, and the host with the derived-metric plugins of the built-in demo
//! (`counter-rate`, `vwap`, `ewma`, `rolling-minmax`, `threshold-alert`) in its
//! pipeline; the two hosts run in alternating order. The goal: the host with
//! metrics delivers >= 0.9x the floor's messages/s of the same run at 1,000
//! subscribers.

use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::run::{self, Format, StreamResult, StreamSpec};
use crate::stats::ratio;
use crate::target::{self, Binaries, Kind};

/// The goal: messages/s of the host with metrics over the floor's.
const GOAL_VS_FLOOR: f64 = 0.9;

/// A derived-metric plugin of the demo config (`host/cli/src/defaults.rs`), on the
/// bench's trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// `counter-rate` of the trade and volume totals.
    Rate,
    /// `vwap` over 60 s: price and volume paired per symbol.
    Vwap,
    /// `ewma` of the price.
    Ewma,
    /// `rolling-minmax` of the price over 60 s.
    Minmax,
    /// `threshold-alert` on the price.
    Alert,
}

impl Metric {
    /// Every one, in the order of the demo's pipeline.
    pub const ALL: [Metric; 5] = [
        Metric::Rate,
        Metric::Vwap,
        Metric::Ewma,
        Metric::Minmax,
        Metric::Alert,
    ];

    /// The plugin's name in the pipeline's `metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Rate => "rate",
            Metric::Vwap => "vwap",
            Metric::Ewma => "ewma",
            Metric::Minmax => "minmax",
            Metric::Alert => "alert",
        }
    }

    /// The plugin's table. The demo's `threshold-alert` watches CPU in another
    /// pipeline; here it watches `trade_price` (above any bench price, so it is
    /// evaluated for every price and never fires: no alert events are added to
    /// the load).
    fn table(self) -> &'static str {
        match self {
            Metric::Rate => {
                "[plugins.rate]\nbuiltin = \"counter-rate\"\nconfig = { metrics = \"trades_total,trade_volume_total\" }\n"
            }
            Metric::Vwap => "[plugins.vwap]\nbuiltin = \"vwap\"\nconfig = { window_ms = 60000 }\n",
            Metric::Ewma => {
                "[plugins.ewma]\nbuiltin = \"ewma\"\nconfig = { metrics = \"trade_price\", alpha = 0.1 }\n"
            }
            Metric::Minmax => {
                "[plugins.minmax]\nbuiltin = \"rolling-minmax\"\nconfig = { metrics = \"trade_price\", window_ms = 60000 }\n"
            }
            Metric::Alert => {
                "[plugins.alert]\nbuiltin = \"threshold-alert\"\nconfig = { metric = \"trade_price\", op = \">\", threshold = 1000000000, for_samples = 3, name = \"price_high\" }\n"
            }
        }
    }
}

/// The bench host's config (see [`target::host_config`]) with `metrics` in its
/// pipeline: the pipeline's table comes last there, so the `metrics` key lands in it.
pub fn host_config(history: bool, shards: u32, metrics: &[Metric]) -> String {
    let mut config = target::host_config(history, shards);
    if metrics.is_empty() {
        return config;
    }
    debug_assert!(config.lines().rfind(|l| l.starts_with('[')) == Some("[pipelines.feed]"));
    let names: Vec<String> = metrics
        .iter()
        .map(|m| format!("\"{}\"", m.name()))
        .collect();
    let _ = writeln!(config, "metrics = [{}]", names.join(", "));
    for m in metrics {
        config.push('\n');
        config.push_str(m.table());
    }
    config
}

/// The server of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Server {
    /// The bare floor.
    Floor,
    /// The host as in `fanout` (collector + field delta).
    Host,
    /// The host with the demo's derived metrics.
    HostMetrics,
}

/// One measured run.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Which server.
    pub server: Server,
    /// What it measured.
    pub run: StreamResult,
}

/// Runs floor, host and host with metrics for each subscriber count and format.
pub fn measure(
    rows: &mut Vec<Row>,
    subscribers: &[usize],
    formats: &[Format],
    secs: f64,
    root: &Path,
    bins: &Binaries,
) -> Result<()> {
    let with_metrics = Binaries {
        metrics: Metric::ALL.to_vec(),
        ..bins.clone()
    };
    let mut round = 0;
    for &subs in subscribers {
        for &format in formats {
            let mut servers = [
                (Server::Floor, Kind::Floor, bins),
                (Server::Host, Kind::Host, bins),
                (Server::HostMetrics, Kind::Host, &with_metrics),
            ];
            // The two hosts take turns at running last, so that neither always
            // meets the machine as the previous runs left it.
            if round % 2 == 1 {
                servers.swap(1, 2);
            }
            round += 1;
            for (server, kind, bins) in servers {
                let spec = StreamSpec {
                    target: kind,
                    format,
                    rate: (crate::FANOUT_OFFERED / subs as u64).clamp(1000, 50_000),
                    feed: crate::producer::FeedShape::ONE_FILE,
                    topics: crate::FANOUT_TOPICS,
                    subscribers: subs,
                    timing: 2.min(subs),
                    bulk_all_topics: true,
                    secs,
                    timeline: None,
                };
                eprintln!("fan-out with metrics: {server:?} {format:?}, {subs} subscribers");
                let run = run::stream(&spec, root, bins).with_context(|| format!("{spec:?}"))?;
                eprintln!(
                    "  delivered {:.0}/s, p50 {} us, server CPU {:.0}%",
                    run.delivered_per_sec, run.latency.p50_us, run.server_cpu_pct
                );
                rows.push(Row { server, run });
            }
        }
    }
    Ok(())
}

fn x(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.2}x")).unwrap_or_else(|| "-".into())
}

/// The table: each host row against the floor of the same subscribers and format,
/// and against the goal (0.9x the floor).
pub fn markdown(out: &mut String, rows: &[Row]) {
    if rows.is_empty() {
        return;
    }
    out.push_str(
        "### Fan-out with the demo's derived metrics\n\n\
         | subscribers | format | server | offered msgs/s | delivered msgs/s | / floor | / goal 0.9x floor | \
         coverage | frames/record | p50 ms | p99 ms | server CPU % | server RSS MiB | generator CPU % |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let s = &r.run.spec;
        let floor = rows.iter().find(|f| {
            f.server == Server::Floor
                && f.run.spec.format == s.format
                && f.run.spec.subscribers == s.subscribers
        });
        let vs_floor = floor
            .filter(|_| r.server != Server::Floor)
            .and_then(|f| ratio(r.run.delivered_per_sec, f.run.delivered_per_sec));
        let _ = writeln!(
            out,
            "| {} | {:?} | {:?} | {:.0} | {:.0} | {} | {} | {:.2}% | {:.2} | {:.2} | {:.2} | {:.0} | {:.1} | {:.0} |",
            s.subscribers,
            s.format,
            r.server,
            r.run.produced_per_sec * s.subscribers as f64,
            r.run.delivered_per_sec,
            x(vs_floor),
            x(vs_floor.map(|v| v / GOAL_VS_FLOOR)),
            r.run.coverage * 100.0,
            r.run.frames_per_record,
            r.run.latency.p50_us as f64 / 1000.0,
            r.run.latency.p99_us as f64 / 1000.0,
            r.run.server_cpu_pct,
            r.run.server_rss_mib,
            r.run.gen_cpu_pct,
        );
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_land_in_the_bench_pipeline() {
        let config = host_config(true, 1, &Metric::ALL);
        // The last table before the metrics key is the bench pipeline.
        let (before, after) = config.split_once("metrics = [").unwrap();
        let last_table = before.lines().rfind(|l| l.starts_with('[')).unwrap();
        assert_eq!(last_table, "[pipelines.feed]");
        for name in ["rate", "vwap", "ewma", "minmax", "alert"] {
            assert!(after.contains(&format!("[plugins.{name}]")), "{name}");
        }
    }

    #[test]
    fn one_metric_adds_only_its_plugin() {
        let config = host_config(true, 1, &[Metric::Vwap]);
        assert!(config.contains("metrics = [\"vwap\"]\n"));
        assert_eq!(config.matches("builtin = ").count(), 3, "{config}");
        assert!(config.contains("builtin = \"vwap\""));
        assert!(!host_config(true, 1, &[]).contains("metrics ="));
    }
}
