//! `wasmeter tail`: a command-line subscriber. It subscribes over WebSocket (JSON),
//! keeps each topic's state, prints every update, and after a lost connection
//! reconnects with backoff and jitter and resumes with `since` (the last position
//! per topic); an update it cannot resume arrives as a `recovered: false` snapshot
//! that replaces the topic's state.

pub mod view;

use std::time::Duration;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;
use wasmeter_server::close::TOKEN_EXPIRED;

use self::view::{Views, line};

/// What to subscribe to and how to print it.
#[derive(Debug, Clone)]
pub struct TailOptions {
    /// Topics or patterns.
    pub topics: Vec<String>,
    /// The host's WebSocket URL (`ws://host:port/ws`).
    pub url: String,
    /// Print each received message as one JSON line instead of a readable line.
    pub json: bool,
    /// Only these fields (empty: all).
    pub fields: Vec<String>,
    /// A subscriber token, sent as `Authorization: Bearer`.
    pub token: Option<String>,
}

/// The host refused this subscriber (its token, or what it asked for):
/// reconnecting would only repeat it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

/// First reconnect delay; it doubles per failed attempt up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest reconnect delay.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How a connection ended.
enum Ended {
    /// `stop` was cancelled.
    Stopped,
    /// The server closed or the connection broke; `received` says whether any data came.
    Lost { received: bool },
}

/// Runs until `stop` is cancelled, reconnecting as needed.
pub async fn tail(options: TailOptions, stop: CancellationToken) -> anyhow::Result<()> {
    let url = with_json_format(&options.url);
    let mut views = Views::default();
    let mut out = stdout()?;
    let mut attempt: u32 = 0;
    loop {
        match session(&options, &url, &mut views, &mut out, &stop).await {
            Ok(Ended::Stopped) => return Ok(()),
            Ok(Ended::Lost { received }) => {
                if received {
                    attempt = 0;
                }
                eprintln!("wasmeter tail: connection to {url} lost; reconnecting");
            }
            Err(error) if error.is::<Refused>() => return Err(error),
            Err(error) => eprintln!("wasmeter tail: {error:#}; retrying"),
        }
        let delay = backoff(attempt);
        attempt = attempt.saturating_add(1);
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// One connection: subscribe (resuming what `views` holds), then print until it ends.
async fn session(
    options: &TailOptions,
    url: &str,
    views: &mut Views,
    out: &mut tokio::fs::File,
    stop: &CancellationToken,
) -> anyhow::Result<Ended> {
    let mut request = url
        .into_client_request()
        .with_context(|| format!("not a WebSocket URL: {url}"))?;
    if let Some(token) = &options.token {
        let value = format!("Bearer {token}")
            .parse()
            .context("the token is not a valid header value")?;
        request.headers_mut().insert("authorization", value);
    }
    let (mut ws, _) = tokio::select! {
        _ = stop.cancelled() => return Ok(Ended::Stopped),
        r = tokio_tungstenite::connect_async(request) => match r {
            Ok(connected) => connected,
            Err(WsError::Http(response)) if matches!(response.status().as_u16(), 401 | 403) => {
                let body = response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default();
                return Err(Refused(format!(
                    "{url} refused the connection ({}): {body}",
                    response.status()
                )).into());
            }
            Err(e) => return Err(e).with_context(|| format!("cannot connect to {url}")),
        },
    };
    let mut subscribe = json!({"type": "subscribe", "id": 1, "topics": options.topics});
    if !options.fields.is_empty() {
        subscribe["fields"] = json!(options.fields);
    }
    let since = views.since();
    if !since.is_empty() {
        subscribe["since"] = Value::Object(since);
    }
    ws.send(Message::Text(subscribe.to_string().into())).await?;
    let mut received = false;
    loop {
        let frame = tokio::select! {
            _ = stop.cancelled() => {
                let _ = ws.close(None).await;
                return Ok(Ended::Stopped);
            }
            frame = ws.next() => frame,
        };
        let text = match frame {
            Some(Ok(Message::Close(Some(close)))) if u16::from(close.code) == TOKEN_EXPIRED => {
                return Err(Refused(format!(
                    "the host closed the connection: {} (start again with a fresh --token)",
                    close.reason
                ))
                .into());
            }
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => {
                return Ok(Ended::Lost { received });
            }
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
        };
        let Ok(msg) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        match msg["type"].as_str() {
            Some("ping") => {
                ws.send(Message::Text(json!({"type": "pong"}).to_string().into()))
                    .await?;
                continue;
            }
            Some("error") => {
                eprintln!("wasmeter tail: server error: {}", msg["message"]);
                if msg["id"] == 1 {
                    return Err(Refused(format!("subscribe refused: {}", msg["message"])).into());
                }
                continue;
            }
            _ => {}
        }
        if !views.apply(&msg) {
            continue;
        }
        received = true;
        let mut printed = if options.json {
            text.to_string()
        } else {
            line(&msg).unwrap_or_default()
        };
        printed.push('\n');
        out.write_all(printed.as_bytes()).await?;
        out.flush().await?;
    }
}

/// Standard output as an async file: its writes run on tokio's blocking pool, so a
/// slow reader of our output never blocks the runtime.
fn stdout() -> anyhow::Result<tokio::fs::File> {
    use std::os::fd::AsFd;
    let fd = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .context("cannot open standard output")?;
    Ok(tokio::fs::File::from_std(std::fs::File::from(fd)))
}

/// `url` with `format=json` unless it names a format.
fn with_json_format(url: &str) -> String {
    if url.contains("format=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&format=json")
    } else {
        format!("{url}?format=json")
    }
}

/// Exponential backoff with jitter: half the step fixed, half random.
fn backoff(attempt: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let step = FIRST_BACKOFF
        .saturating_mul(1 << attempt.min(16))
        .min(MAX_BACKOFF);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    let jitter = (h.finish() % 1000) as f64 / 1000.0;
    step / 2 + step.mul_f64(jitter / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(0) <= FIRST_BACKOFF && backoff(0) >= FIRST_BACKOFF / 2);
        assert!(backoff(30) <= MAX_BACKOFF && backoff(30) >= MAX_BACKOFF / 2);
        assert_eq!(with_json_format("ws://h/ws"), "ws://h/ws?format=json");
        assert_eq!(
            with_json_format("ws://h/ws?a=1"),
            "ws://h/ws?a=1&format=json"
        );
    }
}
