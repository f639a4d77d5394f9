//! The checkpoint file on disk: binary round trip of what a real source delivered
//! (with a large plugin state stored raw), migration from the JSON format of version
//! 1, and clear refusals of damaged files.

mod util;

use std::fs::{self, File};
use std::io::Write;

use util::{Running, config};
use wasmeter_source::{CHECKPOINT_VERSION, Checkpoint, FileKey, SourceError};

fn key(dev: u64, ino: u64, fingerprint: &str) -> FileKey {
    let json = format!(r#"{{"dev":{dev},"ino":{ino},"fingerprint":"{fingerprint}"}}"#);
    serde_json::from_str(&json).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_round_trip_of_a_real_source_with_a_large_state() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.log"), "a1\na2\n").unwrap();
    fs::write(dir.path().join("b.log"), "b1\n").unwrap();
    let mut src = Running::start(config(dir.path(), "*.log"), vec![], 16);
    src.until("both files", |d| d.data_len() == 9).await;
    let delivered = src.stop().await;
    let state: Vec<u8> = (0..15u32 << 20)
        .map(|i| (i.wrapping_mul(31) >> 3) as u8)
        .collect();
    let cp = Checkpoint {
        files: delivered.checkpoint(),
        extra: [
            ("plugin:big".to_owned(), state.clone()),
            ("plugin:none".to_owned(), Vec::new()),
        ]
        .into(),
    };
    let path = dir.path().join("state").join("pipeline.checkpoint");
    fs::create_dir(path.parent().unwrap()).unwrap();
    let written = cp.save_sized(&path).unwrap();
    let on_disk = fs::metadata(&path).unwrap().len();
    assert_eq!(written, on_disk, "the size returned is the size written");
    assert_eq!(written, cp.encoded_len());
    assert!(
        on_disk < state.len() as u64 + 4096,
        "the 15 MiB state is stored raw: {on_disk} bytes"
    );
    assert_eq!(CHECKPOINT_VERSION, 2);
    let loaded = Checkpoint::load(&path).unwrap().expect("saved");
    assert_eq!(loaded, cp);
    let tmp = path.with_file_name("pipeline.checkpoint.tmp");
    assert!(!tmp.exists(), "no temporary file left behind");
}

#[test]
fn version_1_json_checkpoint_still_loads_and_migrates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pipeline.json");
    // As written by a host before the binary format.
    fs::write(
        &path,
        r#"{
  "version": 1,
  "files": [
    { "file": { "dev": 2049, "ino": 1234, "fingerprint": "08000000000000ff" },
      "path": "/data/trades/a.csv", "offset": 4096 }
  ],
  "extra": { "plugin:csv": "0001feff" }
}"#,
    )
    .unwrap();
    let cp = Checkpoint::load(&path).unwrap().expect("loads");
    assert_eq!(cp.files.len(), 1);
    assert_eq!(cp.files[0].file, key(2049, 1234, "08000000000000ff"));
    assert_eq!(cp.files[0].offset, 4096);
    assert_eq!(cp.files[0].size, 0, "unknown in version 1");
    assert_eq!(cp.extra["plugin:csv"], vec![0, 1, 0xfe, 0xff]);
    cp.save(&path).unwrap();
    assert!(
        fs::read(&path).unwrap().starts_with(b"WMCP"),
        "saved as binary"
    );
    assert_eq!(Checkpoint::load(&path).unwrap(), Some(cp));
}

fn saved(dir: &std::path::Path) -> (std::path::PathBuf, Vec<u8>) {
    let path = dir.join("cp");
    let mut cp = Checkpoint::default();
    cp.extra
        .insert("plugin:x".into(), b"some state".repeat(100));
    cp.save(&path).unwrap();
    let bytes = fs::read(&path).unwrap();
    (path, bytes)
}

#[test]
fn a_corrupt_checksum_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut bytes) = saved(dir.path());
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    fs::write(&path, &bytes).unwrap();
    let err = Checkpoint::load(&path).unwrap_err();
    assert!(
        matches!(err, SourceError::CheckpointCorrupt { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("checksum mismatch"), "{msg}");
}

#[test]
fn a_truncated_checkpoint_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = saved(dir.path());
    for keep in [bytes.len() - 1, bytes.len() / 2, 19, 3, 0] {
        File::create(&path)
            .unwrap()
            .write_all(&bytes[..keep])
            .unwrap();
        let msg = Checkpoint::load(&path).unwrap_err().to_string();
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains("truncated"),
            "{keep} bytes: {msg}"
        );
    }
}

#[test]
fn an_unknown_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut bytes) = saved(dir.path());
    bytes[4] = 9;
    fs::write(&path, &bytes).unwrap();
    let msg = Checkpoint::load(&path).unwrap_err().to_string();
    assert!(msg.contains("unsupported version 9"), "{msg}");
    fs::write(&path, r#"{"version":7,"files":[]}"#).unwrap();
    let msg = Checkpoint::load(&path).unwrap_err().to_string();
    assert!(msg.contains("unsupported version 7"), "{msg}");
}
