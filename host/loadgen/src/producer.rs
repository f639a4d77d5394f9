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

use crate::sendlog::SendLog;
use crate::stamp;

/// Writes records `0..topics`, one per topic, so that every topic exists
/// before subscribers come; returns the log the producer goes on with.
pub fn seed(file: &Path, topics: usize) -> Result<Arc<SendLog>> {
    let mut out = Vec::new();
    let sent = stamp::now_us();
    for n in 0..topics as u64 {
        stamp::record(&mut out, topics, n, sent);
    }
    append(file)?.write_all(&out)?;
    let log = Arc::new(SendLog::default());
    log.wrote(0, topics as u64, sent);
    Ok(log)
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
    /// Starts appending `rate` records/s over `topics` topics to `file`, after
    /// the records already in `log` (the seed), logging each write there.
    pub fn start(file: &Path, rate: u64, topics: usize, log: Arc<SendLog>) -> Result<Producer> {
        let mut f = append(file)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let handle = std::thread::spawn(move || -> Result<f64> {
            let start = Instant::now();
            let first = log.next();
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
                let from = written;
                while written < due {
                    stamp::record(&mut out, topics, first + written, sent);
                    written += 1;
                }
                // Logged before the write: a frame can never carry a record the
                // log does not know yet.
                log.wrote(first + from, first + written, sent);
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
