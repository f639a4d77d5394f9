//! Damaged files: truncations and flipped bytes at many offsets in every kind
//! of file. Opening must succeed, report what it dropped (file, offset, bytes,
//! why), and keep everything else.

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::{T0, copy_dir, dir_files, test_options};
use wasmeter_tsdb::{
    DropAction, Labels, Matcher, MetricKind, Options, RangeQuery, Sample, Store, Tier, TierChoice,
};

const SERIES: usize = 4;
const N: i64 = 3000;

fn value(k: usize, i: i64) -> f64 {
    (k as f64) * 1000.0 + (i % 97) as f64 * 0.25
}

fn opts() -> Options {
    Options {
        chunk_items: 64,
        ..test_options()
    }
}

/// Writes 4 series x 3000 samples (1 s apart), commits; `crash` leaves the
/// head and log as a killed process would, otherwise closes cleanly.
fn build(dir: &Path, crash: bool) {
    let (store, _) = Store::open(dir, opts()).unwrap();
    for k in 0..SERIES {
        let l = Labels::new("c", [("k", k.to_string())]).unwrap();
        let s: Vec<Sample> = (0..N)
            .map(|i| Sample::new(T0 + i * 1000, value(k, i)))
            .collect();
        store.append_series(&l, MetricKind::Gauge, &s).unwrap();
    }
    store.commit().unwrap();
    if crash {
        store.abandon();
    } else {
        store.close().unwrap();
    }
}

/// Per series, the raw samples the store answers with, each checked against
/// what was written.
fn surviving(store: &Store) -> Vec<usize> {
    let q = RangeQuery {
        start_ms: T0,
        end_ms: T0 + (N - 1) * 1000,
        step_ms: 1000,
        lookback_ms: 1,
        tier: TierChoice::Fixed(Tier::Raw),
    };
    let mut out = vec![0; SERIES];
    let r = store
        .query_range_with(&[Matcher::metric("c").unwrap()], &q)
        .unwrap();
    for s in &r.series {
        let k: usize = s.labels.get("k").unwrap().parse().unwrap();
        for p in &s.points {
            let i = (p.t_ms - T0) / 1000;
            assert_eq!(
                p.value,
                value(k, i),
                "series {k} sample {i} has a wrong value"
            );
        }
        out[k] = s.points.len();
    }
    out
}

fn flip(path: &Path, offset: u64) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 0x5a;
    f.write_all_at(&b, offset).unwrap();
}

