//! 2,000 files under a soft limit of 1,024 open files: every record arrives exactly
//! once and the process keeps descriptors for everything else meanwhile.
//!
//! The limit is process-wide, so this binary holds this one test only and lowers its
//! own soft limit first. A second part sets a budget above the limit on purpose: the
//! opens that fail with `EMFILE` wait and are retried, nothing is lost.

mod util;

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;

use util::{Running, config};
use wasmeter_source::{Checkpoint, default_open_files, nofile_limit};

const SOFT_LIMIT: u64 = 1024;
const FILES: usize = 2000;
const RECORDS: usize = 8;

fn lower_soft_limit(to: u64) {
    let lim = nofile_limit().expect("getrlimit");
    assert!(lim.hard >= to, "hard limit {} below {to}", lim.hard);
    let new = libc::rlimit {
        rlim_cur: to,
        rlim_max: lim.hard,
    };
    // SAFETY: a valid rlimit, read by setrlimit only.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) }, 0);
    assert_eq!(nofile_limit().unwrap().soft, to);
}

/// Everything a busy host does besides tailing, each needing a descriptor.
fn other_descriptors_work(dir: &std::path::Path, round: usize) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listener opens");
    let client = TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
    let (mut server, _) = listener.accept().expect("accept");
    server.write_all(b"ok").unwrap();
    drop((client, server));
    let mut cp = Checkpoint::default();
    cp.extra.insert("plugin:x".into(), vec![round as u8; 1000]);
    cp.save(&dir.join("checkpoint"))
        .expect("checkpoint written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_files_under_a_1024_descriptor_limit() {
    lower_soft_limit(SOFT_LIMIT);
    let budget = default_open_files();
    assert_eq!(budget, 512, "half the soft limit");
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let mut expected: HashMap<PathBuf, Vec<u8>> = HashMap::new();
    for f in 0..FILES {
        let path = logs.join(format!("{f:04}.log"));
        let body: String = (0..RECORDS)
            .map(|r| format!("file {f:04} record {r}\n"))
            .collect();
        fs::write(&path, &body).unwrap();
        expected.insert(path, body.into_bytes());
    }
    let total: usize = expected.values().map(Vec::len).sum();
    let mut cfg = config(&logs, "*.log");
    cfg.max_chunk_bytes = 64; // several turns per file
    let mut src = Running::start(cfg, vec![], 8);
    let stats = src.stats.clone();
    for round in 1..=4 {
        src.until("a quarter more of the records", |d| {
            d.data_len() >= total * round / 4
        })
        .await;
        // The source is blocked on its full channel, holding what it holds.
        other_descriptors_work(dir.path(), round);
        let s = stats.snapshot();
        assert!(s.files_open <= budget as u64, "over budget: {s:?}");
    }
    // Appends after every file was read once: closed files reopen on growth.
    for f in (0..FILES).step_by(97) {
        let path = logs.join(format!("{f:04}.log"));
        let line = format!("file {f:04} late\n");
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(line.as_bytes())
            .unwrap();
        expected
            .get_mut(&path)
            .unwrap()
            .extend_from_slice(line.as_bytes());
    }
    let total: usize = expected.values().map(Vec::len).sum();
    src.until("the late records", |d| d.data_len() >= total)
        .await;
    let s = stats.snapshot();
    let d = src.stop().await;
    assert_eq!(d.gens.len(), FILES);
    for g in &d.gens {
        assert_eq!(
            g.data,
            expected[&g.path],
            "{}: every record exactly once",
            g.path.display()
        );
    }
    assert_eq!(d.all_data().len(), total, "nothing more");
    assert_eq!(s.read_errors, 0, "{s:?}");
    assert!(s.files_open <= budget as u64, "{s:?}");
    assert_eq!(s.open_budget, budget as u64);
    assert_eq!(s.files_tracked, FILES as u64);
    eprintln!("{s:?}");
    drop(d);

    // A budget the process cannot honour: the system refuses opens (EMFILE).
    let mut cfg = config(&logs, "*.log");
    cfg.max_open_files = Some(100_000);
    let mut src = Running::start(cfg, vec![], 64);
    let stats = src.stats.clone();
    src.until("every record again", |d| d.data_len() >= total)
        .await;
    let s = stats.snapshot();
    let d = src.stop().await;
    assert!(s.opens_deferred > 0, "the system limit was hit: {s:?}");
    assert_eq!(s.read_errors, 0, "refused opens are not errors: {s:?}");
    assert_eq!(d.gens.len(), FILES);
    for g in &d.gens {
        assert_eq!(g.data, expected[&g.path], "{}", g.path.display());
    }
}
