//! The many-symbols scenario's tables: memory against the goal and the floor
//! of the same run, and the per-topic costs against the same costs at the
//! smallest symbol count of the run (above 1: superlinear growth).

use std::fmt::Write;

use crate::stats::ratio;
use crate::symbols::{SymbolsResult, SymbolsSpec};
use crate::target::Kind;

/// The memory goal: host RSS of 200 MB (190.7 MiB) with 10,000 symbols and
/// 1,000 subscribers.
const RSS_GOAL_MIB: f64 = 200e6 / (1u64 << 20) as f64;

fn x(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.2}x")).unwrap_or_else(|| "-".into())
}

fn floor_of<'a>(runs: &'a [SymbolsResult], r: &SymbolsResult) -> Option<&'a SymbolsResult> {
    runs.iter()
        .find(|f| f.target == Some(Kind::Floor) && f.symbols == r.symbols)
}

/// The host run with the fewest symbols: the per-topic baseline.
fn smallest(runs: &[SymbolsResult]) -> Option<&SymbolsResult> {
    runs.iter()
        .filter(|r| r.target == Some(Kind::Host))
        .min_by_key(|r| r.symbols)
}

/// Per-topic microseconds of `secs` over `n` topics, and its ratio to the
/// baseline's.
fn per_topic(secs: f64, n: usize, base: Option<(f64, usize)>) -> String {
    let us = secs * 1e6 / n.max(1) as f64;
    let vs = base.and_then(|(s, m)| ratio(us, s * 1e6 / m.max(1) as f64));
    format!("{us:.1} µs ({})", x(vs))
}

/// The tables of a run.
pub fn markdown(spec: &SymbolsSpec, runs: &[SymbolsResult], load: (&str, &str)) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Many symbols\n\nload average before: {}; after: {}\n\n\
         {} subscribers: {} of every symbol (`bench/*`, 2 timing), the others {} symbols each; \
         {} rounds of records before start; live {} records/s for {} s; field TTL {} ms.\n",
        load.0,
        load.1,
        spec.mix.subscribers,
        spec.mix.all,
        spec.mix.watch,
        spec.rounds,
        spec.rate,
        spec.secs,
        spec.field_ttl_ms
    );
    out.push_str(
        "| server | symbols | topics | records | ingest s | RSS topics MiB | RSS subscribed MiB | \
         RSS live MiB | live / goal 200 MB | live / floor | RSS live peak MiB | peak / goal | slots | subscribe s | live p50 / p99 ms | \
         coverage | delivered frames/s | live CPU % | idle CPU % |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in runs {
        let floor = floor_of(runs, r).filter(|_| r.target == Some(Kind::Host));
        let _ = writeln!(
            out,
            "| {:?} | {} | {} | {} | {:.1} | {:.0} | {:.0} | {:.0} | {} | {} | {:.0} | {} | {} | {:.2} | {:.2} / {:.2} | {:.2}% | {:.0} | {:.0} | {:.1} |",
            r.target.unwrap_or(Kind::Host),
            r.symbols,
            r.topics,
            r.records,
            r.ingest_secs,
            r.rss_topics_mib,
            r.rss_subscribed_mib,
            r.rss_live_mib,
            x(ratio(r.rss_live_mib, RSS_GOAL_MIB)),
            x(floor.and_then(|f| ratio(r.rss_live_mib, f.rss_live_mib))),
            r.rss_live_peak_mib,
            x(ratio(r.rss_live_peak_mib, RSS_GOAL_MIB)),
            r.slots,
            r.subscribe_secs,
            r.latency.p50_us as f64 / 1e3,
            r.latency.p99_us as f64 / 1e3,
            r.coverage * 100.0,
            r.delivered_per_sec,
            r.live_cpu_pct,
            r.idle_cpu_pct,
        );
    }
    let base = smallest(runs);
    out.push_str(
        "\nPer-topic costs of the host, each against the same cost per topic at the smallest \
         symbol count of this run (1.00x: linear).\n\n\
         | symbols | topics | snapshots of every symbol: 1st s (per topic) | 2nd s (per topic) | snapshot bytes | \
         /api/topics 1,000 a page: pages, s (per topic) | slowest page ms | bytes of all pages | \
         10,000-topic page ms, bytes | /metrics ms (per topic), bytes |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in runs.iter().filter(|r| r.target == Some(Kind::Host)) {
        let snap = |i: usize| {
            let s = r.snapshots.get(i).copied().unwrap_or_default();
            let b = base.and_then(|b| b.snapshots.get(i).map(|s| (s.secs, b.symbols)));
            format!("{:.3} ({})", s.secs, per_topic(s.secs, r.symbols, b))
        };
        let p = r.paging.clone().unwrap_or_default();
        let bp = base
            .and_then(|b| b.paging.as_ref())
            .map(|b| (b.secs, b.topics));
        let metrics_s = r.metrics_ms.iter().copied().fold(f64::MAX, f64::min) / 1e3;
        let bm = base.map(|b| {
            (
                b.metrics_ms.iter().copied().fold(f64::MAX, f64::min) / 1e3,
                b.topics,
            )
        });
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {}, {:.3} ({}) | {:.1} | {} | {:.1}, {} | {:.1} ({}), {} |",
            r.symbols,
            r.topics,
            snap(0),
            snap(1),
            r.snapshots.first().map_or(0, |s| s.bytes),
            p.pages,
            p.secs,
            per_topic(p.secs, p.topics, bp),
            p.max_page_ms,
            p.bytes,
            p.big_page_ms,
            p.big_page_bytes,
            metrics_s * 1e3,
            per_topic(metrics_s, r.topics, bm),
            r.metrics_bytes,
        );
    }
    out
}
