//! The admin API's bearer token: where it comes from, and checking it.
//!
//! In order: `WASMETER_ADMIN_TOKEN`, `admin.token`, `admin.token_file`. With none
//! of them the host makes a random token and writes it to `<data_dir>/admin.token`
//! (mode 0600) for the `wasmeter plugin` commands of the same user, and then only
//! listens on a loopback address.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::config::Config;

/// The environment variable holding the token.
pub const TOKEN_ENV: &str = "WASMETER_ADMIN_TOKEN";

/// The file name of a generated token in the data directory.
pub const TOKEN_FILE: &str = "admin.token";

/// Shortest token accepted.
const MIN_TOKEN_LEN: usize = 16;

/// Where the token came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOrigin {
    /// `WASMETER_ADMIN_TOKEN`.
    Env,
    /// `admin.token`.
    Config,
    /// `admin.token_file`.
    File(PathBuf),
    /// Generated and written to this file.
    Generated(PathBuf),
}

/// The token and where it came from. Refuses a non-loopback address without a
/// token configured by the operator.
pub fn resolve(config: &Config, data_dir: &Path) -> anyhow::Result<(String, TokenOrigin)> {
    let admin = &config.admin;
    let configured = if let Ok(token) = std::env::var(TOKEN_ENV) {
        Some((token, TokenOrigin::Env))
    } else if let Some(token) = &admin.token {
        Some((token.clone(), TokenOrigin::Config))
    } else if let Some(file) = &admin.token_file {
        let file = config.resolve(file);
        let token = std::fs::read_to_string(&file).with_context(|| {
            format!(
                "{}: admin.token_file: cannot read {}",
                config.origin,
                file.display()
            )
        })?;
        Some((token.trim().to_string(), TokenOrigin::File(file)))
    } else {
        None
    };
    match configured {
        Some((token, origin)) => {
            if token.len() < MIN_TOKEN_LEN {
                bail!(
                    "{}: the admin token from {origin:?} is {} characters long; use at least {MIN_TOKEN_LEN}",
                    config.origin,
                    token.len()
                );
            }
            Ok((token, origin))
        }
        None if !admin.listen.ip().is_loopback() => bail!(
            "{}: admin.listen: {} is not a loopback address, and the admin API has no token; \
             set admin.token, admin.token_file or {TOKEN_ENV}, or listen on 127.0.0.1",
            config.origin,
            admin.listen
        ),
        None => {
            let file = data_dir.join(TOKEN_FILE);
            let token = generate()?;
            write_private(&file, &token)?;
            Ok((token, TokenOrigin::Generated(file)))
        }
    }
}

/// 32 random bytes from the OS, as hex.
fn generate() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    let mut random = std::fs::File::open("/dev/urandom").context("cannot open /dev/urandom")?;
    std::io::Read::read_exact(&mut random, &mut bytes).context("cannot read /dev/urandom")?;
    Ok(hex::encode(bytes))
}

/// Writes `text` to `path` readable by the owner only (temporary file + rename).
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Whether `presented` equals `expected`, in time independent of where they differ.
pub fn token_matches(presented: &[u8], expected: &[u8]) -> bool {
    presented.len() == expected.len()
        && presented
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::token_matches;

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(token_matches(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!token_matches(b"0123456789abcdeF", b"0123456789abcdef"));
        assert!(!token_matches(b"0123456789abcde", b"0123456789abcdef"));
        assert!(!token_matches(b"", b"0123456789abcdef"));
    }
}
