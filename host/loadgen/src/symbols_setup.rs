//! The servers of the many-symbols scenario ([`crate::symbols`]): the host with
//! quotas sized for the symbol count, or the bare floor server, as child
//! processes; and the feed's rounds written before either starts.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, anyhow};

use crate::sendlog::SendLog;
use crate::stamp;
use crate::target::{Binaries, FEED, Kind};

/// Appends `rounds` rounds of one record per symbol after the seed in `log`,
/// in one write, logged as written now.
pub fn append_rounds(file: &Path, log: &SendLog, symbols: usize, rounds: u64) -> Result<()> {
    let first = log.next();
    let end = first + symbols as u64 * rounds;
    let sent = stamp::now_us();
    let mut out = Vec::with_capacity((end - first) as usize * 32);
    for n in first..end {
        stamp::record(&mut out, symbols, n, sent);
    }
    log.wrote(first, end, sent);
    std::fs::OpenOptions::new()
        .append(true)
        .open(file)?
        .write_all(&out)?;
    Ok(())
}

/// A server child process; killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Server {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `kind` on the feed of `dir`: the host with `config` (written to
/// `dir/wasmeter.toml`, the plugin cache shared), or the floor server.
pub fn start(kind: Kind, dir: &Path, bins: &Binaries, config: &str) -> Result<Server> {
    let mut cmd = match kind {
        Kind::Host => {
            let path = dir.join("wasmeter.toml");
            std::fs::write(&path, config)?;
            let data = dir.join("data");
            std::fs::create_dir_all(&data)?;
            std::fs::create_dir_all(&bins.plugin_cache)?;
            std::os::unix::fs::symlink(&bins.plugin_cache, data.join("cache"))?;
            let mut c = Command::new(&bins.host);
            c.args(["--log-level", "warn", "serve", "--config"])
                .arg(&path)
                .args(["--admin-listen", "127.0.0.1:0"]);
            c
        }
        Kind::Floor => {
            let mut c = Command::new(std::env::current_exe()?);
            c.arg("floor-server").arg("--file").arg(dir.join(FEED));
            c
        }
    };
    let log = std::fs::File::create(dir.join(format!("{kind:?}.log")))?;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .with_context(|| format!("start {kind:?}: {cmd:?}"))?;
    let mut stdout = BufReader::new(child.stdout.take().context("stdout is piped")?);
    let mut first = String::new();
    stdout.read_line(&mut first)?;
    let addr = first
        .trim()
        .split_once("http://")
        .and_then(|(_, a)| a.trim_end_matches('/').parse().ok());
    let Some(addr) = addr else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(anyhow!(
            "{kind:?} did not start (stdout: {first:?}); see {}",
            dir.display()
        ));
    };
    // Keep draining stdout so that the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in stdout.lines() {});
    Ok(Server { child, addr })
}
