//! The floor of the source: how long after an append a `notify` (inotify) watcher
//! on the file's directory hears of it, and reads the new bytes. No server.

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use notify::Watcher;

use crate::stats::Percentiles;

/// Appends `samples` lines, one at a time, each 2 ms apart, and records the time
/// from just before the `write(2)` to the moment its bytes were read back after
/// the notification.
pub fn measure(dir: &Path, samples: usize) -> Result<Percentiles> {
    let file = dir.join("notify.log");
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)?;
    let reader = std::fs::File::open(&file)?;
    let (tx, events) = std::sync::mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |e| {
        let _ = tx.send(e);
    })?;
    watcher.watch(dir, notify::RecursiveMode::NonRecursive)?;
    let line = b"S1,100.25,1,1763830000000,1763830000000000\n";
    let mut offset = 0u64;
    let mut buf = [0u8; 4096];
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        std::thread::sleep(Duration::from_millis(2));
        while events.try_recv().is_ok() {}
        let start = Instant::now();
        out.write_all(line)?;
        loop {
            if events.recv_timeout(Duration::from_secs(5)).is_err() {
                bail!("no notification within 5 s of an append");
            }
            let n = reader.read_at(&mut buf, offset)?;
            if n > 0 {
                offset += n as u64;
                break;
            }
        }
        latencies.push(start.elapsed().as_micros() as u64);
    }
    Ok(Percentiles::of(&mut latencies))
}
