//! Restarting from a checkpoint after the files changed while the source was stopped:
//! a file rotated away (renamed out of the patterns, a new file at its path) has its
//! unread tail read first; a file that is really gone is reported with its lost bytes.

mod util;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use util::{Running, config, logs};
use wasmeter_source::Checkpoint;

fn append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

fn records(prefix: &str, range: std::ops::Range<u32>) -> String {
    range.map(|i| format!("{prefix}-{i:05}\n")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_rotated_while_stopped_has_its_tail_read_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mut old = append(&path);
    let head = records("old", 0..100);
    old.write_all(head.as_bytes()).unwrap();

    let mut first = Running::start(config(dir.path(), "*.log"), vec![], 16);
    first
        .until("the head", |d| d.all_data() == head.as_bytes())
        .await;
    let d1 = first.stop().await;
    let cp_path = dir.path().join("state.cp");
    Checkpoint {
        files: d1.checkpoint(),
        extra: Default::default(),
    }
    .save(&cp_path)
    .unwrap();
    let old_key = d1.gens[0].key;

    // While stopped: the writer appends, then rotation renames the file out of the
    // patterns and starts a new one at the old path.
    let tail = records("old", 100..6100);
    old.write_all(tail.as_bytes()).unwrap();
    fs::rename(&path, dir.path().join("app.log.1")).unwrap();
    let mut new = append(&path);
    let fresh = records("new", 0..50);
    new.write_all(fresh.as_bytes()).unwrap();

    let resume = Checkpoint::load(&cp_path).unwrap().expect("saved").files;
    let mut second = Running::start(config(dir.path(), "*.log"), resume, 4);
    second
        .until("the tail, then the new file", |d| {
            d.gens.len() == 2 && d.gens[1].data == fresh.as_bytes()
        })
        .await;
    let stats = second.stats.snapshot();
    let d2 = second.stop().await;
    let resumed = &d2.gens[0];
    assert_eq!(
        resumed.key, old_key,
        "the renamed file resumed under its key"
    );
    assert_eq!(
        resumed.opened_at,
        head.len() as u64,
        "at its committed offset"
    );
    assert!(
        resumed.data == tail.as_bytes(),
        "exactly the unread tail: {} bytes delivered, {} expected",
        resumed.data.len(),
        tail.len()
    );
    let order: Vec<&str> = d2
        .events
        .iter()
        .map(|e| e.split(' ').next().unwrap())
        .collect();
    let rotated = order.iter().position(|e| *e == "Rotated").expect("Rotated");
    let new_opened = d2
        .events
        .iter()
        .position(|e| e.starts_with("Opened") && e.contains("app.log @0"))
        .expect("new file opened");
    assert!(
        rotated < new_opened,
        "old tail drained first: {:#?}",
        d2.events
    );
    assert_eq!(d2.count(&format!("Closed {old_key}")), 1);
    assert_eq!(stats.files_found_renamed, 1, "{stats:?}");
    assert_eq!(stats.files_gone, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpointed_file_really_gone_is_reported_with_its_unread_bytes() {
    logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vanishing.log");
    let body = records("v", 0..400);
    fs::write(&path, &body).unwrap();
    fs::write(dir.path().join("stays.log"), "s\n").unwrap();

    let mut cfg = config(dir.path(), "*.log");
    cfg.max_chunk_bytes = 100; // many chunks: commit after the first one only
    let mut first = Running::start(cfg.clone(), vec![], 1);
    first
        .until("a first chunk of the vanishing file", |d| {
            d.gens.iter().any(|g| g.path == path && !g.data.is_empty())
        })
        .await;
    let d1 = first.stop().await;
    let cp = d1
        .checkpoint()
        .into_iter()
        .find(|c| c.path == path)
        .expect("vanishing.log checkpointed");
    assert!(cp.size > cp.offset, "read past what was committed: {cp:?}");
    let lost = body.len() as u64 - cp.offset;
    assert_eq!(cp.size, body.len() as u64, "its size when read");

    fs::remove_file(&path).unwrap();
    let mut second = Running::start(cfg, vec![cp.clone()], 16);
    second
        .until("the gone file closed", |d| {
            d.count(&format!("Closed {}", cp.file)) == 1
        })
        .await;
    let stats = second.stats.snapshot();
    second.stop().await;
    assert_eq!((stats.files_gone, stats.bytes_gone), (1, lost), "{stats:?}");
    let warned = logs::warnings_with(&path.display().to_string());
    assert!(
        warned
            .iter()
            .any(|l| l.contains(&format!("unread_bytes={lost}"))),
        "a warning names the path and the unread bytes: {warned:#?}"
    );
}
