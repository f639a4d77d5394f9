//! The system source: on an interval, hands whole `/proc` text files to the system
//! collector. procfs files stat as empty and are regenerated on every read, so they are
//! read whole (not tailed), off the runtime.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// The content of one system file at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemReading {
    /// The path it was read from, as a string (`"/proc/stat"`).
    pub source: Arc<str>,
    /// The whole file.
    pub data: Bytes,
}

/// Reads a fixed list of files every `interval`.
#[derive(Debug, Clone)]
pub struct SystemSource {
    /// Time between readings (the first reading is immediate).
    pub interval: Duration,
    /// Files to read; default `/proc/stat`, `/proc/meminfo`, `/proc/loadavg`.
    pub files: Vec<PathBuf>,
}

impl Default for SystemSource {
    fn default() -> Self {
        SystemSource {
            interval: Duration::from_secs(1),
            files: ["/proc/stat", "/proc/meminfo", "/proc/loadavg"]
                .into_iter()
                .map(PathBuf::from)
                .collect(),
        }
    }
}

impl SystemSource {
    /// Sends one [`SystemReading`] per file per interval until `cancel` fires or the
    /// receiver is dropped. Waits while `tx` is full (ticks missed meanwhile are skipped,
    /// never queued). A file that cannot be read is logged and skipped.
    pub async fn run(self, tx: mpsc::Sender<SystemReading>, cancel: CancellationToken) {
        let names: Vec<Arc<str>> = self
            .files
            .iter()
            .map(|p| Arc::from(p.to_string_lossy().as_ref()))
            .collect();
        let files = Arc::new(self.files);
        let mut ticker = tokio::time::interval(self.interval.max(Duration::from_millis(1)));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let paths = files.clone();
            let read = tokio::task::spawn_blocking(move || {
                paths.iter().map(std::fs::read).collect::<Vec<_>>()
            })
            .await;
            let Ok(results) = read else {
                warn!("system source: read task failed; skipping this interval");
                continue;
            };
            for (name, result) in names.iter().zip(results) {
                let data = match result {
                    Ok(data) => Bytes::from(data),
                    Err(e) => {
                        warn!(path = %name, error = %e, "system source: cannot read file; skipped");
                        continue;
                    }
                };
                let reading = SystemReading {
                    source: name.clone(),
                    data,
                };
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return,
                    sent = tx.send(reading) => if sent.is_err() {
                        debug!("system source: receiver dropped; stopping");
                        return;
                    },
                }
            }
        }
    }
}
