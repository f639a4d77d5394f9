//! The cluster scenario's tables ([`crate::cluster`]): every phase against the
//! single host with the memory broker and the floor of the same round, and
//! against the goals; each Redis-phase host apart; Redis's own time per command.

use std::fmt::Write;

use crate::cluster::{ClusterArgs, PhaseKind};
use crate::cluster_phase::PhaseResult;
use crate::stats::ratio;

/// The fan-out goal: messages delivered per second.
const DELIVERED_GOAL: f64 = 1_000_000.0;
/// The latency goal: p99 at most this multiple of the floor's p99.
const P99_FLOOR_GOAL: f64 = 2.0;

fn x(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.2}x")).unwrap_or_else(|| "-".into())
}

fn ms(us: u64) -> f64 {
    us as f64 / 1e3
}

/// The run of `kind` with `subscribers` in `round`.
fn find(
    runs: &[(usize, PhaseResult)],
    round: usize,
    kind: PhaseKind,
    subscribers: usize,
) -> Option<&PhaseResult> {
    runs.iter()
        .find(|(r, p)| *r == round && p.phase.kind == kind && p.phase.subscribers == subscribers)
        .map(|(_, p)| p)
}

fn floor(runs: &[(usize, PhaseResult)], round: usize) -> Option<&PhaseResult> {
    runs.iter()
        .find(|(r, p)| *r == round && p.phase.kind == PhaseKind::Floor)
        .map(|(_, p)| p)
}

fn name(p: &PhaseResult) -> String {
    match p.phase.kind {
        PhaseKind::Floor => "floor".into(),
        PhaseKind::Memory => "1 host, memory".into(),
        PhaseKind::Redis => format!("{} hosts, Redis", p.phase.hosts),
    }
}

