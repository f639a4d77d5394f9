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
