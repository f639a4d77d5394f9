//! Subscriber authentication: signed connection tokens (JWT) that carry the topic
//! patterns a subscriber may read and when that permission ends.
//!
//! A token is verified once per request or connection ([`Authenticator::verify`])
//! and becomes [`Grants`]: the patterns, the subject and the expiry. A WebSocket
//! connection keeps its grants, checks every `subscribe` against them, may
//! replace them with a fresh token (`refresh`), and is closed (4004) when they
//! expire. Without a token, a request gets the configured anonymous grants, or
//! is refused (401) when there are none.

use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use thiserror::Error;
use wasmeter_hub::Pattern;

/// Patterns one token may carry at most (checked before any is parsed).
pub const MAX_TOKEN_PATTERNS: usize = 256;

/// Longest token accepted, in bytes (checked before it is decoded).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// What [`Authenticator::new`] needs: the keys (PEM or raw bytes, already read
/// by the caller, who knows the file names) and the checks.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// Shared secret for HS256/HS384/HS512 tokens.
    pub hmac_secret: Option<Vec<u8>>,
    /// PEM public key (or certificate) for RS256/RS384/RS512/PS256/PS384/PS512 tokens.
    pub rsa_public_key_pem: Option<Vec<u8>>,
    /// PEM public key for ES256/ES384 tokens.
    pub ecdsa_public_key_pem: Option<Vec<u8>>,
    /// When set, a token's `aud` must contain it.
    pub audience: Option<String>,
    /// When set, a token's `iss` must equal it.
    pub issuer: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// Patterns anyone may read without a token; empty: a token is required.
    pub anonymous_topics: Vec<String>,
}

/// A key or setting that cannot be used; the message says which.
#[derive(Debug, Error)]
#[error("{what}: {message}")]
pub struct AuthConfigError {
    /// The setting (`hmac_secret`, `rsa_public_key`, ...).
    pub what: &'static str,
    /// Why.
    pub message: String,
}

/// Why a token was refused; the message is sent to the client.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct AuthError(pub String);

/// Verifies tokens with the configured keys.
pub struct Authenticator {
    hmac: Option<DecodingKey>,
    rsa: Option<DecodingKey>,
    ecdsa: Option<DecodingKey>,
    audience: Option<String>,
    issuer: Option<String>,
    leeway: Duration,
    anonymous: Option<Grants>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("hmac", &self.hmac.is_some())
            .field("rsa", &self.rsa.is_some())
            .field("ecdsa", &self.ecdsa.is_some())
            .field("anonymous", &self.anonymous)
            .finish_non_exhaustive()
    }
}

/// The claims wasmeter reads; `exp` and `nbf` are checked by the decoder.
#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    exp: u64,
    topics: Vec<String>,
}

impl Authenticator {
    /// Parses the keys and anonymous patterns; errors name the setting.
    pub fn new(settings: AuthSettings) -> Result<Self, AuthConfigError> {
        let bad = |what, message: String| AuthConfigError { what, message };
        let hmac = match settings.hmac_secret {
            Some(secret) if secret.len() < 32 => {
                return Err(bad(
                    "hmac_secret",
                    format!("is {} bytes; use at least 32 random bytes", secret.len()),
                ));
            }
            Some(secret) => Some(
                DecodingKey::from_secret(&secret)
                    .map_err(|e| bad("hmac_secret", format!("cannot be used: {e}")))?,
            ),
            None => None,
        };
        let rsa = match settings.rsa_public_key_pem {
            Some(pem) => Some(
                DecodingKey::from_rsa_pem(&pem)
                    .map_err(|e| bad("rsa_public_key", format!("not a PEM RSA public key: {e}")))?,
            ),
            None => None,
        };
        let ecdsa = match settings.ecdsa_public_key_pem {
            Some(pem) => Some(DecodingKey::from_ec_pem(&pem).map_err(|e| {
                bad(
                    "ecdsa_public_key",
                    format!("not a PEM EC public key (P-256 or P-384): {e}"),
                )
            })?),
            None => None,
        };
        if hmac.is_none() && rsa.is_none() && ecdsa.is_none() {
            return Err(bad(
                "keys",
                "no key to verify tokens with: set hmac_secret_file, rsa_public_key_file or ecdsa_public_key_file".into(),
            ));
        }
        let anonymous = match settings.anonymous_topics.is_empty() {
            true => None,
            false => {
                let mut patterns = Vec::with_capacity(settings.anonymous_topics.len());
                for (i, t) in settings.anonymous_topics.iter().enumerate() {
                    patterns.push(
                        Pattern::parse(t)
                            .map_err(|e| bad("anonymous_topics", format!("[{i}]: {e}")))?,
                    );
                }
                Some(Grants {
                    subject: None,
                    patterns: patterns.into(),
                    expires_at: None,
                })
            }
        };
        Ok(Self {
            hmac,
            rsa,
            ecdsa,
            audience: settings.audience,
            issuer: settings.issuer,
            leeway: settings.leeway,
            anonymous,
        })
    }