/// The tables of a run.
pub fn markdown(
    args: &ClusterArgs,
    secs: f64,
    runs: &[(usize, PhaseResult)],
    load: (&str, &str),
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Several hosts through Redis\n\nload average before: {}; after: {}\n\n\
         {} records/s over {} topics; every subscriber takes `bench/*`; fleets of {} \
         ({} timing connections each); window {secs} s after 1 s warm-up.\n",
        load.0,
        load.1,
        args.rate,
        args.topics,
        args.subscribers,
        crate::cluster_phase::TIMING,
    );
    out.push_str(
        "Delivered, against the single host with the memory broker of the same round \
         (same subscribers; and with one fleet), the floor of the round and the goal.\n\n\
         | round | servers | subscribers | produced rec/s | delivered frames/s | records/frame | \
         delivered records/s | / offered | / goal 1M | / memory, same subs | / memory, {n} subs | / floor |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n"
            .replace("{n}", &args.subscribers.to_string())
            .as_str(),
    );
    for (round, p) in runs {
        let same = find(runs, *round, PhaseKind::Memory, p.phase.subscribers)
            .filter(|_| p.phase.kind != PhaseKind::Memory);
        let one = find(runs, *round, PhaseKind::Memory, args.subscribers)
            .filter(|m| !std::ptr::eq(*m, p));
        let fl = floor(runs, *round).filter(|f| !std::ptr::eq(*f, p));
        let offered = p.produced_per_sec * p.phase.subscribers as f64;
        let d = p.delivered_records_per_sec;
        let _ = writeln!(
            out,
            "| {round} | {} | {} | {:.0} | {:.0} | {:.3} | {:.0} | {} | {} | {} | {} | {} |",
            name(p),
            p.phase.subscribers,
            p.produced_per_sec,
            p.delivered_frames_per_sec,
            p.records_per_frame,
            d,
            x(ratio(d, offered)),
            x(ratio(p.delivered_frames_per_sec, DELIVERED_GOAL)),
            x(same.and_then(|m| ratio(d, m.delivered_records_per_sec))),
            x(one.and_then(|m| ratio(d, m.delivered_records_per_sec))),
            x(fl.and_then(|f| ratio(d, f.delivered_records_per_sec))),
        );
    }
    out.push_str(
        "\nLatency (record written -> frame received, every record at the timing connections) \
         and CPU (100% = one core).\n\n\
         | round | servers | subscribers | p50 ms | p99 ms | p50 / memory | p99 / memory | \
         p99 / floor (goal 2x) | coverage | repeated | servers CPU % | redis CPU % | \
         generator CPU % | servers+redis CPU µs / frame |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (round, p) in runs {
        let same = find(runs, *round, PhaseKind::Memory, p.phase.subscribers)
            .filter(|_| p.phase.kind != PhaseKind::Memory);
        let fl = floor(runs, *round).filter(|f| !std::ptr::eq(*f, p));
        let cpu = p.hosts_cpu_pct + p.redis_cpu_pct.unwrap_or(0.0);
        let vs = |a: u64, b: Option<u64>| x(b.and_then(|b| ratio(a as f64, b as f64)));
        let _ = writeln!(
            out,
            "| {round} | {} | {} | {:.2} | {:.2} | {} | {} | {} | {:.2}% | {} | {:.0} | {} | {:.0} | {:.2} |",
            name(p),
            p.phase.subscribers,
            ms(p.latency.p50_us),
            ms(p.latency.p99_us),
            vs(p.latency.p50_us, same.map(|m| m.latency.p50_us)),
            vs(p.latency.p99_us, same.map(|m| m.latency.p99_us)),
            fl.and_then(|f| ratio(p.latency.p99_us as f64, f.latency.p99_us as f64))
                .map(|r| format!("{r:.2}x ({:.2}x the goal)", r / P99_FLOOR_GOAL))
                .unwrap_or_else(|| "-".into()),
            p.coverage * 100.0,
            p.repeated,
            p.hosts_cpu_pct,
            p.redis_cpu_pct
                .map(|c| format!("{c:.0}"))
                .unwrap_or_else(|| "-".into()),
            p.gen_cpu_pct,
            ratio(cpu / 100.0 * 1e6, p.delivered_frames_per_sec).unwrap_or(0.0),
        );
    }
    out.push_str(
        "\nEach host of the Redis phase (the leader holds the pipeline's lease: it reads the \
         feed and publishes; followers apply what Redis relays). Broker counters at the end \
         of the run.\n\n\
         | round | role | subscribers | frames/s | p50 ms | p99 ms | coverage | CPU % | RSS MiB | \
         published | applied | duplicates | gaps repaired | gaps reset | overflows |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (round, p) in runs
        .iter()
        .filter(|(_, p)| p.phase.kind == PhaseKind::Redis)
    {
        for s in &p.servers {
            let b = |k: &str| {
                s.broker
                    .iter()
                    .find(|(n, _)| n == k)
                    .map_or(0.0, |(_, v)| *v)
            };
            let _ = writeln!(
                out,
                "| {round} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2}% | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
                s.role,
                s.subscribers,
                s.frames_per_sec,
                ms(s.latency.p50_us),
                ms(s.latency.p99_us),
                s.coverage * 100.0,
                s.cpu_pct,
                s.rss_mib,
                b("published"),
                b("messages_applied"),
                b("duplicates"),
                b("gaps_repaired"),
                b("gaps_reset"),
                b("overflows"),
            );
        }
    }
    out.push_str(
        "\nRedis's own time per command over the window (`INFO commandstats` after \
         `CONFIG RESETSTAT`; commands the scripts call are counted too, and their time is \
         part of the script's).\n\n\
         | round | command | calls | calls/s | usec/call | usec in all |\n|---|---|---|---|---|---|\n",
    );
    for (round, p) in runs
        .iter()
        .filter(|(_, p)| p.phase.kind == PhaseKind::Redis)
    {
        let mut cmds = p.redis_commands.clone();
        cmds.sort_by_key(|c| std::cmp::Reverse(c.usec));
        for c in cmds.iter().filter(|c| !c.command.starts_with("config")) {
            let _ = writeln!(
                out,
                "| {round} | {} | {} | {:.0} | {:.2} | {} |",
                c.command,
                c.calls,
                c.calls as f64 / secs,
                c.usec_per_call,
                c.usec
            );
        }
    }
    out
}
