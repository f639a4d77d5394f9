//! Shared fixtures: a running source over a temp dir, and a model of what it delivered.
//! Each test binary uses a part of them.
#![allow(dead_code)]

pub mod logs;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wasmeter_source::{
    FileCheckpoint, FileKey, FileSource, FileSourceConfig, SourceError, SourceEvent, SourceStats,
};

/// Generous: these are waits for events, never timing assertions.
pub const WAIT: Duration = Duration::from_secs(30);

/// A config tailing `pattern` inside `dir`, with short scan periods.
pub fn config(dir: &Path, pattern: &str) -> FileSourceConfig {
    FileSourceConfig {
        name: "test".into(),
        include: vec![dir.join(pattern).to_string_lossy().into_owned()],
        reconcile_interval: Duration::from_millis(200),
        rotate_wait: Duration::from_millis(300),
        ..Default::default()
    }
}

/// A running [`FileSource`] and everything it emitted so far.
pub struct Running {
    rx: mpsc::Receiver<SourceEvent>,
    cancel: CancellationToken,
    task: JoinHandle<Result<(), SourceError>>,
    pub stats: Arc<SourceStats>,
    pub delivered: Delivered,
}

impl Running {
    pub fn start(
        config: FileSourceConfig,
        resume: Vec<FileCheckpoint>,
        capacity: usize,
    ) -> Running {
        let source = FileSource::new(config, resume).expect("valid config");
        let stats = source.stats();
        let (tx, rx) = mpsc::channel(capacity);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(source.run(tx, cancel.clone()));
        Running {
            rx,
            cancel,
            task,
            stats,
            delivered: Delivered::default(),
        }
    }

    /// Consumes events until `done(&delivered)` holds.
    pub async fn until(&mut self, what: &str, mut done: impl FnMut(&Delivered) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !done(&self.delivered) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some(ev)) => self.delivered.apply(&ev),
                Ok(None) => panic!("source stopped while waiting for {what}"),
                Err(_) => panic!(
                    "timed out waiting for {what}; delivered: {:#?}",
                    self.delivered
                ),
            }
        }
    }

    /// Cancels and checks that `run` returns promptly and cleanly.
    pub async fn stop(self) -> Delivered {
        self.cancel.cancel();
        let res = tokio::time::timeout(WAIT, self.task)
            .await
            .expect("run returns promptly after cancel")
            .expect("task not panicked");
        res.expect("run ends with Ok");
        self.delivered
    }
}

/// Per file generation (one key), the records delivered, checked for gaps and overlaps.
#[derive(Default)]
pub struct Delivered {
    /// Generations in the order they were opened.
    pub gens: Vec<Gen>,
    index: HashMap<FileKey, usize>,
    pub events: Vec<String>,
    /// What a pipeline would checkpoint: committed offset per open key.
    pub committed: HashMap<FileKey, (PathBuf, u64)>,
    /// The file size reported with each key's last chunk.
    pub sizes: HashMap<FileKey, u64>,
}

pub struct Gen {
    pub key: FileKey,
    pub path: PathBuf,
    pub opened_at: u64,
    pub data: Vec<u8>,
    pub ended: bool,
}

impl Delivered {
    pub fn apply(&mut self, ev: &SourceEvent) {
        self.events.push(short(ev));
        match ev {
            SourceEvent::Opened { file, path, offset } => {
                if let Some(&i) = self.index.get(file) {
                    if !self.gens[i].ended {
                        // Only a source that takes over from another (a shard's own
                        // source after a shared one) opens an open file again: where
                        // the last chunk ended.
                        let at = self.committed.get(file).map(|(_, at)| *at);
                        assert_eq!(at, Some(*offset), "opened again elsewhere: {file}");
                        return;
                    }
                    self.gens[i].ended = false;
                } else {
                    self.index.insert(*file, self.gens.len());
                    self.gens.push(Gen {
                        key: *file,
                        path: path.to_path_buf(),
                        opened_at: *offset,
                        data: Vec::new(),
                        ended: false,
                    });
                }
                self.committed.insert(*file, (path.to_path_buf(), *offset));
            }
            SourceEvent::Chunk(c) => {
                let i = *self.index.get(&c.file).expect("chunk of an unopened file");
                assert!(!self.gens[i].ended, "chunk after the end of {}", c.file);
                let (_, at) = self.committed.get(&c.file).expect("committed entry");
                assert_eq!(c.start, *at, "chunk starts where the last one ended");
                assert!(
                    c.data.is_empty() || c.data.ends_with(b"\n"),
                    "whole records"
                );
                assert!(c.end >= c.start + c.data.len() as u64);
                assert!(c.file_size >= c.end, "file size covers the chunk");
                self.gens[i].data.extend_from_slice(&c.data);
                self.committed.insert(c.file, (c.path.to_path_buf(), c.end));
                self.sizes.insert(c.file, c.file_size);
            }
            SourceEvent::Truncated { file, .. } | SourceEvent::Closed { file } => {
                if let Some(&i) = self.index.get(file) {
                    self.gens[i].ended = true;
                }
                self.committed.remove(file);
            }
            SourceEvent::Rotated { .. } => {}
        }
    }

    /// All records delivered, in order.
    pub fn all_data(&self) -> Vec<u8> {
        self.gens
            .iter()
            .flat_map(|g| g.data.iter().copied())
            .collect()
    }

    /// How many record bytes were delivered (cheap: no copy).
    pub fn data_len(&self) -> usize {
        self.gens.iter().map(|g| g.data.len()).sum()
    }

    /// The records of the generations that delivered any, in order.
    pub fn nonempty(&self) -> Vec<String> {
        self.gens
            .iter()
            .filter(|g| !g.data.is_empty())
            .map(|g| String::from_utf8_lossy(&g.data).into_owned())
            .collect()
    }

    /// The checkpoint a pipeline would save now.
    pub fn checkpoint(&self) -> Vec<FileCheckpoint> {
        self.committed
            .iter()
            .map(|(k, (p, o))| FileCheckpoint {
                file: *k,
                path: p.clone(),
                offset: *o,
                size: self.sizes.get(k).copied().unwrap_or(*o),
            })
            .collect()
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.events.iter().filter(|e| e.starts_with(prefix)).count()
    }
}

impl std::fmt::Debug for Delivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "events:")?;
        for e in &self.events {
            writeln!(f, "  {e}")?;
        }
        writeln!(f, "generations with records:")?;
        for g in self.nonempty() {
            writeln!(f, "  {g:?}")?;
        }
        Ok(())
    }
}

fn short(ev: &SourceEvent) -> String {
    match ev {
        SourceEvent::Chunk(c) => format!(
            "Chunk {} {}..{} {:?}",
            c.file,
            c.start,
            c.end,
            String::from_utf8_lossy(&c.data)
        ),
        SourceEvent::Opened { file, path, offset } => {
            format!("Opened {file} {} @{offset}", path.display())
        }
        SourceEvent::Truncated { file, .. } => format!("Truncated {file}"),
        SourceEvent::Rotated { old, .. } => format!("Rotated {old}"),
        SourceEvent::Closed { file } => format!("Closed {file}"),
    }
}

/// A tiny deterministic PRNG for the model test.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
