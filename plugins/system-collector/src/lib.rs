//! # system-collector: CPU, memory and load from /proc (world `collector`)
//!
//! The host's system source hands a whole /proc file per call, with `source` set to the
//! file's path. Any other source is an error naming it. Malformed lines become record
//! errors; the other lines are still used. No config keys.
//!
//! ## `/proc/stat`
//!
//! CPU busy percentage between this call and the previous one (the first call only
//! stores the counters and emits nothing for CPU): `busy = total - idle - iowait` with
//! `total = user + nice + system + idle + iowait + irq + softirq + steal`.
//!
//! * samples `system_cpu_usage_percent{cpu="total"}` and `{cpu="cpu0"}`, `{cpu="cpu1"}`...
//!   (gauges, 0..100);
//! * topic `system/cpu`, fields `total`, `cpu0`, `cpu1`...
//!
//! ## `/proc/meminfo`
//!
//! * samples `system_memory_total_bytes`, `system_memory_available_bytes`,
//!   `system_memory_used_percent` (gauges; kB values * 1024; used = total - available);
//! * topic `system/memory`, fields `total_bytes`, `available_bytes`, `used_percent`.
//!
//! ## `/proc/loadavg`
//!
//! * samples `system_load1`, `system_load5`, `system_load15`,
//!   `system_processes_running`, `system_processes` (gauges; a gauge takes no `_total`);
//! * topic `system/load`, fields `load1`, `load5`, `load15`, `processes_running`,
//!   `processes_total`.
//!
//! All samples are stamped by the host (timestamp 0). State: the previous CPU counters
//! (so a hot swap does not lose one interval).

use std::collections::BTreeMap;

use wasmeter_sdk::lines::{self, Line};
use wasmeter_sdk::state::{StateReader, StateWriter};
use wasmeter_sdk::{CollectOutput, Collector, Config, Plugin, PluginInfo, Sample, TopicUpdate};

const STATE_SCHEMA: &str = "system-collector";

/// Cumulative CPU counters of one CPU line, in USER_HZ ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CpuTimes {
    total: u64,
    busy: u64,
}

/// The collector: the CPU counters of the previous `/proc/stat`.
#[derive(Debug, Default)]
pub struct SystemCollector {
    previous: BTreeMap<String, CpuTimes>,
}

/// Parses a `cpu`/`cpuN` line of /proc/stat.
fn parse_cpu_line(text: &str) -> Result<(String, CpuTimes), String> {
    let mut parts = text.split_whitespace();
    let name = parts.next().unwrap_or_default().to_string();
    let values = parts
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| format!("{name}: `{v}` is not a counter"))
        })
        .collect::<Result<Vec<u64>, String>>()?;
    if values.len() < 4 {
        return Err(format!(
            "{name}: expected at least 4 counters (user nice system idle), found {}",
            values.len()
        ));
    }
    // guest and guest_nice (9th, 10th) are already included in user and nice.
    let total: u64 = values.iter().take(8).sum();
    let idle = values[3] + values.get(4).copied().unwrap_or(0);
    Ok((
        name,
        CpuTimes {
            total,
            busy: total.saturating_sub(idle),
        },
    ))
}

impl SystemCollector {
    fn stat(&mut self, chunk: &[u8], out: &mut CollectOutput) {
        let mut current = BTreeMap::new();
        lines::for_each(chunk, out, |line, _| {
            if !line.text.starts_with("cpu") {
                return Ok(());
            }
            let (name, times) = parse_cpu_line(line.text)?;
            current.insert(name, times);
            Ok(())
        });
        let mut update = TopicUpdate::new("system/cpu");
        // "cpu" first, then cpu0, cpu1, ... in numeric order.
        let mut names: Vec<&String> = current.keys().collect();
        names.sort_by_key(|n| (n.len(), n.as_str()));
        for name in names {
            let now = current[name];
            let Some(before) = self.previous.get(name) else {
                continue;
            };
            let (Some(dt), Some(db)) = (
                now.total.checked_sub(before.total),
                now.busy.checked_sub(before.busy),
            ) else {
                continue; // counters went backwards: reset, wait for the next interval
            };
            if dt == 0 {
                continue;
            }
            let percent = (db as f64 / dt as f64 * 100.0).clamp(0.0, 100.0);
            let label = if name == "cpu" {
                "total"
            } else {
                name.as_str()
            };
            out.samples
                .push(Sample::gauge("system_cpu_usage_percent", percent).with_label("cpu", label));
            update.push(label, percent);
        }
        if !update.fields.is_empty() {
            out.updates.push(update);
        }
        self.previous = current;
    }
}