    /// The grants of a request without a token, if anonymous access is allowed.
    pub fn anonymous(&self) -> Option<&Grants> {
        self.anonymous.as_ref()
    }

    /// Verifies `token`: signature, algorithm, `exp`, `nbf`, `aud` and `iss` as
    /// configured, and a `topics` claim of valid patterns.
    pub fn verify(&self, token: &str) -> Result<Grants, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError(format!(
                "the token is {} bytes, more than the limit of {MAX_TOKEN_BYTES}",
                token.len()
            )));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError(format!("the token is not a JWT: {e}")))?;
        let (key, family) = match header.alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => (&self.hmac, "HMAC"),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => (&self.rsa, "RSA"),
            Algorithm::ES256 | Algorithm::ES384 => (&self.ecdsa, "ECDSA"),
            other => {
                return Err(AuthError(format!(
                    "the token's algorithm {other:?} is not accepted (HS*, RS*, PS*, ES256, ES384)"
                )));
            }
        };
        let Some(key) = key else {
            return Err(AuthError(format!(
                "the token is signed with {:?}, and this host has no {family} key",
                header.alg
            )));
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        match &self.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
        }
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|e| AuthError(describe(&e, self)))?;
        let claims = data.claims;
        if claims.topics.len() > MAX_TOKEN_PATTERNS {
            return Err(AuthError(format!(
                "the token's `topics` claim lists {} patterns, more than the limit of {MAX_TOKEN_PATTERNS}",
                claims.topics.len()
            )));
        }
        let mut patterns = Vec::with_capacity(claims.topics.len());
        for (i, t) in claims.topics.iter().enumerate() {
            patterns.push(
                Pattern::parse(t)
                    .map_err(|e| AuthError(format!("the token's `topics[{i}]`: {e}")))?,
            );
        }
        Ok(Grants {
            subject: claims.sub,
            patterns: patterns.into(),
            expires_at: Some(UNIX_EPOCH + Duration::from_secs(claims.exp) + self.leeway),
        })
    }
}

/// A decoder error as the client should read it.
fn describe(e: &jsonwebtoken::errors::Error, auth: &Authenticator) -> String {
    match e.kind() {
        ErrorKind::ExpiredSignature => "the token has expired (`exp` is past)".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (`nbf` is ahead)".into(),
        ErrorKind::InvalidSignature => "the token's signature does not verify".into(),
        ErrorKind::InvalidAudience => format!(
            "the token's `aud` does not include `{}`",
            auth.audience.as_deref().unwrap_or_default()
        ),
        ErrorKind::InvalidIssuer => format!(
            "the token's `iss` is not `{}`",
            auth.issuer.as_deref().unwrap_or_default()
        ),
        ErrorKind::MissingRequiredClaim(c) => format!("the token has no `{c}` claim"),
        ErrorKind::Json(e) => format!("the token's claims are not as expected: {e}"),
        _ => format!("the token is not valid: {e}"),
    }
}

/// What one subscriber may read, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    subject: Option<String>,
    /// Shared: a connection's grants are cloned per request, never rebuilt.
    patterns: Arc<[Pattern]>,
    /// `None`: no expiry (anonymous access, or a host without authentication).
    expires_at: Option<SystemTime>,
}

impl Grants {
    /// Everything, for ever: a host without authentication.
    pub fn everything() -> Self {
        static EVERYTHING: LazyLock<Grants> = LazyLock::new(|| Grants {
            subject: None,
            patterns: Arc::new([Pattern::parse("**").expect("`**` is a pattern")]),
            expires_at: None,
        });
        EVERYTHING.clone()
    }

