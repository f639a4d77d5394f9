//! `Store::open`: locking the directory, recovering what is on disk (see
//! `recover`) and starting the committer thread.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use parking_lot::{Condvar, Mutex, RwLock};

use super::commit::committer;
use super::recover::{load_checkpoint, load_partitions, remove_tmp_files};
use super::{CommitState, Inner, LOCK_FILE, Store, Writer};
use crate::catalog::Catalog;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::head::Head;
use crate::options::Options;
use crate::recovery::Recovery;
use crate::wal::{self, Wal};

impl Store {
    /// Opens (or creates) the store in `dir`, recovering whatever a crash left:
    /// torn tails are truncated, corrupt frames and files skipped, and the
    /// head is rebuilt from the last checkpoint and the write-ahead log. The
    /// [`Recovery`] says precisely what was dropped.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<(Store, Recovery)> {
        opts.validate()?;
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).at(&dir)?;
        for sub in [wal::DIR, "raw", "1s", "1m", "1h"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).at(&p)?;
        }
        let lock_path = dir.join(LOCK_FILE);
        let lock = fsutil::open_rw(&lock_path)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(Error::Locked { path: dir }),
            Err(fs::TryLockError::Error(e)) => {
                return Err(Error::Io {
                    path: lock_path,
                    source: e,
                });
            }
        }
        let mut rec = Recovery::default();
        remove_tmp_files(&dir, &mut rec)?;

        let catalog = Catalog::open(&dir, &mut rec)?;
        let mut head = Head {
            now: i64::MIN,
            ..Head::default()
        };
        head.ensure(catalog.id_bound());
        let mut parts = load_partitions(&dir, &catalog, &mut head, &mut rec)?;
        let (ckpt_seq, ckpt_bytes) =
            load_checkpoint(&dir, catalog.id_bound(), &mut head, &mut parts, &mut rec)?;

        // Write-ahead log: replay the segments from the checkpoint on.
        let wal_dir = dir.join(wal::DIR);
        let segments = wal::segments(&wal_dir)?;
        let next_seq = segments
            .last()
            .map_or(ckpt_seq.unwrap_or(0) + 1, |(s, _)| s + 1)
            .max(ckpt_seq.unwrap_or(0));
        let mut older = 0u64;
        for (seq, path) in &segments {
            if ckpt_seq.is_some_and(|c| *seq < c) {
                // Covered by the checkpoint: a leftover of an interrupted deletion.
                fs::remove_file(path).at(path)?;
                continue;
            }
            older += fsutil::file_len(path);
        }
        let wal = Wal::create(&wal_dir, next_seq, older)?;
        let inner = Arc::new(Inner {
            dir: dir.clone(),
            opts,
            catalog: RwLock::new(catalog),
            head: RwLock::new(head),
            parts: RwLock::new(parts),
            writer: Mutex::new(Writer {
                wal,
                seq: 0,
                checkpoint_bytes: ckpt_bytes,
                next_close_check: i64::MIN,
                min_seen: i64::MAX,
                broken: None,
                deleted_by_age: 0,
                deleted_by_size: 0,
                series_dropped: 0,
            }),
            checkpointing: Mutex::new(()),
            committing: Mutex::new(()),
            state: Mutex::new(CommitState::default()),
            cv: Condvar::new(),
            closed: AtomicBool::new(false),
            _lock: lock,
        });
        inner.replay_log(&segments, ckpt_seq, &mut rec)?;
        let store = Store {
            inner: inner.clone(),
            committer: Mutex::new(None),
        };
        if let Some(interval) = inner.opts.commit_interval {
            let handle = std::thread::Builder::new()
                .name("tsdb-commit".into())
                .spawn(move || committer(inner, interval))
                .at(&dir)?;
            *store.committer.lock() = Some(handle);
        }
        Ok((store, rec))
    }
}