/// Parses a `Key:   value [kB]` line of /proc/meminfo into `(key, bytes)`.
fn parse_meminfo_line(line: &Line) -> Result<(String, f64), String> {
    let (key, rest) = line
        .text
        .split_once(':')
        .ok_or_else(|| format!("expected `Key: value [kB]`, found `{}`", line.text))?;
    let mut parts = rest.split_whitespace();
    let value = parts.next().unwrap_or_default();
    let value: u64 = value
        .parse()
        .map_err(|_| format!("{key}: `{value}` is not a number"))?;
    let scale = match parts.next() {
        None => 1.0,
        Some("kB") => 1024.0,
        Some(unit) => return Err(format!("{key}: unknown unit `{unit}`")),
    };
    Ok((key.trim().to_string(), value as f64 * scale))
}

fn meminfo(chunk: &[u8], out: &mut CollectOutput) {
    let (mut total, mut available) = (None, None);
    lines::for_each(chunk, out, |line, _| {
        if line.is_blank() {
            return Ok(());
        }
        match parse_meminfo_line(line)? {
            (key, v) if key == "MemTotal" => total = Some(v),
            (key, v) if key == "MemAvailable" => available = Some(v),
            _ => {}
        }
        Ok(())
    });
    let mut update = TopicUpdate::new("system/memory");
    if let Some(total) = total {
        out.samples
            .push(Sample::gauge("system_memory_total_bytes", total));
        update.push("total_bytes", total);
    }
    if let Some(available) = available {
        out.samples
            .push(Sample::gauge("system_memory_available_bytes", available));
        update.push("available_bytes", available);
    }
    if let (Some(total), Some(available)) = (total, available)
        && total > 0.0
    {
        let used = ((total - available) / total * 100.0).clamp(0.0, 100.0);
        out.samples
            .push(Sample::gauge("system_memory_used_percent", used));
        update.push("used_percent", used);
    }
    if !update.fields.is_empty() {
        out.updates.push(update);
    }
}

/// Parses `0.52 0.58 0.59 2/1234 56789`.
fn parse_loadavg(text: &str) -> Result<[f64; 5], String> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    if parts.len() < 4 {
        return Err(format!(
            "expected `load1 load5 load15 running/total last_pid`, found `{text}`"
        ));
    }
    let load = |i: usize, name: &str| {
        parts[i]
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("{name}: `{}` is not a number", parts[i]))
    };
    let (running, total) = parts[3]
        .split_once('/')
        .and_then(|(r, t)| Some((r.parse::<u64>().ok()?, t.parse::<u64>().ok()?)))
        .ok_or_else(|| format!("processes: `{}` is not `running/total`", parts[3]))?;
    Ok([
        load(0, "load1")?,
        load(1, "load5")?,
        load(2, "load15")?,
        running as f64,
        total as f64,
    ])
}

fn loadavg(chunk: &[u8], out: &mut CollectOutput) {
    let mut done = false;
    lines::for_each(chunk, out, |line, out| {
        if done || line.is_blank() {
            return Ok(());
        }
        done = true;
        let values = parse_loadavg(line.text)?;
        let names = [
            ("system_load1", "load1"),
            ("system_load5", "load5"),
            ("system_load15", "load15"),
            ("system_processes_running", "processes_running"),
            ("system_processes", "processes_total"),
        ];
        let mut update = TopicUpdate::new("system/load");
        for ((metric, field), value) in names.into_iter().zip(values) {
            out.samples.push(Sample::gauge(metric, value));
            update.push(field, value);
        }
        out.updates.push(update);
        Ok(())
    });
}

