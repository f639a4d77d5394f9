//! End-to-end tests of the file and system sources over real files in temp dirs.

mod util;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use util::{Running, WAIT, XorShift, config};
use wasmeter_source::{
    Checkpoint, FileCheckpoint, FileSource, FileSourceConfig, SourceError, StartAt, SystemSource,
};

fn append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

fn write(f: &mut File, s: &str) {
    f.write_all(s.as_bytes()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appended_records_arrive_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.log");
    let mut f = append(&path);
    write(&mut f, "one\ntwo\n");
    let mut src = Running::start(config(dir.path(), "*.log"), vec![], 16);
    src.until("first records", |d| d.all_data() == b"one\ntwo\n")
        .await;
    write(&mut f, "three\r\nfour\n");
    src.until("appended records", |d| {
        d.all_data() == b"one\ntwo\nthree\r\nfour\n"
    })
    .await;
    let d = src.stop().await;
    assert_eq!(d.gens.len(), 1);
    assert_eq!(d.gens[0].path, path);
    assert_eq!(d.count("Opened"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_last_line_waits_until_complete() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = append(&dir.path().join("a.log"));
    let mut src = Running::start(config(dir.path(), "*.log"), vec![], 16);
    write(&mut f, "first\nabc");
    src.until("first line", |d| d.all_data() == b"first\n")
        .await;
    write(&mut f, "def");
    write(&mut f, "\n");
    src.until("completed line", |d| {
        d.all_data().len() >= b"first\nabcdef\n".len()
    })
    .await;
    let d = src.stop().await;
    assert_eq!(
        d.all_data(),
        b"first\nabcdef\n",
        "the partial line went out once, whole"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_file_in_watched_dir_is_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), "*.csv");
    // Long reconcile period: the watcher's hint has to do it.
    cfg.reconcile_interval = Duration::from_secs(3600);
    fs::write(dir.path().join("first.csv"), "0\n").unwrap();
    let mut src = Running::start(cfg, vec![], 16);
    // Once the first file is delivered the first scan is over (and the watch is set).
    src.until("first file", |d| d.all_data() == b"0\n").await;
    let mut f = append(&dir.path().join("new.csv"));
    write(&mut f, "t,p\n1,2\n");
    fs::write(dir.path().join("ignored.txt"), "nope\n").unwrap();
    src.until("new file's records", |d| d.all_data() == b"0\nt,p\n1,2\n")
        .await;
    let d = src.stop().await;
    assert_eq!(d.gens.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_are_read_at_the_watcher_s_hint() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), "*.csv");
    // Long reconcile period: the watcher's hint has to do it.
    cfg.reconcile_interval = Duration::from_secs(3600);
    let mut f = append(&dir.path().join("feed.csv"));
    write(&mut f, "0\n");
    let mut src = Running::start(cfg, vec![], 16);
    src.until("first record", |d| d.all_data() == b"0\n").await;
    let mut expected = b"0\n".to_vec();
    for n in 1..20 {
        // Written, the file kept open: the write alone wakes the source.
        write(&mut f, &format!("{n}\n"));
        expected.extend_from_slice(format!("{n}\n").as_bytes());
        src.until("the appended record", |d| d.all_data() == expected)
            .await;
    }
    src.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_drains_the_old_file_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mut old = append(&path);
    write(&mut old, "a1\na2\n");
    let mut src = Running::start(config(dir.path(), "*.log"), vec![], 16);
    src.until("old records", |d| d.all_data() == b"a1\na2\n")
        .await;
    fs::rename(&path, dir.path().join("app.log.1")).unwrap();
    write(&mut old, "a3\n"); // the writer still holds the renamed file
    let mut new = append(&path);
    write(&mut new, "b1\n");
    src.until("new file's record", |d| {
        d.gens.len() == 2 && d.gens[1].data == b"b1\n"
    })
    .await;
    let d = src.stop().await;
    assert_eq!(
        d.gens[0].data, b"a1\na2\na3\n",
        "late write to the old file delivered"
    );
    let order: Vec<&str> = d
        .events
        .iter()
        .map(|e| e.split(' ').next().unwrap())
        .collect();
    let rotated = order.iter().position(|e| *e == "Rotated").expect("Rotated");
    assert_eq!(order[rotated + 1], "Closed");
    assert_eq!(order[rotated + 2], "Opened");
    assert!(
        d.events[rotated - 1].contains("a3"),
        "old drained before Rotated: {:#?}",
        d.events
    );
    assert_eq!(d.count("Rotated"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncation_restarts_at_zero_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.log");
    let mut f = append(&path);
    write(&mut f, "line-1\nline-2\nline-3\n");
    let mut src = Running::start(config(dir.path(), "*.log"), vec![], 16);
    src.until("first generation", |d| {
        d.all_data() == b"line-1\nline-2\nline-3\n"
    })
    .await;
    f.set_len(0).unwrap();
    write(&mut f, "new-1\n");
    src.until("second generation", |d| {
        d.gens.len() == 2 && d.gens[1].data == b"new-1\n"
    })
    .await;
    assert_eq!(src.stats.snapshot().truncations, 1);
    let d = src.stop().await;
    assert_eq!(d.count("Truncated"), 1);
    let t = d
        .events
        .iter()
        .position(|e| e.starts_with("Truncated"))
        .unwrap();
    assert_eq!(
        d.events[t + 1],
        format!("Closed {}", d.gens[0].key),
        "the old key ends"
    );
    assert_eq!(d.gens[1].opened_at, 0);
    assert_ne!(
        d.gens[0].key, d.gens[1].key,
        "a new generation gets a new key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_and_rewrite_past_the_old_offset_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = append(&dir.path().join("t.log"));
    write(&mut f, "old-1\n");
    let mut src = Running::start(config(dir.path(), "*.log"), vec![], 16);
    src.until("old record", |d| d.all_data() == b"old-1\n")
        .await;
    f.set_len(0).unwrap();
    write(&mut f, "NEW-1\nNEW-2\n"); // longer than what was read: size alone can't tell
    src.until("rewritten content", |d| {
        d.gens.len() == 2 && d.gens[1].data == b"NEW-1\nNEW-2\n"
    })
    .await;
    let d = src.stop().await;
    assert_eq!(
        d.gens[0].data, b"old-1\n",
        "no bytes of the new content under the old key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_file_is_drained_then_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.log");
    let mut f = append(&path);
    write(&mut f, "a\n");
    let mut src = Running::start(config(dir.path(), "*.log"), vec![], 16);
    src.until("first record", |d| d.all_data() == b"a\n").await;
    write(&mut f, "b\n");
    fs::remove_file(&path).unwrap();
    src.until("Closed", |d| d.count("Closed") == 1).await;
    let d = src.stop().await;
    assert_eq!(d.all_data(), b"a\nb\n");
    assert!(d.events.last().unwrap().starts_with("Closed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_line_is_skipped_counted_and_covered() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = append(&dir.path().join("o.log"));
    let long = "x".repeat(100);
    write(&mut f, &format!("ok\n{long}\nfine\n"));
    let mut cfg = config(dir.path(), "*.log");
    cfg.max_line_bytes = 10;
    let mut src = Running::start(cfg, vec![], 16);
    let total = 3 + 101 + 5;
    src.until("end of file committed", |d| {
        d.committed.values().any(|(_, o)| *o == total)
    })
    .await;
    assert_eq!(src.stats.snapshot().oversized_lines, 1);
    let d = src.stop().await;
    assert_eq!(d.all_data(), b"ok\nfine\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_channel_and_chunks_apply_backpressure_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = append(&dir.path().join("big.log"));
    let expected: String = (0..5000).map(|i| format!("record {i:05}\n")).collect();
    write(&mut f, &expected);
    let mut cfg = config(dir.path(), "*.log");
    cfg.max_chunk_bytes = 100;
    let mut src = Running::start(cfg, vec![], 1);
    src.until("every record", |d| d.all_data().len() >= expected.len())
        .await;
    let d = src.stop().await;
    assert_eq!(d.all_data(), expected.as_bytes());
    assert!(d.count("Chunk") >= expected.len() / 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_at_end_skips_existing_records_but_completes_the_partial_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = append(&dir.path().join("e.log"));
    write(&mut f, "old1\nold2\npart");
    let mut cfg = config(dir.path(), "*.log");
    cfg.start_at = StartAt::End;
    let mut src = Running::start(cfg, vec![], 16);
    src.until("Opened", |d| d.gens.len() == 1).await;
    assert_eq!(src.delivered.gens[0].opened_at, 10);
    write(&mut f, "ial\nnew\n");
    src.until("new records", |d| d.all_data() == b"partial\nnew\n")
        .await;
    src.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_resume_neither_loses_nor_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let cp_path = dir.path().join("state").join("checkpoint.json");
    fs::create_dir(cp_path.parent().unwrap()).unwrap();
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let mut a = append(&logs.join("a.log"));
    let mut gone = append(&logs.join("gone.log"));
    write(&mut a, "a1\na2\npar");
    write(&mut gone, "g1\n");

    let mut first = Running::start(config(&logs, "*.log"), vec![], 16);
    first
        .until("both files", |d| {
            d.all_data().len() == b"a1\na2\ng1\n".len()
        })
        .await;
    let d1 = first.stop().await;
    let saved = Checkpoint {
        files: d1.checkpoint(),
        extra: [("plugin:csv".to_owned(), b"state".to_vec())].into(),
    };
    saved.save(&cp_path).unwrap();
    let gone_key = d1
        .gens
        .iter()
        .find(|g| g.path.ends_with("gone.log"))
        .unwrap()
        .key;

    // While the host is down: one file grows (completing a partial line), one is deleted.
    write(&mut a, "tial\na3\n");
    drop(gone);
    fs::remove_file(logs.join("gone.log")).unwrap();

    let mut loaded = Checkpoint::load(&cp_path).unwrap().expect("saved");
    assert_eq!(loaded, saved);
    // A stale entry for an earlier generation of the same inode, and one belonging to
    // another source sharing the checkpoint: neither may disturb the resume.
    let a_key = d1
        .gens
        .iter()
        .find(|g| g.path.ends_with("a.log"))
        .unwrap()
        .key;
    let key = |dev: u64, ino: u64| -> wasmeter_source::FileKey {
        let json = format!(r#"{{"dev":{dev},"ino":{ino},"fingerprint":"0800000000000001"}}"#);
        serde_json::from_str(&json).unwrap()
    };
    let stale = key(a_key.dev(), a_key.ino());
    let foreign = key(1, 1);
    loaded.files.insert(
        0,
        FileCheckpoint {
            file: stale,
            path: logs.join("a.log"),
            offset: 0,
            size: 0,
        },
    );
    loaded.files.push(FileCheckpoint {
        file: foreign,
        path: "/elsewhere/x.log".into(),
        offset: 9,
        size: 9,
    });
    let mut second = Running::start(config(&logs, "*.log"), loaded.files, 16);
    second
        .until("only the new records", |d| d.all_data() == b"partial\na3\n")
        .await;
    second
        .until("gone file closed", |d| {
            d.count(&format!("Closed {gone_key}")) == 1
        })
        .await;
    second
        .until("stale entry closed", |d| {
            d.count(&format!("Closed {stale}")) == 1
        })
        .await;
    let d2 = second.stop().await;
    assert_eq!(
        d2.count(&format!("Closed {foreign}")),
        0,
        "not ours to close"
    );
    let opened = &d2.gens[0];
    assert_eq!(
        opened.opened_at,
        b"a1\na2\n".len() as u64,
        "resumed at the committed offset"
    );
    assert_eq!(opened.key, a_key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_of_a_replaced_file_is_not_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.log");
    fs::write(&path, "first-content\n").unwrap();
    let mut first = Running::start(config(dir.path(), "*.log"), vec![], 16);
    first
        .until("content", |d| d.all_data() == b"first-content\n")
        .await;
    let cp = first.stop().await.checkpoint();
    // Same inode, different first bytes: another generation, read from 0.
    fs::write(&path, "other-content-longer\n").unwrap();
    let mut second = Running::start(config(dir.path(), "*.log"), cp.clone(), 16);
    second
        .until("new content", |d| d.all_data() == b"other-content-longer\n")
        .await;
    let d = second.stop().await;
    assert_eq!(d.count(&format!("Closed {}", cp[0].file)), 1);
}

#[test]
fn corrupt_checkpoint_names_the_file_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cp.json");
    fs::write(&path, "not json").unwrap();
    let msg = Checkpoint::load(&path).unwrap_err().to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("corrupt: not a checkpoint"), "{msg}");
}

#[test]
fn bad_glob_is_an_error_naming_the_pattern() {
    let cfg = FileSourceConfig {
        name: "trades".into(),
        include: vec!["/data/[oops/*.csv".into()],
        ..Default::default()
    };
    let err = FileSource::new(cfg, vec![])
        .err()
        .expect("bad glob rejected");
    assert!(matches!(err, SourceError::BadPattern { .. }));
    assert!(err.to_string().contains("/data/[oops/*.csv"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_size_files_with_content_are_read_with_pread() {
    // procfs files stat as empty yet have content.
    let path = "/proc/sys/kernel/ostype";
    assert_eq!(fs::metadata(path).unwrap().len(), 0);
    let content = fs::read(path).unwrap();
    let cfg = FileSourceConfig {
        name: "proc".into(),
        include: vec![path.into()],
        ..Default::default()
    };
    let mut src = Running::start(cfg, vec![], 16);
    src.until("its line", |d| d.all_data() == content).await;
    src.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_source_reads_proc_files() {
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let cancel = CancellationToken::new();
    let sys = SystemSource {
        interval: Duration::from_millis(20),
        files: vec![
            "/proc/loadavg".into(),
            "/nonexistent/file".into(),
            "/proc/meminfo".into(),
        ],
    };
    let task = tokio::spawn(sys.run(tx, cancel.clone()));
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let r = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(!r.data.is_empty());
        seen.push(r.source.to_string());
    }
    assert_eq!(
        seen,
        [
            "/proc/loadavg",
            "/proc/meminfo",
            "/proc/loadavg",
            "/proc/meminfo"
        ]
    );
    cancel.cancel();
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    assert!(
        SystemSource::default()
            .files
            .contains(&PathBuf::from("/proc/stat"))
    );
}

/// Model-based: random appends (cutting lines anywhere), rotations and truncations of one
/// file; per file generation, the records delivered must be exactly the complete lines
/// written. Before a rotation or truncation the writer waits until what it wrote was
/// delivered (data that lives only between two scans can't be seen by anyone); appends
/// after it race freely with the source's detection of the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_random_appends_rotations_truncations() {
    for seed in [0x9E37_79B9_7F4A_7C15u64, 42, 7_777_777] {
        run_model(seed, 60).await;
    }
}

struct Model {
    path: PathBuf,
    archive: PathBuf,
    writer: File,
    /// Bytes written per generation.
    gens: Vec<Vec<u8>>,
    /// The not yet written rest of the current line stream.
    pending: Vec<u8>,
    lines: u64,
}

impl Model {
    fn expected(&self) -> Vec<String> {
        self.gens
            .iter()
            .map(|g| match g.iter().rposition(|&b| b == b'\n') {
                Some(i) => String::from_utf8_lossy(&g[..=i]).into_owned(),
                None => String::new(),
            })
            .filter(|s| !s.is_empty())
            .collect()
    }

    fn append(&mut self, rng: &mut XorShift, n: usize) {
        while self.pending.len() < n {
            let pad = "abcdefghijklmnopqrstuvwxyz"[..rng.below(27) as usize].to_owned();
            let line = format!("{:04}:{:06}:{pad}\n", self.gens.len(), self.lines);
            self.lines += 1;
            self.pending.extend_from_slice(line.as_bytes());
        }
        let chunk: Vec<u8> = self.pending.drain(..n).collect();
        self.writer.write_all(&chunk).unwrap();
        self.gens.last_mut().unwrap().extend_from_slice(&chunk);
    }
}

async fn run_model(seed: u64, ops: usize) {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    fs::create_dir(&archive).unwrap();
    let path = dir.path().join("data.log");
    let mut model = Model {
        writer: append(&path),
        path,
        archive,
        gens: vec![Vec::new()],
        pending: Vec::new(),
        lines: 0,
    };
    let mut rng = XorShift(seed);
    let mut cfg = config(dir.path(), "*.log");
    cfg.max_chunk_bytes = 64 + rng.below(200) as usize; // many chunk boundaries
    let mut src = Running::start(cfg, vec![], 2);
    for op in 0..ops {
        match rng.below(100) {
            0..70 => {
                let n = 1 + rng.below(120) as usize;
                model.append(&mut rng, n);
            }
            r => {
                let want = model.expected();
                let what = format!("seed {seed:#x} op {op}: sync to {want:#?}");
                src.until(&what, |d| d.nonempty() == want).await;
                if r < 85 {
                    let to = model.archive.join(format!("{}.log", model.gens.len()));
                    fs::rename(&model.path, to).unwrap();
                    model.writer = append(&model.path);
                } else {
                    model.writer.set_len(0).unwrap();
                }
                model.gens.push(Vec::new());
                model.pending.clear();
            }
        }
        if rng.below(4) == 0 {
            tokio::task::yield_now().await;
        }
    }
    // Finish the current line so every written byte of the last generation is a record.
    if model.pending.is_empty() {
        model.append(&mut rng, 1);
    }
    let rest = model.pending.len();
    model.append(&mut rng, rest);
    let want = model.expected();
    src.until(&format!("seed {seed:#x}: final"), |d| d.nonempty() == want)
        .await;
    let stats = src.stats.snapshot();
    let d = src.stop().await;
    assert_eq!(d.nonempty(), want, "seed {seed:#x}");
    eprintln!(
        "model seed {seed:#x}: {} generations, {stats:?}",
        want.len()
    );
    assert!(
        stats.rotations > 0 && stats.truncations > 0,
        "the seed exercises both: {stats:?}"
    );
    assert_eq!(stats.truncations as usize, d.count("Truncated"));
    assert_eq!(stats.rotations as usize, d.count("Rotated"));
    assert_eq!(
        stats.records as usize,
        want.iter().map(|g| g.matches('\n').count()).sum::<usize>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_returns_when_the_receiver_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("x.log"), "a\n".repeat(1000)).unwrap();
    let source = FileSource::new(config(dir.path(), "*.log"), vec![]).unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let task = tokio::spawn(source.run(tx, CancellationToken::new()));
    drop(rx);
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_run_stops_the_source_thread() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("x.log"), "a\n").unwrap();
    let source = FileSource::new(config(dir.path(), "*.log"), vec![]).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let task = tokio::spawn(source.run(tx, CancellationToken::new()));
    // The source is running: its first record came through.
    let first = tokio::time::timeout(WAIT, rx.recv()).await.unwrap();
    assert!(first.is_some());
    task.abort();
    // The thread holds the only sender: the channel closes once it has stopped.
    let closed = async { while rx.recv().await.is_some() {} };
    tokio::time::timeout(WAIT, closed)
        .await
        .expect("the source's thread outlived its `run`");
}
