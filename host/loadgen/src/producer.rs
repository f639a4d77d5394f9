//! The producer: appends bench records to the feed file at a fixed rate, round
//! robin over the topics, each stamped with the time of the write that carries it.
//! Records due within the same millisecond go out in one `write(2)`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::stamp;

/// Writes one record per topic, so that every topic exists before subscribers come.
pub fn seed(file: &Path, topics: usize) -> Result<()> {
    let mut out = Vec::new();
    for t in 0..topics {
        stamp::record(&mut out, t, 0, stamp::now_us());
    }
    append(file)?.write_all(&out)?;
    Ok(())
}

fn append(file: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
}

/// A producer thread; [`Producer::stop`] ends it.
#[derive(Debug)]
pub struct Producer {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<f64>>,
}

impl Producer {
    /// Starts appending `rate` records/s over `topics` topics to `file`.
    pub fn start(file: &Path, rate: u64, topics: usize) -> Result<Producer> {
        let mut f = append(file)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let handle = std::thread::spawn(move || -> Result<f64> {
            let start = Instant::now();
            let mut written = 0u64;
            let mut out = Vec::with_capacity(64 * 1024);
            let mut tick = 0u64;
            while !stopped.load(Ordering::Relaxed) {
                tick += 1;
                let due_at = start + Duration::from_millis(tick);
                if let Some(wait) = due_at.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let due = rate * start.elapsed().as_micros() as u64 / 1_000_000;
                out.clear();
                let sent = stamp::now_us();
                while written < due {
                    stamp::record(&mut out, (written % topics as u64) as usize, written, sent);
                    written += 1;
                }
                f.write_all(&out)?;
            }
            Ok(written as f64 / start.elapsed().as_secs_f64())
        });
        Ok(Producer { stop, handle })
    }

    /// Stops the producer; returns the records written per second.
    pub fn stop(self) -> Result<f64> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .join()
            .map_err(|_| anyhow::anyhow!("producer panicked"))?
    }
}
