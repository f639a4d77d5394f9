//! Where the Redis server is and how the broker uses it.

use std::time::Duration;

use crate::error::BrokerError;

/// How to reach Redis and how much of each topic it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// The server, e.g. `redis://127.0.0.1:6379/0`.
    pub url: String,
    /// Every key and the change channel start with it (default `wasmeter:`), so
    /// several deployments can share one Redis database.
    pub key_prefix: String,
    /// Bound of every connect (the command connection and the follower's PUB/SUB one).
    pub connect_timeout: Duration,
    /// Bound of every command or pipelined round trip.
    pub command_timeout: Duration,
    /// Messages kept per state topic in its history stream (`XADD MAXLEN`), at least 1.
    pub history_len: usize,
    /// Messages kept per stream (event) topic, at least 1.
    pub stream_history_len: usize,
    /// A topic's keys expire when it is not published for this long.
    pub topic_ttl: Duration,
    /// How often a follower compares its replica's positions with Redis's heads.
    pub check_interval: Duration,
    /// Cap of the follower's reconnect backoff (it starts at 50 ms and doubles, with jitter).
    pub reconnect_max: Duration,
    /// Frames a follower buffers between its PUB/SUB connection and the replica.
    /// Beyond it frames are dropped, counted, and a full position check repairs
    /// what they carried.
    pub follower_buffer: usize,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379/0".into(),
            key_prefix: "wasmeter:".into(),
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(2),
            history_len: 1000,
            stream_history_len: 10_000,
            topic_ttl: Duration::from_secs(24 * 3600),
            check_interval: Duration::from_secs(5),
            reconnect_max: Duration::from_secs(5),
            follower_buffer: 4096,
        }
    }
}

impl RedisConfig {
    /// Checks every value; the error names the key (`broker.history_len`) and why.
    pub fn validate(&self) -> Result<(), BrokerError> {
        let bad = |key: &str, reason: &str| {
            Err(BrokerError::Config {
                key: format!("broker.{key}"),
                reason: reason.into(),
            })
        };
        if !(self.url.starts_with("redis://") || self.url.starts_with("redis+unix://")) {
            return bad("url", "must start with redis:// or redis+unix://");
        }
        if redis::Client::open(self.url.as_str()).is_err() {
            return bad("url", "is not a valid Redis URL");
        }
        if self.key_prefix.is_empty() {
            return bad("key_prefix", "must not be empty");
        }
        for (key, d) in [
            ("connect_timeout", self.connect_timeout),
            ("command_timeout", self.command_timeout),
            ("check_interval", self.check_interval),
            ("reconnect_max", self.reconnect_max),
        ] {
            if d.is_zero() {
                return bad(key, "must be greater than zero");
            }
        }
        if self.topic_ttl < Duration::from_secs(1) {
            return bad("topic_ttl", "must be at least 1s");
        }
        if self.history_len == 0 {
            return bad("history_len", "must be at least 1");
        }
        if self.follower_buffer == 0 {
            return bad("follower_buffer", "must be at least 1");
        }
        if self.stream_history_len == 0 {
            return bad("stream_history_len", "must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_key() {
        let cfg = RedisConfig {
            history_len: 0,
            ..RedisConfig::default()
        };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("broker.history_len"), "{err}");
        let cfg = RedisConfig {
            url: "http://x".into(),
            ..RedisConfig::default()
        };
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("broker.url")
        );
        let cfg = RedisConfig {
            command_timeout: Duration::ZERO,
            ..RedisConfig::default()
        };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("broker.command_timeout"), "{err}");
        RedisConfig::default().validate().unwrap();
    }
}
