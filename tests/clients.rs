//! The subscriber client libraries, each tested by its own language's runner
//! against the real `wasmeter` binary (passed as `WASMETER_BIN`):
//!
//! - `clients/js` (and the dashboard's formatting, `tests/browser/format.test.mjs`)
//!   under `node --test`: unit checks with a fake WebSocket, the TypeScript types
//!   (`tsc --noEmit`), and a JSON and a MessagePack client through a host restart.
//!   Needs `node` and `npm ci` in `clients/js`.
//! - `clients/python` under pytest: unit checks with a fake connection, snapshot +
//!   deltas equal REST in both formats, resume after a host restart and after a
//!   dropped connection. Needs the venv `scripts/test.sh` makes (it exports
//!   `WASMETER_PYTHON`), or `clients/python/.venv`.
//!
//! Without those tools the tests fail under CI (`CI` set) and are skipped, with the
//! reason, otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Fails under CI, else says why the test does not run; true when it may run.
fn can_run(what: &str, missing: Option<String>) -> bool {
    let Some(reason) = missing else { return true };
    assert!(
        !in_ci(),
        "{what} cannot run in CI: {reason}; scripts/test.sh installs what it needs"
    );
    eprintln!("SKIPPED {what}: {reason}");
    false
}

/// Runs `command` and fails with its whole output unless it succeeds.
fn run(what: &str, command: &mut Command) {
    let out = command
        .env("WASMETER_BIN", env!("CARGO_BIN_EXE_wasmeter"))
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{text}",
        out.status
    );
    eprintln!("{text}");
}

fn js_missing() -> Option<String> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Some("`node` is not installed".into());
    }
    let modules = root().join("clients/js/node_modules");
    for dep in ["ws", "typescript", "@msgpack/msgpack"] {
        if !modules.join(dep).exists() {
            return Some(format!(
                "the JS client's devDependency {dep} is not installed (run `npm ci` in clients/js)"
            ));
        }
    }
    None
}

#[test]
fn js_client_under_node_test() {
    if !can_run("the JS client's tests", js_missing()) {
        return;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("clients/js/test"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".test.mjs"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 4,
        "the JS client's tests are missing: {files:?}"
    );
    files.push(root().join("tests/browser/format.test.mjs"));
    run(
        "node --test",
        Command::new("node")
            .arg("--test")
            .args(&files)
            .current_dir(root().join("clients/js")),
    );
}

/// The venv's python: `WASMETER_PYTHON` (scripts/test.sh), else `clients/python/.venv`.
fn python() -> Result<PathBuf, String> {
    let python = std::env::var_os("WASMETER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("clients/python/.venv/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", "import pytest, websockets, msgpack"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Ok(python)
    } else {
        Err(format!(
            "no Python with pytest, websockets and msgpack at {} (scripts/test.sh makes the \
             venv and sets WASMETER_PYTHON)",
            python.display()
        ))
    }
}

#[test]
fn python_client_under_pytest() {
    let python = python();
    if !can_run("the Python client's tests", python.as_ref().err().cloned()) {
        return;
    }
    let dir = root().join("clients/python");
    run(
        "pytest",
        Command::new(python.unwrap())
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"])
            // This worktree's package, whatever the shared venv's editable install points at.
            .env("PYTHONPATH", dir.join("src"))
            .current_dir(&dir),
    );
}
