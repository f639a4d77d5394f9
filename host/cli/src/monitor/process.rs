//! The `process_*` metrics Prometheus client libraries export, read from
//! `/proc/self` at each scrape (Linux): CPU time, memory, file descriptors,
//! start time. Reading `/proc` is served from kernel memory, not a disk.

use std::fs;

/// One reading of the process's own figures; a field is `None` where `/proc`
/// did not say.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessStats {
    /// User + system CPU time, seconds.
    pub cpu_seconds: Option<f64>,
    /// Resident set size, bytes.
    pub resident_bytes: Option<f64>,
    /// Virtual memory size, bytes.
    pub virtual_bytes: Option<f64>,
    /// Open file descriptors.
    pub open_fds: Option<f64>,
    /// The soft limit on open file descriptors.
    pub max_fds: Option<f64>,
    /// Start time, Unix seconds.
    pub start_time_seconds: Option<f64>,
}

/// Reads the current figures.
pub fn read() -> ProcessStats {
    // SAFETY: sysconf and getrlimit only read process-wide values.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let (ticks, page) = (ticks.max(1) as f64, page.max(1) as f64);
    let mut out = ProcessStats::default();
    if let Ok(stat) = fs::read_to_string("/proc/self/stat") {
        // The command name (field 2) may hold spaces: fields count from after it.
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
            // After `)`: state is index 0, so field N of proc(5) is index N - 3.
            out.cpu_seconds = num(11).zip(num(12)).map(|(u, s)| (u + s) / ticks);
            out.virtual_bytes = num(20);
            out.resident_bytes = num(21).map(|pages| pages * page);
            let boot = fs::read_to_string("/proc/stat").ok().and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("btime "))
                    .and_then(|v| v.trim().parse::<f64>().ok())
            });
            out.start_time_seconds = num(19).zip(boot).map(|(start, boot)| boot + start / ticks);
        }
    }
    out.open_fds = fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as f64);
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        out.max_fds = Some(limit.rlim_cur as f64);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let p = read();
        assert!(p.cpu_seconds.is_some_and(|s| s >= 0.0));
        assert!(p.resident_bytes.is_some_and(|b| b > 1e5), "{p:?}");
        assert!(p.virtual_bytes >= p.resident_bytes);
        assert!(p.open_fds.is_some_and(|n| n >= 3.0));
        assert!(p.max_fds >= p.open_fds);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = p.start_time_seconds.unwrap();
        assert!(
            start <= now + 1.0 && start > now - 86_400.0 * 365.0,
            "{start}"
        );
    }
}
