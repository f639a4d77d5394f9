//! CPU time and resident memory of a process, from `/proc/<pid>/stat` and
//! `/proc/<pid>/status` (`self` for the generator itself).

use std::time::Instant;

/// One reading of a process's counters.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    /// User + system CPU seconds since the process started.
    pub cpu_secs: f64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// When it was read.
    pub at: Instant,
}

/// Which process: a pid, or `None` for this one.
pub type Pid = Option<u32>;

fn path(pid: Pid, file: &str) -> String {
    match pid {
        Some(p) => format!("/proc/{p}/{file}"),
        None => format!("/proc/self/{file}"),
    }
}

/// Reads the counters of `pid` now.
pub fn read(pid: Pid) -> anyhow::Result<Reading> {
    let stat = std::fs::read_to_string(path(pid, "stat"))?;
    // The command name may contain spaces: the fields after it start past ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow::anyhow!("malformed /proc stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat; `rest` starts at field 3.
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let status = std::fs::read_to_string(path(pid, "status"))?;
    Ok(Reading {
        cpu_secs: ticks as f64 / hz,
        rss_bytes: status_kib(&status, "VmRSS:") * 1024,
        at: Instant::now(),
    })
}

/// A `/proc/<pid>/status` field in kB (0 if absent).
fn status_kib(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
}

/// Starts the peak resident set size of `pid` over from its RSS now (writes
/// `5` to `/proc/<pid>/clear_refs`), so that [`peak_rss_bytes`] reports the
/// peak since this call.
pub fn reset_peak_rss(pid: Pid) -> anyhow::Result<()> {
    std::fs::write(path(pid, "clear_refs"), "5")?;
    Ok(())
}

/// The peak resident set size of `pid` (`VmHWM`) since it started or since
/// [`reset_peak_rss`], bytes: every page resident at once, however briefly,
/// which a reading of the RSS now can miss.
pub fn peak_rss_bytes(pid: Pid) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(path(pid, "status"))?;
    Ok(status_kib(&status, "VmHWM:") * 1024)
}

/// CPU used between two readings, in percent of one core.
pub fn cpu_percent(start: &Reading, end: &Reading) -> f64 {
    let wall = end.at.duration_since(start.at).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    100.0 * (end.cpu_secs - start.cpu_secs) / wall
}

/// Raises this process's open-file limit to its hard limit (children inherit
/// it, so a host started afterwards can hold as many connections). Returns the
/// new soft limit.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read the struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let r = super::read(None).unwrap();
        assert!(r.rss_bytes > 0 && r.cpu_secs >= 0.0);
    }
}
