//! `[auth]`: subscriber tokens. Which keys verify them, which claims are
//! checked, and which topics need none. Without this section every topic is
//! open to anyone who can reach the server (and its `Origin` check).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use wasmeter_server::{AuthSettings, Authenticator};

use crate::config::Config;

/// `[auth]`
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// A file holding the shared secret of HS256/HS384/HS512 tokens (at least
    /// 32 bytes; a trailing newline is not part of it).
    pub hmac_secret_file: Option<PathBuf>,
    /// A PEM RSA public key: RS256/384/512 and PS256/384/512 tokens.
    pub rsa_public_key_file: Option<PathBuf>,
    /// A PEM EC public key (P-256 or P-384): ES256/ES384 tokens.
    pub ecdsa_public_key_file: Option<PathBuf>,
    /// When set, a token's `aud` must contain it.
    pub audience: Option<String>,
    /// When set, a token's `iss` must equal it.
    pub issuer: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// Patterns anyone may read without a token (e.g. `["public/**"]`).
    pub anonymous_topics: Vec<String>,
}

impl AuthSection {
    /// True when the section asks for tokens at all.
    pub fn enabled(&self) -> bool {
        self.hmac_secret_file.is_some()
            || self.rsa_public_key_file.is_some()
            || self.ecdsa_public_key_file.is_some()
            || !self.anonymous_topics.is_empty()
            || self.audience.is_some()
            || self.issuer.is_some()
    }

    /// Reads the key files and builds the verifier; `None` without the section.
    /// Errors name the file, the key and what is wrong with it.
    pub fn authenticator(&self, config: &Config) -> anyhow::Result<Option<Authenticator>> {
        if !self.enabled() {
            return Ok(None);
        }
        let origin = &config.origin;
        let read = |key: &str, path: &Option<PathBuf>| -> anyhow::Result<Option<Vec<u8>>> {
            let Some(path) = path else { return Ok(None) };
            let path = config.resolve(path);
            std::fs::read(&path)
                .map(Some)
                .with_context(|| format!("{origin}: auth.{key}: cannot read {}", path.display()))
        };
        let hmac_secret = read("hmac_secret_file", &self.hmac_secret_file)?.map(|mut s| {
            while s.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                s.pop();
            }
            s
        });
        let settings = AuthSettings {
            hmac_secret,
            rsa_public_key_pem: read("rsa_public_key_file", &self.rsa_public_key_file)?,
            ecdsa_public_key_pem: read("ecdsa_public_key_file", &self.ecdsa_public_key_file)?,
            audience: self.audience.clone(),
            issuer: self.issuer.clone(),
            leeway: Duration::from_secs(self.leeway_secs),
            anonymous_topics: self.anonymous_topics.clone(),
        };
        let key = |what: &str| match what {
            "hmac_secret" => "hmac_secret_file".to_string(),
            "rsa_public_key" => "rsa_public_key_file".to_string(),
            "ecdsa_public_key" => "ecdsa_public_key_file".to_string(),
            other => other.to_string(),
        };
        Authenticator::new(settings)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{origin}: auth.{}: {}", key(e.what), e.message))
    }
}
