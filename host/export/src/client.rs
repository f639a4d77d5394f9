//! One HTTP POST and what its outcome means for the data: sent, worth another
//! try (the server is down, overloaded or failing), or refused for good (the
//! server says the request itself is wrong: retrying it would block the rest).

use std::time::Duration;

/// How a POST ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx.
    Sent,
    /// Connection errors, timeouts, 5xx, 429 and 408: the same body again later.
    Retry(String),
    /// Any other status: the body is given up (and counted).
    Refused(String),
}

/// A blocking HTTP client for one URL.
pub struct Client {
    agent: ureq::Agent,
    url: String,
    headers: Vec<(String, String)>,
}

impl Client {
    /// A client posting to `url` with `headers`, each request bounded by `timeout`.
    pub fn new(url: &str, headers: Vec<(String, String)>, timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("wasmeter/", env!("CARGO_PKG_VERSION")))
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .unversioned_rustls_crypto_provider(std::sync::Arc::new(
                        rustls::crypto::aws_lc_rs::default_provider(),
                    ))
                    .build(),
            )
            .build();
        Self {
            agent: ureq::Agent::new_with_config(config),
            url: url.to_string(),
            headers,
        }
    }

    /// Posts `body`.
    pub fn post(&self, body: &[u8]) -> Outcome {
        let mut request = self.agent.post(&self.url);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        match request.send(body) {
            Ok(mut response) => {
                let status = response.status().as_u16();
                if (200..300).contains(&status) {
                    return Outcome::Sent;
                }
                let text = response
                    .body_mut()
                    .with_config()
                    .limit(4096)
                    .read_to_string()
                    .unwrap_or_default();
                let why = format!("HTTP {status}: {}", text.trim());
                match status {
                    408 | 429 | 500..=599 => Outcome::Retry(why),
                    _ => Outcome::Refused(why),
                }
            }
            Err(error) => Outcome::Retry(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::sync::Arc;

    use super::*;

    /// An HTTPS output speaks TLS with the workspace's provider and checks the
    /// server's certificate against the public roots: a self-signed one is a
    /// certificate error, retried, not a plain-text exchange or a crash.
    #[test]
    fn https_outputs_verify_the_server_certificate() {
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            // The handshake fails on the client's side: the read ends with an error
            // or nothing; a plain-text client would have sent a request line.
            let mut buf = [0u8; 64];
            let read = tls.read(&mut buf);
            let _ = tls.write_all(b"HTTP/1.1 204 No Content\r\n\r\n");
            read.map(|n| buf[..n].to_vec())
        });
        let client = Client::new(
            &format!("https://{addr}/write"),
            Vec::new(),
            Duration::from_secs(10),
        );
        match client.post(b"x") {
            Outcome::Retry(why) => assert!(
                why.to_lowercase().contains("certificate") || why.contains("UnknownIssuer"),
                "{why}"
            ),
            other => panic!("a self-signed server was not refused: {other:?}"),
        }
        let got = server.join().unwrap();
        assert!(!matches!(&got, Ok(b) if b.starts_with(b"POST")), "{got:?}");
    }
}
