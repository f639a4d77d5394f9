//! Loading: world and version checks, corrupt files, the compile cache.

use std::os::unix::fs::PermissionsExt;

use wasmeter_core::plugin::PluginKind;
use wasmeter_plugin::{
    CacheOutcome, CollectorWorld, LoadError, MetricWorld, Runtime, RuntimeConfig,
};

use crate::support::{component, runtime};

#[tokio::test]
async fn wrong_world_is_refused_naming_both_interfaces() {
    let err = runtime()
        .load::<CollectorWorld>(component("field_delta"))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, LoadError::WrongInterface { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("field_delta.wasm"), "names the file: {msg}");
    assert!(
        msg.contains("`wasmeter:plugin/collect@0.4.0`"),
        "names the expected interface: {msg}"
    );
    assert!(
        msg.contains("`wasmeter:plugin/diff@0.4.0`"),
        "names the found interface: {msg}"
    );
}

#[tokio::test]
async fn other_contract_version_is_refused() {
    let err = runtime()
        .load::<CollectorWorld>(component("wrong_version"))
        .await
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(msg.contains("`wasmeter:plugin/collect@0.4.0`"), "{msg}");
    assert!(msg.contains("`wasmeter:plugin/collect@0.9.0`"), "{msg}");
    assert!(msg.contains("another version of the contract"), "{msg}");
}

#[tokio::test]
async fn corrupt_and_non_component_files_are_refused() {
    let rt = runtime();
    let cases: [(&[u8], &str); 4] = [
        (b"", "the file is empty"),
        (b"#!/bin/sh\necho hi\n", "no WebAssembly magic number"),
        (b"\0asm\x01\0\0\0", "core WebAssembly module"),
        (b"\0asm\x0d\0\x01\0\x07\x07garbage", "cannot compile"),
    ];
    for (bytes, expected) in cases {
        let err = rt
            .load_bytes(bytes.to_vec(), "upload".into(), None)
            .await
            .err()
            .unwrap();
        let msg = err.to_string();
        assert!(msg.starts_with("upload: "), "{msg}");
        assert!(msg.contains(expected), "{msg}");
    }
    // A truncated real component.
    let mut bytes = std::fs::read(component("csv_collector")).unwrap();
    bytes.truncate(bytes.len() / 2);
    let err = rt
        .load_bytes(bytes, "half.wasm".into(), None)
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string().starts_with("half.wasm: cannot compile"),
        "{err}"
    );

    let missing = rt
        .load::<CollectorWorld>("/nonexistent/x.wasm")
        .await
        .err()
        .unwrap();
    assert!(
        missing
            .to_string()
            .starts_with("cannot read plugin /nonexistent/x.wasm"),
        "{missing}"
    );
}

#[tokio::test]
async fn load_any_detects_the_kind_and_describes_it() {
    for (name, kind) in [
        ("csv_collector", PluginKind::Collector),
        ("field_delta", PluginKind::Delta),
        ("ewma", PluginKind::Metric),
    ] {
        let loaded = runtime().load_any(component(name)).await.unwrap();
        let info = &loaded.meta().info;
        assert_eq!(info.kind, kind, "{name}");
        assert_eq!(info.name, name.replace('_', "-"));
        assert!(!info.version.is_empty());
        assert!(!info.description.is_empty());
    }
    assert!(matches!(
        runtime()
            .load::<MetricWorld>(component("csv_collector"))
            .await,
        Err(LoadError::WrongInterface { .. })
    ));
}

#[tokio::test]
async fn compiled_artifacts_are_cached_on_disk_and_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let config = || RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        max_instances: 8,
        ..RuntimeConfig::default()
    };
    let first = Runtime::new(config()).unwrap();
    let loaded = first
        .load::<CollectorWorld>(component("csv_collector"))
        .await
        .unwrap();
    assert_eq!(loaded.meta().cache, CacheOutcome::Compiled);
    let again = first
        .load::<CollectorWorld>(component("csv_collector"))
        .await
        .unwrap();
    assert_eq!(again.meta().cache, CacheOutcome::Memory);
    let artifacts: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    assert!(
        artifacts[0]
            .to_string_lossy()
            .starts_with(&loaded.meta().hash_hex())
    );
    drop(first);

    // A new process (here: a new engine) loads the artifact instead of compiling.
    let second = Runtime::new(config()).unwrap();
    let cached = second
        .load::<CollectorWorld>(component("csv_collector"))
        .await
        .unwrap();
    assert_eq!(cached.meta().cache, CacheOutcome::Disk);
    let mut csv = cached.instantiate("csv", vec![]).await.unwrap();
    assert_eq!(
        csv.collect("t", b"BTC,1,1,1\n")
            .await
            .unwrap()
            .updates
            .len(),
        1
    );

    // A corrupt artifact is ignored and replaced, not trusted.
    let path = dir.path().join(&artifacts[0]);
    std::fs::write(&path, b"garbage").unwrap();
    let third = Runtime::new(config()).unwrap();
    let recompiled = third
        .load::<CollectorWorld>(component("csv_collector"))
        .await
        .unwrap();
    assert_eq!(recompiled.meta().cache, CacheOutcome::Compiled);
}

/// Compiles the CSV collector into a fresh cache at `dir` and returns the artifact.
async fn cached_artifact(dir: &std::path::Path) -> std::path::PathBuf {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.to_path_buf()),
        max_instances: 8,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let loaded = runtime
        .load::<CollectorWorld>(component("csv_collector"))
        .await
        .unwrap();
    assert_eq!(loaded.meta().cache, CacheOutcome::Compiled);
    let artifact = std::fs::read_dir(dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mode = std::fs::metadata(&artifact).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "artifacts are private");
    artifact
}

/// Loads the CSV collector through a new runtime caching in `dir`.
async fn load_through(dir: &std::path::Path) -> (Runtime, CacheOutcome) {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.to_path_buf()),
        max_instances: 8,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let loaded = runtime
        .load::<CollectorWorld>(component("csv_collector"))
        .await
        .unwrap();
    let outcome = loaded.meta().cache;
    (runtime, outcome)
}

#[tokio::test]
async fn a_cache_dir_others_can_write_is_never_loaded_from() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let artifact = cached_artifact(&dir).await;
    assert_eq!(
        load_through(&dir).await.1,
        CacheOutcome::Disk,
        "a 0700 dir works"
    );

    // Writable by anyone: someone else could have planted the artifact. The valid
    // artifact is there, and yet it is not deserialised: memory-only caching.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (runtime, outcome) = load_through(&dir).await;
    assert_eq!(runtime.cache_dir(), None, "the disk cache is off");
    assert_eq!(outcome, CacheOutcome::Compiled);
    drop(runtime);

    // An artifact others can write, in a private dir: ignored and replaced.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&artifact, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (runtime, outcome) = load_through(&dir).await;
    assert_eq!(runtime.cache_dir(), Some(dir.as_path()));
    assert_eq!(outcome, CacheOutcome::Compiled);
    let mode = std::fs::metadata(&artifact).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "replaced by a private artifact");
    assert_eq!(load_through(&dir).await.1, CacheOutcome::Disk);

    // A symlink to a private cache dir is refused too.
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&dir, &link).unwrap();
    let (runtime, outcome) = load_through(&link).await;
    assert_eq!(runtime.cache_dir(), None);
    assert_eq!(outcome, CacheOutcome::Compiled);
}

#[tokio::test]
async fn the_runtime_creates_its_cache_dir_private() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data/cache");
    let (runtime, _) = load_through(&dir).await;
    assert_eq!(runtime.cache_dir(), Some(dir.as_path()));
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}
