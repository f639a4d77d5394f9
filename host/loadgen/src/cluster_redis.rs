//! The `redis-server` of the cluster scenario ([`crate::cluster`]): started on a
//! free loopback port in its own temporary directory, without persistence,
//! killed when dropped; and Redis's own account of its commands (`INFO
//! commandstats`), reset at the start of a measured window.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

/// Longest wait for a started `redis-server` to answer.
const START_BOUND: Duration = Duration::from_secs(10);
/// Bound of every command the scenario sends to Redis.
const COMMAND_BOUND: Duration = Duration::from_secs(5);

/// A running `redis-server`; killed (and its directory removed) when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    /// `redis://127.0.0.1:<port>/0`.
    pub url: String,
    _dir: tempfile::TempDir,
}

/// Where `redis-server` is: `$REDIS_SERVER`, else the first on `PATH` (or in
/// `/usr/bin`, `/usr/sbin`). The error names the Debian package.
pub fn find() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("REDIS_SERVER") {
        let bin = PathBuf::from(bin);
        anyhow::ensure!(
            bin.is_file(),
            "REDIS_SERVER={} is not a file",
            bin.display()
        );
        return Ok(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/usr/sbin".into()])
        .map(|d: PathBuf| d.join("redis-server"))
        .find(|p| p.is_file())
        .context(
            "the cluster scenario needs `redis-server`, not found on PATH: install the \
             Debian package `redis-server` (apt-get install redis-server) or set REDIS_SERVER",
        )
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl RedisServer {
    /// Starts `bin` on a free loopback port in a new directory under `root`
    /// (no RDB snapshots, no append-only file) and waits until it answers `PING`.
    pub fn start(bin: &Path, root: &Path) -> Result<RedisServer> {
        let dir = tempfile::tempdir_in(root)?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.path().join("redis.log"))?;
        let child = Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let server = RedisServer {
            child,
            url: format!("redis://127.0.0.1:{port}/0"),
            _dir: dir,
        };
        let deadline = Instant::now() + START_BOUND;
        loop {
            match server.query::<String>(&mut redis::cmd("PING")) {
                Ok(_) => return Ok(server),
                Err(e) if Instant::now() > deadline => {
                    bail!("redis-server did not answer within {START_BOUND:?}: {e:#}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// The process id, for CPU readings.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one command on a new connection, bounded by [`COMMAND_BOUND`].
    fn query<T: redis::FromRedisValue>(&self, cmd: &mut redis::Cmd) -> Result<T> {
        let client = redis::Client::open(self.url.as_str())?;
        let mut conn = client.get_connection_with_timeout(COMMAND_BOUND)?;
        conn.set_read_timeout(Some(COMMAND_BOUND))?;
        conn.set_write_timeout(Some(COMMAND_BOUND))?;
        Ok(cmd.query(&mut conn)?)
    }

    /// Zeroes Redis's command statistics (`CONFIG RESETSTAT`).
    pub fn reset_stats(&self) -> Result<()> {
        self.query::<()>(redis::cmd("CONFIG").arg("RESETSTAT"))
    }

    /// `INFO commandstats`, parsed.
    pub fn command_stats(&self) -> Result<Vec<CommandStat>> {
        let text: String = self.query(redis::cmd("INFO").arg("commandstats"))?;
        Ok(parse_command_stats(&text))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One command's line of `INFO commandstats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CommandStat {
    /// The command, lower case (`evalsha`, `publish`, `xadd`...).
    pub command: String,
    /// Calls since the last reset (from scripts included).
    pub calls: u64,
    /// Microseconds Redis spent in them.
    pub usec: u64,
    /// `usec / calls`, as Redis reports it.
    pub usec_per_call: f64,
}

/// Parses the `cmdstat_<name>:calls=..,usec=..,usec_per_call=..,...` lines of
/// `INFO commandstats`; other lines are ignored.
pub fn parse_command_stats(text: &str) -> Vec<CommandStat> {
    text.lines()
        .filter_map(|line| {
            let (name, fields) = line.trim().strip_prefix("cmdstat_")?.split_once(':')?;
            let mut stat = CommandStat {
                command: name.to_string(),
                ..CommandStat::default()
            };
            for (key, value) in fields.split(',').filter_map(|f| f.split_once('=')) {
                match key {
                    "calls" => stat.calls = value.parse().ok()?,
                    "usec" => stat.usec = value.parse().ok()?,
                    "usec_per_call" => stat.usec_per_call = value.parse().ok()?,
                    _ => {}
                }
            }
            Some(stat)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_commands_calls_and_time() {
        let text = "# Commandstats\r\n\
            cmdstat_evalsha:calls=1200,usec=9600,usec_per_call=8.00,rejected_calls=0,failed_calls=1\r\n\
            cmdstat_publish:calls=1200,usec=1440,usec_per_call=1.20,rejected_calls=0,failed_calls=0\r\n\
            cmdstat_config|resetstat:calls=1,usec=3,usec_per_call=3.00,rejected_calls=0,failed_calls=0\r\n";
        let stats = parse_command_stats(text);
        assert_eq!(stats.len(), 3);
        assert_eq!(
            stats[0],
            CommandStat {
                command: "evalsha".into(),
                calls: 1200,
                usec: 9600,
                usec_per_call: 8.0
            }
        );
        assert_eq!(stats[1].usec_per_call, 1.2);
        assert_eq!(stats[2].command, "config|resetstat");
    }
}
