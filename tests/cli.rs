//! The command line as a user meets it: bad configs and bad plugins are refused
//! with messages that say what is wrong and where.

use std::process::Command;

fn wasmeter(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wasmeter"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_config_names_the_file_the_key_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[plugins.csv]\nbuiltin = \"csv-collector\"\n\n[sources.t]\ntype = \"file\"\ninclude = [\"*.csv\"]\n\n[pipelines.p]\nsources = [\"t\"]\ncollector = \"cvs\"\n",
    )
    .unwrap();
    let (ok, _, stderr) = wasmeter(&["serve", "--config", path.to_str().unwrap()]);
    assert!(!ok);
    let expected = format!(
        "{}: pipelines.p.collector: no plugin named `cvs` (defined: `csv`)",
        path.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");

    std::fs::write(&path, "[server]\nlisten = 8080\n").unwrap();
    let (ok, _, stderr) = wasmeter(&["serve", "--config", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("line 2") && stderr.contains("listen"),
        "{stderr}"
    );
}

#[test]
fn a_plugin_of_the_wrong_kind_is_refused_when_the_pipeline_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wasmeter.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[plugins.d]\nbuiltin = \"field-delta\"\n[sources.t]\ntype = \"file\"\ninclude = [\"*.csv\"]\n[pipelines.p]\nsources = [\"t\"]\ncollector = \"d\"\n",
    )
    .unwrap();
    let (ok, _, stderr) = wasmeter(&["serve", "--config", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("pipelines.p.collector: plugin `d` is a delta plugin, not a collector"),
        "{stderr}"
    );
}

#[test]
fn check_plugin_describes_good_components_and_explains_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("csv.wasm");
    std::fs::write(
        &good,
        wasmeter::defaults::builtin("csv-collector").unwrap().bytes,
    )
    .unwrap();
    let corrupt = dir.path().join("corrupt.wasm");
    std::fs::write(&corrupt, b"\0asm\x01\0\0\0").unwrap();
    let (ok, stdout, stderr) = wasmeter(&[
        "check-plugin",
        good.to_str().unwrap(),
        corrupt.to_str().unwrap(),
    ]);
    assert!(!ok, "one plugin is refused");
    assert!(stdout.contains("csv.wasm: ok: csv-collector"), "{stdout}");
    assert!(
        stdout.contains("(collector plugin, stateful, contract 0.4.0)"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("corrupt.wasm: not a WebAssembly component: it is a core WebAssembly module"),
        "{stdout}"
    );
    assert!(stderr.contains("1 of 2 plugins refused"), "{stderr}");
}

#[test]
fn the_example_config_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/trades.toml");
    let config = wasmeter::config::Config::load(&path).unwrap();
    assert_eq!(config.pipelines.len(), 3);
}

#[test]
fn a_missing_config_file_says_so_once() {
    let (ok, _, stderr) = wasmeter(&["serve", "--config", "/nonexistent/wasmeter.toml"]);
    assert!(!ok);
    assert!(
        stderr.contains("cannot read config /nonexistent/wasmeter.toml"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn a_taken_port_fails_the_start_before_any_pipeline_runs() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    for (listen_flag, key) in [
        ("--listen", "server.listen"),
        ("--admin-listen", "admin.listen"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("feed")).unwrap();
        std::fs::write(dir.path().join("feed/t.csv"), "BTC,100,1,1\n").unwrap();
        let config = dir.path().join("wasmeter.toml");
        std::fs::write(
            &config,
            "data_dir = \"data\"\n[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
             [plugins.csv]\nbuiltin = \"csv-collector\"\n[sources.t]\ntype = \"file\"\n\
             include = [\"feed/*.csv\"]\n[pipelines.trades]\nsources = [\"t\"]\ncollector = \"csv\"\n",
        )
        .unwrap();
        let addr = format!("127.0.0.1:{port}");
        let (ok, _, stderr) = wasmeter(&[
            "serve",
            "--config",
            config.to_str().unwrap(),
            listen_flag,
            &addr,
        ]);
        assert!(!ok, "{listen_flag}: started on a taken port");
        assert!(
            stderr.contains(&format!("{key}: cannot listen on {addr}")),
            "{listen_flag}: {stderr}"
        );
        // No pipeline ran: none started, nothing was checkpointed.
        assert!(
            !stderr.contains("pipeline started"),
            "{listen_flag}: {stderr}"
        );
        let checkpoint = dir.path().join("data/checkpoints/trades.checkpoint");
        assert!(!checkpoint.exists(), "{listen_flag}: a pipeline ran");
    }
}

#[test]
fn check_config_loads_and_starts_every_plugin_without_serving() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"
[plugins.csv]
builtin = "csv-collector"
config = { tape_prefix = "tape" }

[sources.t]
type = "file"
include = ["feed/*.csv"]

[pipelines.trades]
sources = ["t"]
collector = "csv"
topics = ["trades", "tape"]
"#;
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let path = write("good.toml", good);
    let (ok, stdout, stderr) = wasmeter(&["check-config", &path]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("good.toml: ok: 1 plugins, 1 sources, 1 pipelines"),
        "{stdout}"
    );
    // Nothing written: no data directory next to the file.
    assert!(!dir.path().join("data").exists());
    // A plugin refusing its config (only its init knows) fails the check, in its words.
    let path = write(
        "plugin.toml",
        &good.replace("tape_prefix = \"tape\"", "tape_prefix = \"a b\""),
    );
    let (ok, _, stderr) = wasmeter(&["check-config", &path]);
    assert!(!ok);
    assert!(
        stderr.contains("pipelines.trades.collector: collector `csv`")
            && stderr.contains("config `tape_prefix`: `a b` is not a valid topic"),
        "{stderr}"
    );
    // A wrong value names its key.
    let path = write(
        "key.toml",
        &good.replace("type = \"file\"", "type = \"file\"\nstart_at = 3"),
    );
    let (ok, _, stderr) = wasmeter(&["check-config", &path]);
    assert!(!ok);
    assert!(
        stderr.contains("sources.t: start_at: invalid type: integer `3`"),
        "{stderr}"
    );
}
