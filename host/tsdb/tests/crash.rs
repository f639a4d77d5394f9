//! Crash safety with a real process kill: the test binary re-runs itself as a
//! child (selected by an environment variable) that writes continuously and
//! reports each commit on stdout; the parent SIGKILLs it mid-write, reopens
//! the store and checks that everything committed is there, nothing is
//! corrupt, and the recovery report describes what was dropped.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{T0, test_options};
use wasmeter_tsdb::{
    Labels, Matcher, MetricKind, Options, RangeQuery, Sample, Store, Tier, TierChoice,
};

const ENV_DIR: &str = "WASMETER_TSDB_CRASH_DIR";
const ENV_MODE: &str = "WASMETER_TSDB_CRASH_MODE";
const SERIES: usize = 8;
const PER_BATCH: i64 = 40;
const STEP: i64 = 10_000;

fn value(k: usize, i: i64) -> f64 {
    ((k as i64 * 7919 + i * 31) % 100_000) as f64 / 100.0
}

fn child_options(mode: &str) -> Options {
    Options {
        chunk_items: 32,
        checkpoint_wal_bytes: 32 * 1024,
        commit_interval: (mode == "thread").then(|| Duration::from_millis(5)),
        ..test_options()
    }
}

/// The child: writes batches forever; after each batch is durable prints
/// `COMMITTED <batches>`.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(ENV_DIR) else {
        return; // only runs as the parent's child
    };
    let mode = std::env::var(ENV_MODE).unwrap_or_default();
    let (store, _) = Store::open(&dir, child_options(&mode)).unwrap();
    let refs: Vec<_> = (0..SERIES)
        .map(|k| {
            store
                .series_ref(
                    &Labels::new("crash", [("k", k.to_string())]).unwrap(),
                    MetricKind::Gauge,
                )
                .unwrap()
        })
        .collect();
    let mut out = std::io::stdout();
    for b in 0.. {
        let mut batch = Vec::new();
        for i in b * PER_BATCH..(b + 1) * PER_BATCH {
            for (k, r) in refs.iter().enumerate() {
                batch.push((*r, Sample::new(T0 + i * STEP, value(k, i))));
            }
        }
        let o = store.append_refs(&batch).unwrap();
        if mode == "thread" {
            assert!(store.wait_durable(o.seq, Duration::from_secs(60)));
        } else {
            store.commit().unwrap();
        }
        writeln!(out, "COMMITTED {}", b + 1).unwrap();
        out.flush().unwrap();
    }
}

/// Serialises the parent tests of this binary. A child spawned by one test
/// inherits every descriptor of this process until it execs, including the
/// lock file another test's store holds; `flock` locks belong to the open
/// file, so for that moment the other test's close does not release its
/// directory and a reopen finds it locked.
static ONE_PARENT_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run_and_kill(dir: &std::path::Path, mode: &str, kill_after: i64) -> i64 {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(ENV_DIR, dir)
        .env(ENV_MODE, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut committed = 0;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("COMMITTED ") {
            committed = n.parse().unwrap();
            if committed >= kill_after {
                break;
            }
        }
    }
    // SIGKILL while the child is in the middle of its next batch.
    child.kill().unwrap();
    child.wait().unwrap();
    committed
}

fn verify(dir: &std::path::Path, mode: &str, committed: i64) {
    let (store, rec) = Store::open(dir, child_options(mode)).unwrap();
    println!("{mode}: committed {committed} batches; recovery: {rec}");
    for d in &rec.dropped {
        assert!(d.file.starts_with(dir), "{d}");
        assert!(!d.reason.is_empty());
    }
    assert!(rec.checkpoint.is_some());
    let must = committed * PER_BATCH; // samples per series that were committed
    let q = RangeQuery {
        start_ms: T0,
        end_ms: T0 + (must + 10 * PER_BATCH) * STEP,
        step_ms: STEP,
        lookback_ms: STEP,
        tier: TierChoice::Fixed(Tier::Raw),
    };
    let r = store
        .query_range_with(&[Matcher::metric("crash").unwrap()], &q)
        .unwrap();
    assert_eq!(r.stats.corrupt_chunks, 0);
    assert_eq!(r.series.len(), SERIES);
    for s in &r.series {
        let k: usize = s.labels.get("k").unwrap().parse().unwrap();
        // A gap-free prefix, every value right, at least what was committed.
        for (i, p) in s.points.iter().enumerate() {
            assert_eq!(p.t_ms, T0 + i as i64 * STEP, "series {k}");
            assert_eq!(p.value, value(k, i as i64), "series {k} sample {i}");
        }
        assert!(
            s.points.len() as i64 >= must,
            "series {k}: {} samples, {must} committed",
            s.points.len()
        );
    }
    // The tiers agree exactly with the raw samples that survived: the 1 min
    // buckets (each picked once by a 60 s step) hold exactly as many samples.
    for s in &r.series {
        let n = s.points.len() as i64;
        let qm = RangeQuery {
            start_ms: T0,
            end_ms: T0 + n * STEP + 120_000,
            step_ms: 60_000,
            lookback_ms: 60_000,
            tier: TierChoice::Fixed(Tier::Minute),
        };
        let m = store
            .query_range_with(
                &[Matcher::equal("k", s.labels.get("k").unwrap()).unwrap()],
                &qm,
            )
            .unwrap();
        let total: u64 = m.series[0].points.iter().map(|p| p.count).sum();
        assert_eq!(
            total as i64, n,
            "{}: 1 min buckets hold {total} samples, raw {n}",
            s.labels
        );
    }
    store.close().unwrap();
    let (_s, rec) = Store::open(dir, child_options(mode)).unwrap();
    assert!(rec.is_clean(), "second open after recovery: {rec}");
}

