//! Markdown tables of the results, each figure next to its goal and to the floor
//! measured in the same run.

use std::fmt::Write;

use serde::Serialize;

use crate::backlog::BacklogResult;
use crate::delta_savings::Savings;
use crate::run::{IdleResult, StreamResult};
use crate::stats::{Percentiles, ratio};
use crate::target::Kind;

/// Everything one invocation measured.
#[derive(Debug, Default, Serialize)]
pub struct Results {
    /// `/proc/loadavg` before the first run.
    pub loadavg_before: String,
    /// `/proc/loadavg` after the last run.
    pub loadavg_after: String,
    /// Bare notify latency (append to bytes read back).
    pub notify_floor: Option<Percentiles>,
    /// Memory per idle connection.
    pub idle: Vec<IdleResult>,
    /// End-to-end latency runs.
    pub latency: Vec<StreamResult>,
    /// Derived metrics in the host's pipeline in the latency runs.
    pub latency_metrics: Vec<crate::fanout_metrics::Metric>,
    /// Fan-out runs.
    pub fanout: Vec<StreamResult>,
    /// Backlog catch-up runs.
    pub backlog: Vec<BacklogResult>,
    /// Delta savings per format.
    pub delta_savings: Vec<Savings>,
    /// Fan-out with the demo's derived metrics, floor and host in the same run.
    pub fanout_metrics: Vec<crate::fanout_metrics::Row>,
}

/// `/proc/loadavg`, trimmed.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

fn x(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.2}x")).unwrap_or_else(|| "-".into())
}

/// The floor run that matches `r` (same spec, floor server): the last one
/// before it (the same round when runs alternate), else the first.
fn floor_of<'a>(runs: &'a [StreamResult], r: &StreamResult) -> Option<&'a StreamResult> {
    let matches = |f: &&StreamResult| {
        f.spec.target == Kind::Floor
            && f.spec.format == r.spec.format
            && f.spec.rate == r.spec.rate
            && f.spec.feed == r.spec.feed
            && f.spec.subscribers == r.spec.subscribers
    };
    let at = runs.iter().position(|x| std::ptr::eq(x, r));
    let before = at.and_then(|at| runs[..at].iter().rev().find(matches));
    before.or_else(|| runs.iter().find(matches))
}

/// For each case run in several rounds: the host's p99 over its round's floor
/// p99, lowest, median and highest.
fn latency_rounds(out: &mut String, runs: &[StreamResult]) {
    let mut cases: Vec<(&StreamResult, Vec<f64>)> = Vec::new();
    for r in runs.iter().filter(|r| r.spec.target == Kind::Host) {
        let Some(ratio) =
            floor_of(runs, r).and_then(|f| ratio(r.latency.p99_us as f64, f.latency.p99_us as f64))
        else {
            continue;
        };
        let same = |c: &&mut (&StreamResult, Vec<f64>)| {
            c.0.spec.rate == r.spec.rate
                && c.0.spec.feed == r.spec.feed
                && c.0.spec.subscribers == r.spec.subscribers
                && c.0.spec.format == r.spec.format
        };
        match cases.iter_mut().find(same) {
            Some(case) => case.1.push(ratio),
            None => cases.push((r, vec![ratio])),
        }
    }
    for (r, mut ratios) in cases.into_iter().filter(|(_, v)| v.len() > 1) {
        ratios.sort_by(f64::total_cmp);
        let n = ratios.len();
        let median = match n % 2 {
            1 => ratios[n / 2],
            _ => (ratios[n / 2 - 1] + ratios[n / 2]) / 2.0,
        };
        let _ = writeln!(
            out,
            "\n{} records/s, {}, {} subscribers: host p99 / its round's floor p99 over {} rounds: \
             lowest {:.2}x, median {:.2}x, highest {:.2}x",
            r.spec.rate,
            r.spec.feed.describe(),
            r.spec.subscribers,
            n,
            ratios[0],
            median,
            ratios[n - 1],
        );
    }
}

/// Coverage as a percentage, with the repeats (there should be none) if any.
fn coverage(r: &StreamResult) -> String {
    let pct = format!("{:.2}%", r.coverage * 100.0);
    if r.repeated > 0 {
        format!("{pct} ({} repeated)", r.repeated)
    } else {
        pct
    }
}

