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
#[derive(Debug, Clone)]
pub struct AdminClient {
    /// `host:port`.
    pub authority: String,
    /// The bearer token.
    pub token: String,
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
    pub fn locate(
        url: Option<&str>,
        token: Option<String>,
        token_file: Option<&Path>,
        config: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let config = config.map(crate::config::Config::load).transpose()?;
        let authority = match (url, &config) {
            (Some(url), _) => url
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string(),
            (None, Some(c)) => c.admin.listen.to_string(),
            (None, None) => crate::config::AdminSection::default().listen.to_string(),
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
        Ok(Self { authority, token })
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
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        let driver = tokio::spawn(connection);
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
        let response = sender.send_request(request.body(Full::new(bytes))?).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        driver.abort();
        let _ = driver.await;
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

/// The demo's generated token file.
pub(crate) fn default_token_file() -> PathBuf {
    crate::datadir::default_demo_dir().join(TOKEN_FILE)
}
