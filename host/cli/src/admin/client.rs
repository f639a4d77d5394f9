//! The admin API from the command line: one HTTP/1.1 request per command.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::auth::{TOKEN_ENV, TOKEN_FILE};

/// Longest wait for an answer (a swap compiles the component first).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the admin API is and how to authenticate.
#[derive(Clone)]
pub struct AdminClient {
    /// `host:port`.
    pub authority: String,
    /// The bearer token.
    pub token: String,
    /// HTTPS: the connector trusting the API's certificate, and the name to check.
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient")
            .field("authority", &self.authority)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// A connector trusting the PEM certificates in `ca_file` (the API's own
/// certificate, or the CA that issued it), for `authority`'s host.
fn tls_connector(
    authority: &str,
    ca_file: &Path,
) -> anyhow::Result<(
    tokio_rustls::TlsConnector,
    rustls::pki_types::ServerName<'static>,
)> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file)
        .with_context(|| format!("cannot read certificates from {}", ca_file.display()))?;
    for cert in certs {
        let cert = cert.with_context(|| format!("{}: not a PEM certificate", ca_file.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("{}: a certificate cannot be trusted", ca_file.display()))?;
    }
    if roots.is_empty() {
        bail!("{} holds no PEM certificate", ca_file.display());
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let host = match authority.rsplit_once(':') {
        Some((host, _port)) => host.trim_start_matches('[').trim_end_matches(']'),
        None => authority,
    };
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .with_context(|| format!("`{host}` is not a host name or address"))?;
    Ok((
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)),
        name,
    ))
}

/// What a request sends.
pub enum Body {
    /// Nothing.
    Empty,
    /// A JSON value.
    Json(Value),
    /// A component, with options in the query string.
    Wasm(Vec<u8>),
}

impl AdminClient {
    /// Finds the API and the token: `--admin`, then `admin.listen` of `--config`;
    /// the token from `--token`, `WASMETER_ADMIN_TOKEN`, `--token-file`, the
    /// config's `admin.token`/`admin.token_file`, or the host's generated token
    /// file in the data directory (the demo's by default).
    ///
    /// `https://` (or a config with `[admin.tls]`) speaks TLS, trusting `ca_file`,
    /// else the config's `admin.tls.cert_file`.
    pub fn locate(
        url: Option<&str>,
        token: Option<String>,
        token_file: Option<&Path>,
        config: Option<&Path>,
        ca_file: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let config = config.map(crate::config::Config::load).transpose()?;
        let configured_tls = config
            .as_ref()
            .and_then(|c| c.admin.tls.as_ref().map(|t| c.resolve(&t.cert_file)));
        let (authority, https) = match (url, &config) {
            (Some(url), _) => match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
                (Some(rest), _) => (rest.trim_end_matches('/').to_string(), true),
                (None, Some(rest)) => (rest.trim_end_matches('/').to_string(), false),
                // A bare address: TLS when the config says so.
                (None, None) => (
                    url.trim_end_matches('/').to_string(),
                    configured_tls.is_some(),
                ),
            },
            (None, Some(c)) => (c.admin.listen.to_string(), c.admin.tls.is_some()),
            (None, None) => (
                crate::config::AdminSection::default().listen.to_string(),
                false,
            ),
        };
        let tls = match (https, ca_file.map(Path::to_path_buf).or(configured_tls)) {
            (false, _) => None,
            (true, Some(ca)) => Some(tls_connector(&authority, &ca)?),
            (true, None) => bail!(
                "https://{authority}: give --ca-file (the API's certificate or its CA), or --config with [admin.tls]"
            ),
        };
        let read = |file: &Path| {
            std::fs::read_to_string(file)
                .map(|t| t.trim().to_string())
                .with_context(|| format!("cannot read the admin token from {}", file.display()))
        };
        let token = if let Some(token) = token {
            token
        } else if let Ok(token) = std::env::var(TOKEN_ENV) {
            token
        } else if let Some(file) = token_file {
            read(file)?
        } else if let Some(c) = &config {
            match (&c.admin.token, &c.admin.token_file) {
                (Some(token), _) => token.clone(),
                (None, Some(file)) => read(&c.resolve(file))?,
                (None, None) => read(&c.resolve(&c.data_dir).join(TOKEN_FILE))?,
            }
        } else {
            read(&default_token_file()).context(
                "give --token, --token-file, --config or WASMETER_ADMIN_TOKEN for a host not run as the demo",
            )?
        };
        Ok(Self {
            authority,
            token,
            tls,
        })
    }

    /// Sends a request; returns the JSON answer, or an error quoting the host's message.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Body,
    ) -> anyhow::Result<T> {
        let value = tokio::time::timeout(REQUEST_TIMEOUT, self.send(method, path_and_query, body))
            .await
            .with_context(|| {
                format!(
                    "no answer from the admin API at {} within {REQUEST_TIMEOUT:?}",
                    self.authority
                )
            })??;
        serde_json::from_value(value).context("unexpected answer from the admin API")
    }

    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Body,
    ) -> anyhow::Result<Value> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .with_context(|| {
                format!(
                    "cannot reach the admin API at {} (is the host running?)",
                    self.authority
                )
            })?;
        let (content_type, bytes) = match body {
            Body::Empty => (None, Bytes::new()),
            Body::Json(v) => (
                Some("application/json"),
                Bytes::from(serde_json::to_vec(&v)?),
            ),
            Body::Wasm(b) => (Some(super::routes::WASM_MEDIA_TYPE), Bytes::from(b)),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(header::HOST, &self.authority)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        if let Some(ct) = content_type {
            request = request.header(header::CONTENT_TYPE, ct);
        }
        let request = request.body(Full::new(bytes))?;
        let (status, body) = match &self.tls {
            None => exchange(stream, request).await?,
            Some((connector, name)) => {
                let stream = connector
                    .connect(name.clone(), stream)
                    .await
                    .with_context(|| format!("TLS with the admin API at {}", self.authority))?;
                exchange(stream, request).await?
            }
        };
        let value: Value = serde_json::from_slice(&body).unwrap_or_else(
            |_| serde_json::json!({ "error": { "message": String::from_utf8_lossy(&body) } }),
        );
        if status.is_success() {
            return Ok(value);
        }
        let message = value["error"]["message"]
            .as_str()
            .unwrap_or("no message")
            .to_string();
        match status {
            StatusCode::UNAUTHORIZED => bail!(
                "the admin API refused the token: {message} (check --token, --token-file or {TOKEN_ENV})"
            ),
            _ => bail!("{message}"),
        }
    }
}

/// One request over `io`: the status and the whole body.
async fn exchange<IO>(io: IO, request: Request<Full<Bytes>>) -> anyhow::Result<(StatusCode, Bytes)>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io)).await?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await;
    let result = match response {
        Ok(response) => {
            let status = response.status();
            let body = response.into_body().collect().await.map(|b| b.to_bytes());
            body.map(|b| (status, b)).map_err(anyhow::Error::from)
        }
        Err(e) => Err(e.into()),
    };
    driver.abort();
    let _ = driver.await;
    result
}

/// The demo's generated token file.
pub(crate) fn default_token_file() -> PathBuf {
    crate::datadir::default_demo_dir().join(TOKEN_FILE)
}
