//! Loading: world and version checks, corrupt files, the compile cache.

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
        msg.contains("`wasmeter:plugin/collect@0.1.0`"),
        "names the expected interface: {msg}"
    );
    assert!(
        msg.contains("`wasmeter:plugin/diff@0.1.0`"),
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
    assert!(msg.contains("`wasmeter:plugin/collect@0.1.0`"), "{msg}");
    assert!(msg.contains("`wasmeter:plugin/collect@0.2.0`"), "{msg}");
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
