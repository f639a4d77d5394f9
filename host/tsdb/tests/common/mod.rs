//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;

use wasmeter_tsdb::{Options, TierOptions};

/// A small deterministic PRNG (SplitMix64), so tests need no extra crate and
/// failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 24 * HOUR;
/// 2023-11-14T22:13:20Z: a round, past Unix-ms timestamp.
pub const T0: i64 = 1_700_000_000_000;

/// Options for tests: no committer thread (tests commit explicitly), no
/// future limit (simulated time may be anywhere).
pub fn test_options() -> Options {
    Options {
        commit_interval: None,
        max_future_ms: None,
        ..Options::default()
    }
}

/// Options with short partitions and retentions, for retention tests.
pub fn short_options() -> Options {
    Options {
        raw: TierOptions {
            retention_ms: 2 * HOUR,
            partition_ms: HOUR,
            chunk_bytes: None,
        },
        second: TierOptions {
            retention_ms: 4 * HOUR,
            partition_ms: 2 * HOUR,
            chunk_bytes: None,
        },
        minute: TierOptions {
            retention_ms: 8 * HOUR,
            partition_ms: 4 * HOUR,
            chunk_bytes: None,
        },
        hour: TierOptions {
            retention_ms: 16 * HOUR,
            partition_ms: 4 * HOUR,
            chunk_bytes: None,
        },
        ..test_options()
    }
}

/// Total bytes of the files under `dir` (recursively), and their paths.
pub fn dir_files(dir: &Path) -> Vec<(std::path::PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), m.len()));
            }
        }
    }
    out.sort();
    out
}

/// Bytes of every file under `dir` except the (empty) lock file.
pub fn dir_bytes(dir: &Path) -> u64 {
    dir_files(dir).iter().map(|f| f.1).sum()
}

/// Copies a store directory (files only, recursively).
pub fn copy_dir(from: &Path, to: &Path) {
    for (p, _) in dir_files(from) {
        let rel = p.strip_prefix(from).unwrap();
        let dst = to.join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&p, &dst).unwrap();
    }
}