fn truncate(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// The non-empty data files under `sub` (not the chunk indexes).
fn files_under(dir: &Path, sub: &str) -> Vec<(PathBuf, u64)> {
    dir_files(&dir.join(sub))
        .into_iter()
        .filter(|(p, len)| *len > 0 && p.extension().is_none_or(|e| e != "idx"))
        .collect()
}

#[test]
fn clean_store_reopens_clean() {
    let base = tempfile::tempdir().unwrap();
    build(base.path(), false);
    let (store, rec) = Store::open(base.path(), opts()).unwrap();
    assert!(rec.is_clean(), "{rec}");
    assert_eq!(surviving(&store), vec![N as usize; SERIES]);
}

#[test]
fn flipped_bytes_in_a_partition_file_lose_only_that_chunk() {
    let base = tempfile::tempdir().unwrap();
    build(base.path(), false);
    let (part, len) = files_under(base.path(), "raw")
        .into_iter()
        .max_by_key(|f| f.1)
        .unwrap();
    let rel = part.strip_prefix(base.path()).unwrap().to_path_buf();
    // Offsets across the whole file (header excluded), one flip per copy.
    let mut checked = 0;
    for off in (40..len).step_by((len / 23) as usize) {
        let d = tempfile::tempdir().unwrap();
        copy_dir(base.path(), d.path());
        flip(&d.path().join(&rel), off);
        let (store, rec) = Store::open(d.path(), opts()).unwrap();
        let hit: Vec<_> = rec
            .dropped
            .iter()
            .filter(|x| x.file.ends_with(&rel))
            .collect();
        assert_eq!(hit.len(), 1, "offset {off}: {rec}");
        assert!(
            hit[0].offset <= off && off < hit[0].offset + hit[0].bytes,
            "offset {off}: {rec}"
        );
        assert!(!hit[0].reason.is_empty());
        let left: usize = surviving(&store).iter().sum();
        let lost = SERIES * N as usize - left;
        // One 64-sample chunk lost, unless the flip hit the frame's length
        // and the resync skipped up to the next frame (still one chunk), or the
        // tail (the last chunk).
        assert!(
            (1..=64).contains(&lost),
            "offset {off}: lost {lost} samples; {rec}"
        );
        checked += 1;
    }
    assert!(checked >= 20);
}

#[test]
fn truncated_partition_file_keeps_the_prefix() {
    let base = tempfile::tempdir().unwrap();
    build(base.path(), false);
    let (part, len) = files_under(base.path(), "raw")
        .into_iter()
        .max_by_key(|f| f.1)
        .unwrap();
    let rel = part.strip_prefix(base.path()).unwrap().to_path_buf();
    let mut prev_left = 0;
    for cut in [33, len / 4, len / 2, len - 3] {
        let d = tempfile::tempdir().unwrap();
        copy_dir(base.path(), d.path());
        truncate(&d.path().join(&rel), cut);
        let (store, rec) = Store::open(d.path(), opts()).unwrap();
        let hit: Vec<_> = rec
            .dropped
            .iter()
            .filter(|x| x.file.ends_with(&rel))
            .collect();
        assert_eq!(hit.len(), 1, "cut {cut}: {rec}");
        assert_eq!(hit[0].action, DropAction::Truncated);
        assert_eq!(hit[0].offset + hit[0].bytes, cut, "cut {cut}: {rec}");
        let left: usize = surviving(&store).iter().sum();
        assert!(left >= prev_left, "a longer prefix keeps more");
        prev_left = left;
        drop(store);
        // The file was truncated at a frame boundary: the next open is clean.
        let (_s, rec2) = Store::open(d.path(), opts()).unwrap();
        assert!(rec2.is_clean(), "cut {cut}: {rec2}");
    }
}

/// A chunk index is derived from its partition file: damaged, cut short,
/// lost or left behind by its partition, it is rewritten (or deleted) at
/// open, with nothing dropped and every sample answered.
#[test]
fn damaged_or_missing_chunk_indexes_are_rebuilt() {
    let base = tempfile::tempdir().unwrap();
    build(base.path(), true);
    // Recovered once first: replaying the log may cut chunks the crash left
    // open and write them (and their index entries); the lengths compared
    // below are those of the recovered store.
    drop(Store::open(base.path(), opts()).unwrap());
    let indexes: Vec<(PathBuf, u64)> = dir_files(base.path())
        .into_iter()
        .filter(|(p, len)| *len > 0 && p.extension().is_some_and(|e| e == "idx"))
        .collect();
    assert!(indexes.len() >= 3, "{indexes:?}");
    let orphan = base.path().join("raw").join("12345.idx");
    for damage in ["flip", "truncate", "delete"] {
        for (path, len) in &indexes {
            match damage {
                "flip" => {
                    for off in (0..*len).step_by(7) {
                        flip(path, off);
                    }
                }
                "truncate" => truncate(path, len / 2 + 5),
                _ => std::fs::remove_file(path).unwrap(),
            }
        }
        std::fs::write(&orphan, [1u8; 48]).unwrap();
        let (store, rec) = Store::open(base.path(), opts()).unwrap();
        assert!(rec.dropped.is_empty(), "{damage}: {rec}");
        assert_eq!(surviving(&store), vec![N as usize; SERIES], "{damage}");
        for (path, len) in &indexes {
            assert_eq!(
                std::fs::metadata(path).unwrap().len(),
                *len,
                "{damage}: {}",
                path.display()
            );
        }
        assert!(!orphan.exists(), "{damage}");
        store.abandon();
    }
}

#[test]
fn corrupt_partition_header_sets_the_file_aside() {
    let base = tempfile::tempdir().unwrap();
    build(base.path(), false);
    let (part, _) = files_under(base.path(), "raw").into_iter().next().unwrap();
    flip(&part, 3);
    let (store, rec) = Store::open(base.path(), opts()).unwrap();
    let hit: Vec<_> = rec.dropped.iter().filter(|x| x.file == part).collect();
    assert_eq!(hit.len(), 1, "{rec}");
    assert!(matches!(hit[0].action, DropAction::SetAside(_)));
    assert!(!part.exists());
    // The other tiers still answer for that time.
    let q = RangeQuery {
        start_ms: T0,
        end_ms: T0 + 600_000,
        step_ms: 60_000,
        lookback_ms: 60_000,
        tier: TierChoice::Fixed(Tier::Minute),
    };
    assert_eq!(
        store
            .query_range_with(&[Matcher::metric("c").unwrap()], &q)
            .unwrap()
            .series
            .len(),
        SERIES
    );
}

#[test]
fn damaged_catalog_drops_only_the_damaged_series() {
    let base = tempfile::tempdir().unwrap();
    build(base.path(), false);
    let cat = base.path().join("catalog.log");
    let len = std::fs::metadata(&cat).unwrap().len();
    // Flip a byte inside the second record (records are ~30 bytes).
    flip(&cat, len / SERIES as u64 + 12);
    let (store, rec) = Store::open(base.path(), opts()).unwrap();
    assert!(
        rec.dropped
            .iter()
            .any(|d| d.file == cat && d.action == DropAction::Skipped),
        "{rec}"
    );
    // The chunks of the lost series are reported as belonging to no series.
    assert!(
        rec.dropped
            .iter()
            .any(|d| d.reason.contains("catalog does not hold")),
        "{rec}"
    );
    let left = surviving(&store);
    assert_eq!(
        left.iter().filter(|&&n| n == N as usize).count(),
        SERIES - 1,
        "{left:?}"
    );
    // Truncated catalog: torn tail.
    drop(store);
    truncate(&cat, len - 5);
    let (_store, rec) = Store::open(base.path(), opts()).unwrap();
    assert!(
        rec.dropped
            .iter()
            .any(|d| d.file == cat && d.action == DropAction::Truncated),
        "{rec}"
    );
}

#[test]
fn damaged_log_and_checkpoint_after_a_crash() {
    let base = tempfile::tempdir().unwrap();
    build(base.path(), true); // head + log as after a kill
    // Undamaged: everything comes back from chunks + log.
    {
        let d = tempfile::tempdir().unwrap();
        copy_dir(base.path(), d.path());
        let (store, rec) = Store::open(d.path(), opts()).unwrap();
        assert!(rec.is_clean(), "{rec}");
        assert!(rec.wal_samples > 0, "{rec}");
        assert_eq!(surviving(&store), vec![N as usize; SERIES]);
    }
    // The log truncated at many points, or a byte flipped: open succeeds,
    // reports, and keeps every sample that is in chunk files.
    let (seg, len) = files_under(base.path(), "wal")
        .into_iter()
        .max_by_key(|f| f.1)
        .unwrap();
    let rel = seg.strip_prefix(base.path()).unwrap().to_path_buf();
    for i in 1..12u64 {
        for damage in ["truncate", "flip"] {
            let d = tempfile::tempdir().unwrap();
            copy_dir(base.path(), d.path());
            let off = 24 + (len - 30) * i / 12;
            if damage == "truncate" {
                truncate(&d.path().join(&rel), off);
            } else {
                flip(&d.path().join(&rel), off);
            }
            let (store, rec) = Store::open(d.path(), opts()).unwrap();
            let hit: Vec<_> = rec
                .dropped
                .iter()
                .filter(|x| x.file.ends_with(&rel))
                .collect();
            assert!(!hit.is_empty(), "{damage} at {off}: {rec}");
            let left = surviving(&store);
            // Full chunks (64 samples) were on disk before the crash; only
            // the open chunk's samples depend on the log.
            for &n in &left {
                assert!(
                    n >= (N as usize / 64) * 64 - 64,
                    "{damage} at {off}: {left:?} {rec}"
                );
            }
        }
    }
    // A checkpoint damaged in the middle.
    let d = tempfile::tempdir().unwrap();
    copy_dir(base.path(), d.path());
    let ckpt: Vec<_> = dir_files(d.path())
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "ckpt"))
        .collect();
    assert_eq!(ckpt.len(), 1);
    flip(&ckpt[0].0, ckpt[0].1 / 2);
    let (store, rec) = Store::open(d.path(), opts()).unwrap();
    assert!(rec.dropped.iter().any(|x| x.file == ckpt[0].0), "{rec}");
    assert!(surviving(&store).iter().all(|&n| n > 0));
}
