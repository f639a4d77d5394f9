//! The descriptor budget: with more files than it allows, every file makes progress
//! (fair turns), at most the budget is open, and idle files are closed and reopened
//! without losing or repeating a byte, even if they were replaced while closed.

mod util;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use util::{Running, WAIT, config};

fn append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// Polls `cond` until it holds (bounded by [`WAIT`]).
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_files_than_the_budget_all_make_progress() {
    const FILES: usize = 24;
    const BUDGET: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    for f in 0..FILES {
        let body: String = (0..300)
            .map(|i| format!("f{f:02}-r{i:04}-xxxx\n"))
            .collect();
        fs::write(dir.path().join(format!("{f:02}.log")), &body).unwrap();
        expected.push(body);
    }
    let mut cfg = config(dir.path(), "*.log");
    cfg.max_open_files = Some(BUDGET);
    cfg.max_chunk_bytes = 256; // each file needs many turns
    let mut src = Running::start(cfg, vec![], 1);
    let stats = src.stats.clone();
    let mut saw_waiting = false;
    src.until("a first chunk from every file", |d| {
        let s = stats.snapshot();
        assert!(s.files_open <= BUDGET as u64, "over budget: {s:?}");
        saw_waiting |= s.files_waiting > 0;
        d.gens.iter().filter(|g| !g.data.is_empty()).count() == FILES
    })
    .await;
    let first_round = &src.delivered;
    for g in &first_round.gens {
        let i: usize = g
            .path
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            g.data.len() < expected[i].len(),
            "{} was read to its end before every file had a turn",
            g.path.display()
        );
    }
    assert!(saw_waiting, "files waited for descriptors");
    src.until("every record", |d| {
        assert!(stats.snapshot().files_open <= BUDGET as u64);
        d.all_data().len() == expected.iter().map(String::len).sum::<usize>()
    })
    .await;
    let snapshot = stats.snapshot();
    let d = src.stop().await;
    for g in &d.gens {
        let i: usize = g
            .path
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(g.data, expected[i].as_bytes(), "{}", g.path.display());
    }
    assert_eq!(
        d.count("Opened"),
        FILES,
        "each file opened once as a generation"
    );
    assert_eq!(snapshot.open_budget, BUDGET as u64);
    assert!(snapshot.opens_deferred > 0, "{snapshot:?}");
    assert_eq!(snapshot.files_tracked, FILES as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_files_close_and_reopen_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idle.log");
    let mut f = append(&path);
    f.write_all(b"one\npart").unwrap();
    let mut cfg = config(dir.path(), "*.log");
    cfg.idle_close = Duration::from_millis(50);
    let mut src = Running::start(cfg, vec![], 16);
    src.until("first record", |d| d.all_data() == b"one\n")
        .await;
    let stats = src.stats.clone();
    eventually("the idle file closed", || {
        let s = stats.snapshot();
        s.idle_closes >= 1 && s.files_open == 0
    })
    .await;
    f.write_all(b"ial\ntwo\n").unwrap();
    src.until("records after the reopen", |d| {
        d.all_data() == b"one\npartial\ntwo\n"
    })
    .await;
    eventually("closed again", || {
        let s = stats.snapshot();
        s.idle_closes >= 2 && s.files_open == 0
    })
    .await;
    // Replaced while closed: a late write to the old file, rotation, a new file.
    f.write_all(b"three\n").unwrap();
    fs::rename(&path, dir.path().join("idle.log.1")).unwrap();
    let mut new = append(&path);
    new.write_all(b"fresh\n").unwrap();
    src.until("the new file", |d| {
        d.gens.len() == 2 && d.gens[1].data == b"fresh\n"
    })
    .await;
    let d = src.stop().await;
    assert_eq!(d.gens[0].data, b"one\npartial\ntwo\nthree\n", "{d:#?}");
    assert_eq!(d.count("Rotated"), 1);
    assert_eq!(d.count("Opened"), 2, "reopening is not a new generation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_truncated_while_closed_restarts_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.log");
    let mut f = append(&path);
    f.write_all(b"old-1\nold-2\n").unwrap();
    let mut cfg = config(dir.path(), "*.log");
    cfg.idle_close = Duration::from_millis(50);
    let mut src = Running::start(cfg, vec![], 16);
    src.until("old records", |d| d.all_data() == b"old-1\nold-2\n")
        .await;
    let stats = src.stats.clone();
    eventually("closed", || stats.snapshot().files_open == 0).await;
    f.set_len(0).unwrap();
    f.write_all(b"NEW-1\nNEW-2\nNEW-3\n").unwrap();
    src.until("the rewritten content", |d| {
        d.gens.len() == 2 && d.gens[1].data == b"NEW-1\nNEW-2\nNEW-3\n"
    })
    .await;
    let d = src.stop().await;
    assert_eq!(d.gens[0].data, b"old-1\nold-2\n");
    assert_eq!(d.count("Truncated"), 1);
}