impl Plugin for SystemCollector {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "system-collector",
            env!("CARGO_PKG_VERSION"),
            "CPU, memory and load average from /proc/stat, /proc/meminfo, /proc/loadavg",
        )
        .emits([
            "system_cpu_usage_percent",
            "system_memory_total_bytes",
            "system_memory_available_bytes",
            "system_memory_used_percent",
            "system_load1",
            "system_load5",
            "system_load15",
            "system_processes_running",
            "system_processes",
            "system/cpu",
            "system/memory",
            "system/load",
        ])
        .stateful(true)
    }

    fn init(_config: &Config) -> Result<Self, String> {
        Ok(SystemCollector::default())
    }

    fn export_state(&self) -> Option<Vec<u8>> {
        let mut w = StateWriter::new(STATE_SCHEMA, 1);
        w.count(self.previous.len());
        for (name, t) in &self.previous {
            w.str(name).u64(t.total).u64(t.busy);
        }
        Some(w.finish())
    }

    fn import_state(&mut self, state: &[u8]) -> Result<(), String> {
        let mut r = StateReader::new(state, STATE_SCHEMA)?;
        let mut previous = BTreeMap::new();
        for _ in 0..r.count()? {
            let name = r.str()?;
            let total = r.u64()?;
            let busy = r.u64()?;
            previous.insert(name, CpuTimes { total, busy });
        }
        r.finish()?;
        self.previous = previous;
        Ok(())
    }
}

impl Collector for SystemCollector {
    fn collect(&mut self, source: &str, chunk: &[u8]) -> Result<CollectOutput, String> {
        let mut out = CollectOutput::new();
        match source {
            "/proc/stat" => self.stat(chunk, &mut out),
            "/proc/meminfo" => meminfo(chunk, &mut out),
            "/proc/loadavg" => loadavg(chunk, &mut out),
            other => {
                return Err(format!(
                    "unknown source `{other}`: system-collector reads /proc/stat, \
                     /proc/meminfo and /proc/loadavg"
                ));
            }
        }
        Ok(out)
    }
}

wasmeter_sdk::export_collector!(SystemCollector);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_percent_from_two_calls() {
        let mut c = SystemCollector::default();
        let first = b"cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 50 0 50 350 50 0 0 0 0 0\nintr 1 2\n";
        let out = c.collect("/proc/stat", first).unwrap();
        assert!(out.samples.is_empty() && out.errors.is_empty());
        let second = b"cpu  150 0 150 800 100 0 0 0 0 0\ncpu0 x\ncpu1 1 1 1\n";
        let out = c.collect("/proc/stat", second).unwrap();
        assert_eq!(out.samples.len(), 1);
        assert_eq!(out.samples[0].value, 50.0);
        assert_eq!(out.samples[0].label("cpu"), Some("total"));
        assert_eq!(out.updates[0].fields[0].name, "total");
        assert_eq!(out.errors.len(), 2);
        assert_eq!(out.errors[0].line, 2);
        let mut d = SystemCollector::default();
        d.import_state(&c.export_state().unwrap()).unwrap();
        assert_eq!(d.previous, c.previous);
    }

    #[test]
    fn meminfo_and_loadavg() {
        let mut c = SystemCollector::default();
        let mem = b"MemTotal:       1000 kB\nMemFree: 100 kB\nbad line\nMemAvailable:    250 kB\nHugePages_Total: 0\n";
        let out = c.collect("/proc/meminfo", mem).unwrap();
        assert_eq!(out.samples.len(), 3);
        assert_eq!(out.samples[0].value, 1024000.0);
        assert_eq!(out.samples[2].value, 75.0);
        assert_eq!(out.errors.len(), 1);
        let out = c
            .collect("/proc/loadavg", b"0.50 0.25 1.00 2/345 6789\n")
            .unwrap();
        assert_eq!(out.samples.len(), 5);
        assert_eq!(out.updates[0].fields[2].name, "load15");
        assert_eq!(out.updates[0].fields[4].value.as_number(), Some(345.0));
        assert!(c.collect("/proc/loadavg", b"x y\n").unwrap().errors.len() == 1);
        assert!(
            c.collect("/etc/passwd", b"")
                .unwrap_err()
                .contains("/etc/passwd")
        );
    }
}
