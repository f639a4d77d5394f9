//! The feed of the many-symbols scenario ([`crate::symbols`]): its rounds,
//! written before the server starts.

use std::io::Write;
use std::path::Path;

use anyhow::Result;

use crate::sendlog::SendLog;
use crate::stamp;

/// Appends `rounds` rounds of one record per symbol after the seed in `log`,
/// in one write, logged as written now.
pub fn append_rounds(file: &Path, log: &SendLog, symbols: usize, rounds: u64) -> Result<()> {
    let first = log.next();
    let end = first + symbols as u64 * rounds;
    let sent = stamp::now_us();
    let mut out = Vec::with_capacity((end - first) as usize * 32);
    for n in first..end {
        stamp::record(&mut out, symbols, n, sent);
    }
    log.wrote(first, end, sent);
    std::fs::OpenOptions::new()
        .append(true)
        .open(file)?
        .write_all(&out)?;
    Ok(())
}
