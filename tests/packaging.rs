//! The packaging files in `packaging/`: the systemd unit passes
//! `systemd-analyze verify` (when systemd's tools are here), pointing at the
//! binary just built.

use std::path::Path;

#[test]
fn the_systemd_unit_verifies() {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    if !analyze.exists() {
        eprintln!("systemd-analyze is not installed: the unit is not verified here");
        return;
    }
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/wasmeter.service"),
    )
    .unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/wasmeter serve --config"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wasmeter.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/wasmeter", env!("CARGO_BIN_EXE_wasmeter")),
    )
    .unwrap();
    let out = std::process::Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify:\n{said}"
    );
}