#[test]
fn sigkill_loses_nothing_committed() {
    let _serial = ONE_PARENT_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    for (round, mode) in ["commit", "thread", "commit"].into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let committed = run_and_kill(dir.path(), mode, 25 + 13 * round as i64);
        verify(dir.path(), mode, committed);
    }
}

#[test]
fn repeated_kills_on_the_same_store() {
    let _serial = ONE_PARENT_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    // Kill and recover three times on one directory. Each child starts over
    // at t = T0: the store refuses what it already holds as out of order and
    // takes the rest, so each round extends the data; every recovery must
    // keep everything any round committed.
    let dir = tempfile::tempdir().unwrap();
    let mut committed = 0;
    for round in 0..3 {
        committed = committed.max(run_and_kill(dir.path(), "commit", 10 + 5 * round));
        let (store, rec) = Store::open(dir.path(), child_options("commit")).unwrap();
        assert!(
            rec.dropped.iter().all(|d| d.file.starts_with(dir.path())),
            "{rec}"
        );
        let q = RangeQuery {
            start_ms: T0,
            end_ms: T0 + committed * PER_BATCH * STEP,
            step_ms: STEP,
            lookback_ms: STEP,
            tier: TierChoice::Fixed(Tier::Raw),
        };
        let r = store
            .query_range_with(&[Matcher::metric("crash").unwrap()], &q)
            .unwrap();
        for s in &r.series {
            assert!(s.points.len() as i64 >= committed * PER_BATCH);
        }
        store.close().unwrap();
    }
}

/// Small chunks: 100 samples of a series cut three.
fn cut_options() -> Options {
    Options {
        chunk_items: 32,
        ..test_options()
    }
}

/// Writes samples 0..100 of one series of `metric` and commits, then 100..200
/// without a commit (cutting chunks, far less log than is written out on its
/// own), and abandons the store as a killed process would. Returns the log's
/// newest segment and its length at the commit.
fn commit_then_cut_and_crash(dir: &std::path::Path, metric: &str) -> (std::path::PathBuf, u64) {
    let labels = Labels::new(metric, [("k", "0")]).unwrap();
    let samples = |from: i64, to: i64| -> Vec<Sample> {
        (from..to)
            .map(|i| Sample::new(T0 + i * STEP, value(0, i)))
            .collect()
    };
    let (store, _) = Store::open(dir, cut_options()).unwrap();
    store
        .append_series(&labels, MetricKind::Gauge, &samples(0, 100))
        .unwrap();
    store.commit().unwrap();
    let mut segments: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    segments.sort();
    let log = segments.pop().expect("a log segment");
    let committed_len = std::fs::metadata(&log).unwrap().len();
    store
        .append_series(&labels, MetricKind::Gauge, &samples(100, 200))
        .unwrap();
    store.abandon();
    (log, committed_len)
}

/// The samples `metric` holds in its raw tier and in its 1 min buckets.
fn raw_and_minute(store: &Store, metric: &str) -> (u64, u64) {
    let count = |tier: Tier, step_ms: i64| -> u64 {
        let q = RangeQuery {
            start_ms: T0,
            end_ms: T0 + 200 * STEP + 120_000,
            step_ms,
            lookback_ms: step_ms,
            tier: TierChoice::Fixed(tier),
        };
        let r = store
            .query_range_with(&[Matcher::metric(metric).unwrap()], &q)
            .unwrap();
        r.series[0].points.iter().map(|p| p.count.max(1)).sum()
    };
    (count(Tier::Raw, STEP), count(Tier::Minute, 60_000))
}

/// Samples in raw chunks on disk whose log records a crash lost would be in
/// the raw tier but never in the downsampled ones: a chunk is cut only once
/// the log records of its samples are written out. A crash between commits,
/// after chunks were cut, leaves the tiers in step with the raw samples.
#[test]
fn a_crash_after_chunks_were_cut_leaves_the_tiers_in_step_with_raw() {
    let dir = tempfile::tempdir().unwrap();
    commit_then_cut_and_crash(dir.path(), "cut");
    let (store, rec) = Store::open(dir.path(), cut_options()).unwrap();
    assert!(rec.is_clean(), "{rec}");
    let (raw, minute) = raw_and_minute(&store, "cut");
    assert!(raw >= 100, "the committed samples: {raw}");
    assert_eq!(minute, raw, "1 min buckets against raw");
}

/// After a power failure the kernel may have written a cut chunk's pages and
/// not the log's (nothing uncommitted was fsynced): opening folds the raw
/// samples the tiers have not seen into them, so they agree again.
#[test]
fn raw_chunks_whose_log_records_were_lost_are_folded_into_the_tiers() {
    let dir = tempfile::tempdir().unwrap();
    let (log, committed_len) = commit_then_cut_and_crash(dir.path(), "lost");
    // The log as a power failure could leave it: what was fsynced.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(committed_len)
        .unwrap();
    let (store, rec) = Store::open(dir.path(), cut_options()).unwrap();
    assert!(rec.raw_samples_folded > 0, "{rec:?}");
    let (raw, minute) = raw_and_minute(&store, "lost");
    assert_eq!(raw, 192, "the committed samples and the cut chunks");
    assert_eq!(minute, raw, "1 min buckets against raw");
}
