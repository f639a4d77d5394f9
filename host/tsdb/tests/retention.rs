//! Retention by age (files gone, queries empty there) and by size (the store
//! stays under its cap, oldest data deleted first).

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use common::{HOUR, T0, dir_bytes, dir_files, short_options};
use wasmeter_tsdb::{
    Labels, Matcher, MetricKind, Options, RangeQuery, Sample, Store, Tier, TierChoice,
};

fn write_hours(store: &Store, series: usize, from_h: i64, to_h: i64, step_ms: i64) {
    for h in from_h..to_h {
        for k in 0..series {
            let l = Labels::new("m", [("k", k.to_string())]).unwrap();
            let samples: Vec<Sample> = (0..HOUR / step_ms)
                .map(|i| {
                    let t = T0 + h * HOUR + i * step_ms + k as i64;
                    Sample::new(t, ((t / 7) % 1000) as f64 * 0.5)
                })
                .collect();
            let out = store
                .append_series(&l, MetricKind::Gauge, &samples)
                .unwrap();
            assert_eq!(out.refused(), 0);
        }
        store.commit().unwrap();
    }
}

fn part_files(dir: &std::path::Path, tier: &str) -> Vec<PathBuf> {
    dir_files(&dir.join(tier))
        .into_iter()
        .map(|f| f.0)
        .filter(|p| p.extension().is_some_and(|e| e == "part"))
        .collect()
}

fn points(store: &Store, tier: Tier, start: i64, end: i64, step: i64) -> usize {
    let q = RangeQuery {
        start_ms: start,
        end_ms: end,
        step_ms: step,
        lookback_ms: step,
        tier: TierChoice::Fixed(tier),
    };
    let r = store
        .query_range_with(&[Matcher::metric("m").unwrap()], &q)
        .unwrap();
    r.series.iter().map(|s| s.points.len()).sum()
}

#[test]
fn retention_by_age_deletes_old_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let opts = short_options();
    let (store, _) = Store::open(dir.path(), opts.clone()).unwrap();
    // Two days of data, 1 sample / 10 s, for 3 series.
    write_hours(&store, 3, 0, 48, 10_000);
    let now = store.stats().now_ms;
    for tier in Tier::ALL {
        let keep_from = now - opts.tier(tier).retention_ms;
        let files = part_files(dir.path(), tier.name());
        assert!(!files.is_empty(), "{tier}");
        for f in &files {
            let start: i64 = f.file_stem().unwrap().to_str().unwrap().parse().unwrap();
            let end = start + opts.tier(tier).partition_ms;
            assert!(
                end > keep_from,
                "{tier}: {} should have been deleted (end {end}, keep from {keep_from})",
                f.display()
            );
        }
        // Nothing is answered from before the retention window ...
        let old_end = keep_from - opts.tier(tier).partition_ms - 1;
        assert_eq!(
            points(&store, tier, T0, old_end, 60_000.max(tier.width_ms())),
            0,
            "{tier}"
        );
        // ... and the recent data is all there.
        assert!(
            points(&store, tier, now - HOUR, now, 60_000.max(tier.width_ms())) > 0,
            "{tier}"
        );
    }
    // The earliest data in any file is within the longest retention.
    assert!(store.stats().deleted_by_age > 0);
    store.close().unwrap();
    // After a reopen the deleted data stays deleted and the rest is there.
    let (store, rec) = Store::open(dir.path(), opts).unwrap();
    assert!(rec.is_clean(), "{rec}");
    assert_eq!(points(&store, Tier::Raw, T0, T0 + 24 * HOUR, 60_000), 0);
    assert!(points(&store, Tier::Raw, now - HOUR, now, 60_000) > 0);
}

#[test]
fn retention_by_size_keeps_the_store_under_its_cap_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let cap = 400 * 1024;
    let opts = Options {
        max_disk_bytes: cap,
        // Long age retention: only size forces deletions.
        raw: wasmeter_tsdb::TierOptions {
            retention_ms: 1000 * HOUR,
            partition_ms: HOUR,
            chunk_bytes: None,
        },
        second: wasmeter_tsdb::TierOptions {
            retention_ms: 1000 * HOUR,
            partition_ms: 2 * HOUR,
            chunk_bytes: None,
        },
        minute: wasmeter_tsdb::TierOptions {
            retention_ms: 1000 * HOUR,
            partition_ms: 4 * HOUR,
            chunk_bytes: None,
        },
        hour: wasmeter_tsdb::TierOptions {
            retention_ms: 1000 * HOUR,
            partition_ms: 4 * HOUR,
            chunk_bytes: None,
        },
        checkpoint_wal_bytes: 64 * 1024,
        ..short_options()
    };
    let (store, _) = Store::open(dir.path(), opts).unwrap();
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    let mut max_seen = 0;
    for day in 0..4 {
        write_hours(&store, 5, day * 24, (day + 1) * 24, 2_000);
        let st = store.stats();
        // The accounting matches the files on disk (the empty LOCK aside).
        assert_eq!(st.disk_bytes, dir_bytes(dir.path()), "{st:?}");
        assert!(
            st.disk_bytes <= cap,
            "day {day}: {} bytes on disk, cap {cap}: {st:?}",
            st.disk_bytes
        );
        max_seen = max_seen.max(st.disk_bytes);
        for t in Tier::ALL {
            seen.extend(part_files(dir.path(), t.name()));
        }
    }
    let st = store.stats();
    assert!(st.deleted_by_size > 0, "{st:?}");
    // Oldest first: every deleted partition ended no later than every
    // remaining closed one.
    let remaining: BTreeSet<PathBuf> = Tier::ALL
        .iter()
        .flat_map(|t| part_files(dir.path(), t.name()))
        .collect();
    let end_of = |p: &PathBuf| {
        let tier = p
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let start: i64 = p.file_stem().unwrap().to_str().unwrap().parse().unwrap();
        let span = match tier.as_str() {
            "raw" => HOUR,
            "1s" => 2 * HOUR,
            _ => 4 * HOUR,
        };
        start + span
    };
    let newest_deleted = seen.difference(&remaining).map(end_of).max().unwrap();
    let now = st.now_ms;
    let oldest_remaining_closed = remaining
        .iter()
        .map(end_of)
        .filter(|&e| e <= now - 8 * HOUR) // certainly closed
        .min();
    if let Some(o) = oldest_remaining_closed {
        assert!(
            newest_deleted <= o,
            "deleted a partition ending at {newest_deleted} but kept one ending at {o}"
        );
    }
    // The newest data is still there.
    assert!(points(&store, Tier::Raw, now - HOUR, now, 60_000) > 0);
    println!(
        "max disk bytes {max_seen} (cap {cap}), deleted by size: {}",
        st.deleted_by_size
    );
}
