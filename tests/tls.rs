//! TLS through the real binary: `[server.tls]` serves HTTPS with the configured
//! certificate and says so in its announcement; SIGHUP switches new connections
//! to a renewed certificate without a restart; a key that cannot be used fails
//! the start, naming it.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use support::{Host, WAIT, csv_config, run_wasmeter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn make_cert(dir: &Path, name: &str) -> CertificateDer<'static> {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), signing_key.serialize_pem()).unwrap();
    cert.der().clone()
}

fn install(dir: &Path, name: &str) {
    for ext in ["crt", "key"] {
        let from = dir.join(format!("{name}.{ext}"));
        std::fs::copy(from, dir.join(format!("server.{ext}"))).unwrap();
    }
}

/// GET `path` over TLS trusting `roots`: the certificate presented and the status.
async fn https_get(
    addr: &str,
    roots: &[CertificateDer<'static>],
    path: &str,
) -> (CertificateDer<'static>, u16) {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .expect("TLS handshake");
    let presented = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    tls.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(WAIT, tls.read_to_end(&mut raw)).await;
    let status = String::from_utf8_lossy(&raw[9..12]).parse().unwrap();
    (presented, status)
}

fn tls_config() -> String {
    csv_config(
        r#"
[server.tls]
cert_file = "server.crt"
key_file = "server.key"
"#,
    )
}

#[tokio::test]
async fn https_with_the_configured_certificate_renewed_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let first = make_cert(dir.path(), "first");
    let second = make_cert(dir.path(), "second");
    install(dir.path(), "first");
    let host = Host::start(dir.path(), &tls_config());
    let roots = [first.clone(), second.clone()];
    assert_eq!(https_get(&host.addr, &roots, "/readyz").await, (first, 200));

    install(dir.path(), "second");
    host.signal(libc::SIGHUP);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (presented, status) = https_get(&host.addr, &roots, "/healthz").await;
        assert_eq!(status, 200);
        if presented == second {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "SIGHUP did not renew the certificate"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = host.stop();
    assert!(log.contains("TLS certificate reloaded"), "{log}");
}

#[test]
fn a_certificate_that_cannot_be_used_fails_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    make_cert(dir.path(), "server");
    std::fs::write(dir.path().join("server.key"), "not a key").unwrap();
    let config = dir.path().join("wasmeter.toml");
    std::fs::write(&config, tls_config()).unwrap();
    let (ok, out) = run_wasmeter(&["check-config".into(), config.into()]);
    assert!(!ok);
    assert!(
        out.contains("server.tls") && out.contains("server.key"),
        "{out}"
    );
}

/// `wasmeter ARGS` (no admin token from the environment): success and output.
fn wasmeter(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmeter"))
        .args(args)
        .env_remove("WASMETER_ADMIN_TOKEN")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn the_admin_api_over_https_with_the_commands_that_reach_it() {
    let dir = tempfile::tempdir().unwrap();
    let admin_cert = make_cert(dir.path(), "admin");
    make_cert(dir.path(), "other");
    let host = Host::start(
        dir.path(),
        &csv_config(
            r#"
[admin.tls]
cert_file = "admin.crt"
key_file = "admin.key"
"#,
        ),
    );
    let admin = host.admin.clone().expect("admin API");
    // The announced command works as printed (the config names the certificate).
    let hint = host.admin_hint.clone().expect("an admin hint");
    assert!(hint.contains(&format!("--admin https://{admin}")), "{hint}");
    let words: Vec<&str> = hint.split_whitespace().collect();
    let (ok, out) = wasmeter(&words[1..]);
    assert!(ok && out.starts_with("NAME"), "`{hint}`: {out}");
    // Without the config: --ca-file names what to trust.
    let token_file = host.token_file.clone().unwrap();
    let token_file = token_file.to_str().unwrap();
    let https = format!("https://{admin}");
    let list = |url: &str, ca: Option<&str>| {
        let mut args = vec!["plugin", "list", "--admin", url, "--token-file", token_file];
        args.extend(ca.map(|ca| ["--ca-file", ca]).into_iter().flatten());
        wasmeter(&args)
    };
    let ca = dir.path().join("admin.crt");
    let (ok, out) = list(&https, ca.to_str());
    assert!(ok && out.starts_with("NAME"), "{out}");
    // Trusting another certificate: refused by the client, naming TLS.
    let other = dir.path().join("other.crt");
    let (ok, out) = list(&https, other.to_str());
    assert!(!ok && out.contains("TLS"), "{out}");
    // No certificate to trust at all: told what to give.
    let (ok, out) = list(&https, None);
    assert!(!ok && out.contains("--ca-file"), "{out}");
    // Plain HTTP to the TLS port gets no answer from the API.
    let (ok, _) = list(&format!("http://{admin}"), None);
    assert!(!ok);
    // The API itself over HTTPS, as any client would reach it.
    let (presented, status) =
        https_get(&admin, std::slice::from_ref(&admin_cert), "/v1/plugins").await;
    assert_eq!(
        (presented, status),
        (admin_cert, 401),
        "no token: refused, over TLS"
    );
    host.stop();
}