    /// The token's `sub`, if any.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// When the permission ends (the token's `exp` plus the leeway).
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// True when every topic `pattern` can match is granted by one granted pattern.
    pub fn permits(&self, pattern: &Pattern) -> bool {
        self.patterns.iter().any(|g| g.covers(pattern))
    }

    /// True when `topic` is granted.
    pub fn permits_topic(&self, topic: &str) -> bool {
        self.patterns.iter().any(|g| g.matches(topic))
    }

    /// True when every topic is granted (`**`): what reading across topics, like
    /// the metric history, needs.
    pub fn permits_everything(&self) -> bool {
        self.patterns.iter().any(|g| g.as_str() == "**")
    }

    /// The granted patterns, for error messages (`trades/*, system/cpu`).
    pub fn describe(&self) -> String {
        if self.patterns.is_empty() {
            return "no topics".into();
        }
        let names: Vec<&str> = self.patterns.iter().map(Pattern::as_str).collect();
        names.join(", ")
    }

    /// Unix milliseconds of the expiry, for the `refreshed` frame.
    pub fn expires_at_ms(&self) -> Option<u64> {
        self.expires_at
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn auth() -> Authenticator {
        Authenticator::new(AuthSettings {
            hmac_secret: Some(SECRET.to_vec()),
            leeway: Duration::from_secs(0),
            ..Default::default()
        })
        .unwrap()
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn token(claims: serde_json::Value) -> String {
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(SECRET).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn a_valid_token_grants_its_patterns_until_its_expiry() {
        let exp = now() + 60;
        let grants = auth()
            .verify(&token(
                serde_json::json!({"sub": "bot", "exp": exp, "topics": ["trades/*"]}),
            ))
            .unwrap();
        assert_eq!(grants.subject(), Some("bot"));
        assert!(grants.permits(&Pattern::parse("trades/BTC").unwrap()));
        assert!(!grants.permits(&Pattern::parse("trades/**").unwrap()));
        assert!(grants.permits_topic("trades/ETH"));
        assert!(!grants.permits_topic("system/cpu"));
        assert!(!grants.permits_everything());
        assert_eq!(grants.expires_at_ms(), Some(exp * 1000));
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let a = auth();
        let cases = [
            (
                token(serde_json::json!({"exp": now() - 10, "topics": ["a"]})),
                "expired",
            ),
            (
                token(serde_json::json!({"exp": now() + 60, "nbf": now() + 60, "topics": ["a"]})),
                "not valid yet",
            ),
            (token(serde_json::json!({"topics": ["a"]})), "`exp`"),
            (token(serde_json::json!({"exp": now() + 60})), "topics"),
            (
                token(serde_json::json!({"exp": now() + 60, "topics": ["a b"]})),
                "topics[0]",
            ),
            ("not-a-jwt".to_string(), "not a JWT"),
        ];
        for (t, expected) in cases {
            let e = a.verify(&t).unwrap_err();
            assert!(e.0.contains(expected), "{e} should mention {expected}");
        }
        let forged = encode(
            &Header::default(),
            &serde_json::json!({"exp": now() + 60, "topics": ["**"]}),
            &EncodingKey::from_secret(b"another secret of thirty-two bytes!").unwrap(),
        )
        .unwrap();
        assert!(a.verify(&forged).unwrap_err().0.contains("signature"));
        // {"alg":"RS256","typ":"JWT"}: a host without an RSA key says so.
        let rs256 = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2ln";
        assert!(a.verify(rs256).unwrap_err().0.contains("no RSA key"));
    }

    #[test]
    fn settings_are_checked() {
        let short = Authenticator::new(AuthSettings {
            hmac_secret: Some(b"short".to_vec()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(short.to_string().contains("hmac_secret"), "{short}");
        let none = Authenticator::new(AuthSettings::default()).unwrap_err();
        assert!(none.to_string().contains("no key"), "{none}");
        let pattern = Authenticator::new(AuthSettings {
            hmac_secret: Some(SECRET.to_vec()),
            anonymous_topics: vec!["ok/*".into(), "bad//x".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            pattern.to_string().contains("anonymous_topics: [1]"),
            "{pattern}"
        );
    }
}