fn latency_table(out: &mut String, runs: &[StreamResult]) {
    out.push_str(
        "| records/s | feed | subscribers | server | p50 ms | p99 ms | p99.9 ms | max ms | records timed | \
         coverage | frames/record | p50 / floor | p99 / floor | delivered msgs/s | server CPU % | server RSS MiB | generator CPU % |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in runs {
        let l = &r.latency;
        let floor = floor_of(runs, r).filter(|_| r.spec.target == Kind::Host);
        let vs = |f: fn(&Percentiles) -> u64| {
            x(floor.and_then(|fl| ratio(f(l) as f64, f(&fl.latency) as f64)))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:?} | {} | {} | {} | {} | {} | {} | {:.2} | {} | {} | {:.0} | {:.0} | {:.1} | {:.0} |",
            r.spec.rate,
            r.spec.feed.describe(),
            r.spec.subscribers,
            r.spec.target,
            ms(l.p50_us),
            ms(l.p99_us),
            ms(l.p999_us),
            ms(l.max_us),
            l.count,
            coverage(r),
            r.frames_per_record,
            vs(|p| p.p50_us),
            vs(|p| p.p99_us),
            r.delivered_per_sec,
            r.server_cpu_pct,
            r.server_rss_mib,
            r.gen_cpu_pct,
        );
    }
}

fn fanout_table(out: &mut String, runs: &[StreamResult]) {
    out.push_str(
        "| subscribers | format | server | offered msgs/s | delivered msgs/s | / floor | / goal 1M | \
         bytes/frame | coverage | frames/record | p50 ms | p99 ms | server CPU % | server RSS MiB | generator CPU % |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in runs {
        let floor = floor_of(runs, r).filter(|_| r.spec.target == Kind::Host);
        let _ = writeln!(
            out,
            "| {} | {:?} | {:?} | {:.0} | {:.0} | {} | {} | {:.0} | {} | {:.2} | {} | {} | {:.0} | {:.1} | {:.0} |",
            r.spec.subscribers,
            r.spec.format,
            r.spec.target,
            r.produced_per_sec * r.spec.subscribers as f64,
            r.delivered_per_sec,
            x(floor.and_then(|f| ratio(r.delivered_per_sec, f.delivered_per_sec))),
            x(ratio(r.delivered_per_sec, 1e6)),
            r.bytes_per_frame,
            coverage(r),
            r.frames_per_record,
            ms(r.latency.p50_us),
            ms(r.latency.p99_us),
            r.server_cpu_pct,
            r.server_rss_mib,
            r.gen_cpu_pct,
        );
    }
}

