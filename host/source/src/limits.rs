//! The process's open-file limit (`RLIMIT_NOFILE`): raising it at start, and the
//! descriptor budget of the file sources derived from it.
//!
//! Tailed files, the listener, client sockets, checkpoint writes, the plugin cache and
//! the runtime all draw descriptors from one per-process limit, whose common default
//! soft value (1024) is far below the usual hard limit. [`raise_nofile_limit`] lifts
//! the soft limit to the hard one; the file sources then keep at most
//! [`default_open_files`] files open between them (half the soft limit), so the other
//! half stays free for everything else.

use std::io;

use tracing::{info, warn};

/// Share of the soft limit the file sources may keep open by default: `1 / DIVISOR`.
pub const OPEN_FILES_DIVISOR: u64 = 2;

/// The smallest default budget (a tiny soft limit still lets the sources make progress).
const MIN_OPEN_FILES: u64 = 8;

/// The soft and hard `RLIMIT_NOFILE` of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    /// The soft limit: what `open`, `accept`, ... are held to (`u64::MAX` = unlimited).
    pub soft: u64,
    /// The hard limit: how far an unprivileged process may raise the soft one.
    pub hard: u64,
}

/// Reads the current `RLIMIT_NOFILE`.
pub fn nofile_limit() -> io::Result<NofileLimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit; getrlimit only writes into it.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(NofileLimit {
        soft: lim.rlim_cur,
        hard: lim.rlim_max,
    })
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, logging the change (or why it
/// could not be made), and returns the limits now in force. Call once at start, before
/// any file source is created. A soft limit already at the hard one is left alone.
pub fn raise_nofile_limit() -> io::Result<NofileLimit> {
    let before = nofile_limit()?;
    if before.soft >= before.hard {
        info!(
            soft = before.soft,
            hard = before.hard,
            "open-file limit already at its maximum"
        );
        return Ok(before);
    }
    let lim = libc::rlimit {
        rlim_cur: before.hard,
        rlim_max: before.hard,
    };
    // SAFETY: `lim` is a valid rlimit; setrlimit only reads it.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        let err = io::Error::last_os_error();
        warn!(soft = before.soft, hard = before.hard, error = %err,
            "cannot raise the open-file limit; keeping the soft limit");
        return Err(err);
    }
    let after = nofile_limit()?;
    info!(
        from = before.soft,
        to = after.soft,
        hard = after.hard,
        "raised the open-file limit (RLIMIT_NOFILE)"
    );
    Ok(after)
}

/// The default descriptor budget of the file sources for a soft limit: a
/// `1 / OPEN_FILES_DIVISOR` share of it (at least a few files).
pub fn open_files_for(soft: u64) -> usize {
    let share = (soft / OPEN_FILES_DIVISOR).max(MIN_OPEN_FILES);
    usize::try_from(share).unwrap_or(usize::MAX)
}

/// The default descriptor budget under the current soft limit (see [`open_files_for`]);
/// 512 if the limit cannot be read.
pub fn default_open_files() -> usize {
    nofile_limit().map_or(512, |l| open_files_for(l.soft))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_a_share_of_the_soft_limit() {
        assert_eq!(open_files_for(1024), 512);
        assert_eq!(open_files_for(3), 8, "a tiny limit still allows a few");
        assert_eq!(open_files_for(u64::MAX), (u64::MAX / 2) as usize);
    }

    #[test]
    fn raising_reaches_the_hard_limit() {
        // Process-wide, but only ever raised (never lowered) by this test binary.
        let after = raise_nofile_limit().expect("raise");
        assert_eq!(after.soft, after.hard);
        assert_eq!(nofile_limit().unwrap(), after);
    }
}
