//! `[broker]`: where topics are published. `memory` (the default): this host's
//! hub. `redis`: a Redis server several hosts share.

use std::time::Duration;

use serde::Deserialize;

use crate::config::{Config, ConfigError};

/// Which broker.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BrokerType {
    /// This host's hub: one host.
    #[default]
    Memory,
    /// A Redis server shared by several hosts.
    Redis,
}

/// `[broker]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerSection {
    /// `memory` or `redis`.
    #[serde(rename = "type")]
    pub kind: BrokerType,
    /// The Redis server (`redis://[user:password@]host:port/db`).
    pub url: Option<String>,
    /// Every key and the channel start with it: hosts with the same prefix share
    /// topics, others on the same server do not.
    pub key_prefix: String,
    /// This host's name in leases (who produces which pipeline). Default: the
    /// machine's host name and the server's port.
    pub node: Option<String>,
    /// Longest wait for a connection to Redis.
    pub connect_timeout_ms: u64,
    /// Longest wait for one command (or one pipelined batch) to Redis.
    pub command_timeout_ms: u64,
    /// A pipeline's lease lasts this long unless its host renews it (a third of
    /// it): how long a pipeline goes unproduced after its host dies.
    pub lease_ttl_ms: u64,
    /// A topic's keys expire in Redis when it is not published for this long.
    pub topic_ttl_secs: u64,
    /// How often each host compares its topics' positions with Redis (a lost
    /// PUB/SUB message with no successor is found this way).
    pub check_interval_ms: u64,
}

impl Default for BrokerSection {
    fn default() -> Self {
        Self {
            kind: BrokerType::Memory,
            url: None,
            key_prefix: "wasmeter:".into(),
            node: None,
            connect_timeout_ms: 2_000,
            command_timeout_ms: 2_000,
            lease_ttl_ms: 6_000,
            topic_ttl_secs: 7 * 24 * 3600,
            check_interval_ms: 2_000,
        }
    }
}

impl BrokerSection {
    /// Checks the section; errors name the key.
    pub fn validate(&self, config: &Config) -> Result<(), ConfigError> {
        let invalid = |key: &str, problem: &str| ConfigError::Invalid {
            origin: config.origin.clone(),
            key: format!("broker.{key}"),
            problem: problem.into(),
        };
        if self.kind == BrokerType::Memory {
            return Ok(());
        }
        match &self.url {
            None => return Err(invalid("url", "`type = \"redis\"` needs the server's url")),
            Some(url) if !url.starts_with("redis://") => {
                return Err(invalid("url", "expected redis://host:port[/db]"));
            }
            _ => {}
        }
        if self.key_prefix.is_empty() {
            return Err(invalid("key_prefix", "must not be empty"));
        }
        for (key, value) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("command_timeout_ms", self.command_timeout_ms),
            ("topic_ttl_secs", self.topic_ttl_secs),
            ("check_interval_ms", self.check_interval_ms),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be > 0"));
            }
        }
        if self.lease_ttl_ms < 3 * self.command_timeout_ms {
            return Err(invalid(
                "lease_ttl_ms",
                "must be at least 3 x command_timeout_ms: a lease is renewed every third of it, and each renewal may take that long",
            ));
        }
        Ok(())
    }

    /// How long a lease lasts.
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms)
    }
}