/// The whole report as markdown.
pub fn markdown(res: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "load average before: `{}`, after: `{}`\n",
        res.loadavg_before, res.loadavg_after
    );
    if let Some(n) = &res.notify_floor {
        let _ = writeln!(
            out,
            "### Floor: notify latency (append -> bytes read back)\n\n\
             p50 {} ms, p99 {} ms, p99.9 {} ms, max {} ms ({} appends)\n",
            ms(n.p50_us),
            ms(n.p99_us),
            ms(n.p999_us),
            ms(n.max_us),
            n.count
        );
    }
    if !res.idle.is_empty() {
        out.push_str(
            "### Memory per idle connection\n\n\
             | server | connections | RSS before MiB | RSS after MiB | bytes/connection | / goal 8 KB | / floor |\n\
             |---|---|---|---|---|---|---|\n",
        );
        let floor = res.idle.iter().find(|i| i.target == Kind::Floor);
        for i in &res.idle {
            let _ = writeln!(
                out,
                "| {:?} | {} | {:.1} | {:.1} | {:.0} | {} | {} |",
                i.target,
                i.connections,
                i.rss_before_mib,
                i.rss_after_mib,
                i.bytes_per_connection,
                x(ratio(i.bytes_per_connection, 8192.0)),
                x(floor.and_then(|f| ratio(i.bytes_per_connection, f.bytes_per_connection))),
            );
        }
        out.push('\n');
    }
    if !res.latency.is_empty() {
        out.push_str("### End-to-end latency (append -> timing subscriber)\n\n");
        if !res.latency_metrics.is_empty() {
            let names: Vec<&str> = res.latency_metrics.iter().map(|m| m.name()).collect();
            let _ = writeln!(
                out,
                "The host's pipeline: collector, derived metrics {}, field delta.\n",
                names.join(", ")
            );
        }
        latency_table(&mut out, &res.latency);
        latency_rounds(&mut out, &res.latency);
        out.push('\n');
    }
    if !res.fanout.is_empty() {
        out.push_str("### Fan-out\n\n");
        fanout_table(&mut out, &res.fanout);
        out.push('\n');
    }
    crate::fanout_metrics::markdown(&mut out, &res.fanout_metrics);
    if !res.backlog.is_empty() {
        out.push_str(
            "### Backlog catch-up (records appended at once -> last record of every topic received)\n\n\
             | server | records | topics | seconds | records/s | / goal 1M/s | / floor | coverage | server CPU % | history complete, s | history samples |\n\
             |---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        let floor = res.backlog.iter().find(|b| b.target == Kind::Floor);
        for b in &res.backlog {
            let _ = writeln!(
                out,
                "| {:?} | {} | {} | {:.2} | {:.0} | {} | {} | {:.2}% | {:.0} | {} | {} |",
                b.target,
                b.records,
                b.topics,
                b.secs,
                b.records_per_sec,
                x(ratio(b.records_per_sec, 1e6)),
                x(floor
                    .filter(|_| b.target == Kind::Host)
                    .and_then(|f| ratio(b.records_per_sec, f.records_per_sec))),
                b.coverage * 100.0,
                b.server_cpu_pct,
                b.history_secs.map_or("-".into(), |s| format!("{s:.2}")),
                b.history_coverage
                    .map_or("-".into(), |c| format!("{:.2}%", c * 100.0)),
            );
        }
        out.push('\n');
    }
    if !res.delta_savings.is_empty() {
        out.push_str(
            "### Delta savings (demo market feed)\n\n\
             | format | envelope | topics | updates | delta bytes | snapshot bytes | saving | goal | / goal |\n\
             |---|---|---|---|---|---|---|---|---|\n",
        );
        for s in &res.delta_savings {
            // Tickers: the 80% for 2-3 of ~20 fields changed; else VISION's 90%.
            let rows = [
                ("trades/*", &s.trades, 90.0),
                ("ticker/*", &s.ticker, 80.0),
                ("all", &s.all, 90.0),
            ];
            for (name, b, goal) in rows {
                let _ = writeln!(
                    out,
                    "| {:?} | {:?} | {name} | {} | {} | {} | {:.1}% | {goal:.0}% | {} |",
                    s.format,
                    s.envelope,
                    b.updates,
                    b.delta_bytes,
                    b.snapshot_bytes,
                    b.saving_pct(),
                    x(ratio(b.saving_pct(), goal)),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::FeedShape;
    use crate::run::{Format, StreamSpec};

    fn run(target: Kind, p99_us: u64) -> StreamResult {
        StreamResult {
            spec: StreamSpec {
                target,
                format: Format::Json,
                rate: 30_000,
                feed: FeedShape {
                    files: 10,
                    one_per_write: true,
                },
                topics: 100,
                subscribers: 10,
                timing: 4,
                bulk_all_topics: false,
                secs: 5.0,
                timeline: None,
            },
            latency: Percentiles {
                count: 1,
                p99_us,
                ..Percentiles::default()
            },
            coverage: 1.0,
            frames_per_record: 1.0,
            timing_snapshots: 0,
            repeated: 0,
            delivered_per_sec: 0.0,
            bytes_per_frame: 0.0,
            produced_per_sec: 0.0,
            server_cpu_pct: 0.0,
            server_rss_mib: 0.0,
            gen_cpu_pct: 0.0,
            connect_secs: 0.0,
        }
    }

    #[test]
    fn a_host_run_is_compared_with_the_floor_run_of_its_round() {
        let runs = [
            run(Kind::Floor, 1000),
            run(Kind::Host, 3000),
            run(Kind::Floor, 4000),
            run(Kind::Host, 4000),
            run(Kind::Floor, 500),
            run(Kind::Host, 2500),
        ];
        let floors: Vec<u64> = [1, 3, 5]
            .iter()
            .map(|&i| floor_of(&runs, &runs[i]).unwrap().latency.p99_us)
            .collect();
        assert_eq!(floors, [1000, 4000, 500]);
        let mut out = String::new();
        latency_rounds(&mut out, &runs);
        assert!(
            out.contains("over 3 rounds: lowest 1.00x, median 3.00x, highest 5.00x"),
            "{out}"
        );
    }
}
