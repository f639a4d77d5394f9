//! The producer: appends bench records to the feed at a fixed rate, round robin
//! over the topics, each stamped with the time of the write that carries it. A
//! feed is one file or several (a topic's records always go to the same one);
//! records due within the same millisecond go out in one `write(2)` per file, or,
//! with [`Feed::one_per_write`], each record in a `write(2)` of its own.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use crate::sendlog::SendLog;
use crate::stamp;
use crate::target::FEED;

/// How a run's records are appended: to how many files, and how many records
/// per `write(2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FeedShape {
    /// Files the topics are spread over (topic `t` goes to file `t % files`).
    pub files: usize,
    /// Each record in a `write(2)` of its own, rather than those due in the same
    /// millisecond together.
    pub one_per_write: bool,
}

impl FeedShape {
    /// One file, the records of each millisecond in one write.
    pub const ONE_FILE: FeedShape = FeedShape {
        files: 1,
        one_per_write: false,
    };

    /// The files of this shape in the run directory `dir`: `dir/feed/bench.csv`
    /// for one, `dir/feed/bench-<k>.csv` for several.
    pub fn at(&self, dir: &Path) -> Feed {
        let paths = match self.files {
            0 | 1 => vec![dir.join(FEED)],
            n => (0..n)
                .map(|k| dir.join(format!("feed/bench-{k}.csv")))
                .collect(),
        };
        Feed {
            paths,
            one_per_write: self.one_per_write,
        }
    }

    /// For reports: `1 file, 1 ms batches`, `10 files, 1 record per write`.
    pub fn describe(&self) -> String {
        let files = match self.files.max(1) {
            1 => "1 file".to_string(),
            n => format!("{n} files"),
        };
        let writes = match self.one_per_write {
            true => "1 record per write",
            false => "1 ms batches",
        };
        format!("{files}, {writes}")
    }
}

/// The feed files of one run and how records are written to them.
#[derive(Debug, Clone)]
pub struct Feed {
    /// The files, in the order topics are spread over them.
    pub paths: Vec<PathBuf>,
    /// Each record in a `write(2)` of its own.
    pub one_per_write: bool,
}

impl Feed {
    /// One file, the records of each millisecond in one write.
    pub fn single(path: PathBuf) -> Feed {
        Feed {
            paths: vec![path],
            one_per_write: false,
        }
    }

    /// Which file record `n` (of `topics` topics) goes to.
    fn file_of(&self, topics: usize, n: u64) -> usize {
        ((n % topics.max(1) as u64) % self.paths.len() as u64) as usize
    }

    fn open(&self) -> std::io::Result<Vec<std::fs::File>> {
        self.paths.iter().map(|p| append(p)).collect()
    }
}

/// Writes records `0..topics`, one per topic, so that every topic exists
/// before subscribers come; returns the log the producer goes on with.
pub fn seed(feed: &Feed, topics: usize) -> Result<Arc<SendLog>> {
    let mut out = vec![Vec::new(); feed.paths.len()];
    let sent = stamp::now_us();
    for n in 0..topics as u64 {
        stamp::record(&mut out[feed.file_of(topics, n)], topics, n, sent);
    }
    for (mut file, bytes) in feed.open()?.into_iter().zip(out) {
        file.write_all(&bytes)?;
    }
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
    /// Starts appending `rate` records/s over `topics` topics to `feed`, after
    /// the records already in `log` (the seed), logging each write there.
    pub fn start(feed: &Feed, rate: u64, topics: usize, log: Arc<SendLog>) -> Result<Producer> {
        let mut files = feed.open()?;
        let feed = feed.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let handle = std::thread::spawn(move || -> Result<f64> {
            let start = Instant::now();
            let first = log.next();
            let mut written = 0u64;
            let mut out = vec![Vec::with_capacity(64 * 1024); files.len()];
            let mut tick = 0u64;
            while !stopped.load(Ordering::Relaxed) {
                tick += 1;
                let due_at = start + Duration::from_millis(tick);
                if let Some(wait) = due_at.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let due = rate * start.elapsed().as_micros() as u64 / 1_000_000;
                if feed.one_per_write {
                    while written < due {
                        let n = first + written;
                        let file = feed.file_of(topics, n);
                        let sent = stamp::now_us();
                        out[file].clear();
                        stamp::record(&mut out[file], topics, n, sent);
                        log.wrote(n, n + 1, sent);
                        files[file].write_all(&out[file])?;
                        written += 1;
                    }
                    continue;
                }
                out.iter_mut().for_each(Vec::clear);
                let sent = stamp::now_us();
                let from = written;
                while written < due {
                    let n = first + written;
                    stamp::record(&mut out[feed.file_of(topics, n)], topics, n, sent);
                    written += 1;
                }
                // Logged before the writes: a frame can never carry a record the
                // log does not know yet.
                log.wrote(first + from, first + written, sent);
                for (file, bytes) in files.iter_mut().zip(&out) {
                    if !bytes.is_empty() {
                        file.write_all(bytes)?;
                    }
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_s_records_all_go_to_one_file_and_the_files_share_the_topics() {
        let shape = FeedShape {
            files: 10,
            one_per_write: true,
        };
        let feed = shape.at(Path::new("/run"));
        assert_eq!(feed.paths[3], Path::new("/run/feed/bench-3.csv"));
        let topics = 100;
        let mut files_of_topic = vec![std::collections::BTreeSet::new(); topics];
        let mut records_per_file = vec![0; 10];
        for n in 0..10_000u64 {
            let file = feed.file_of(topics, n);
            files_of_topic[(n % topics as u64) as usize].insert(file);
            records_per_file[file] += 1;
        }
        assert!(files_of_topic.iter().all(|files| files.len() == 1));
        assert_eq!(records_per_file, vec![1_000; 10]);
        assert_eq!(
            FeedShape::ONE_FILE.at(Path::new("/run")).paths,
            [Path::new("/run").join(FEED)]
        );
    }
}
