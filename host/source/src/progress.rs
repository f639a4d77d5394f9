//! Progress of catching up on a large backlog: a file found (or grown) far ahead of
//! the read position is logged when the catch-up starts, every few seconds while it
//! runs, and when it ends. Normal small appends log nothing.

use std::time::{Duration, Instant};

/// A backlog at least this large is logged as a catch-up.
pub(crate) const CATCH_UP_MIN_BYTES: u64 = 32 << 20;

/// Time between progress lines.
pub(crate) const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// What to log after a read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum CatchUp {
    /// A large backlog was found.
    Started { backlog_bytes: u64 },
    /// Still catching up.
    Progress {
        done_bytes: u64,
        total_bytes: u64,
        bytes_per_sec: f64,
    },
    /// The read position reached the size seen at the last read.
    Finished { bytes: u64, secs: f64 },
}

#[derive(Debug, Clone, Copy)]
struct Run {
    started: Instant,
    logged: Instant,
    start_pos: u64,
}

/// Catch-up tracking of one file (pure: the caller passes the time).
#[derive(Debug, Default)]
pub(crate) struct Progress {
    run: Option<Run>,
}

impl Progress {
    /// Called after each read with the read position and the file size.
    pub(crate) fn advance(&mut self, pos: u64, size: u64, now: Instant) -> Option<CatchUp> {
        let backlog = size.saturating_sub(pos);
        match &mut self.run {
            None if backlog >= CATCH_UP_MIN_BYTES => {
                self.run = Some(Run {
                    started: now,
                    logged: now,
                    start_pos: pos,
                });
                Some(CatchUp::Started {
                    backlog_bytes: backlog,
                })
            }
            None => None,
            Some(run) if backlog == 0 => {
                let run = *run;
                self.run = None;
                Some(CatchUp::Finished {
                    bytes: pos.saturating_sub(run.start_pos),
                    secs: now.duration_since(run.started).as_secs_f64(),
                })
            }
            Some(run) if now.duration_since(run.logged) >= PROGRESS_EVERY => {
                run.logged = now;
                let done = pos.saturating_sub(run.start_pos);
                let secs = now.duration_since(run.started).as_secs_f64().max(1e-3);
                Some(CatchUp::Progress {
                    done_bytes: done,
                    total_bytes: size.saturating_sub(run.start_pos),
                    bytes_per_sec: done as f64 / secs,
                })
            }
            Some(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_appends_are_silent() {
        let mut p = Progress::default();
        let t = Instant::now();
        assert_eq!(p.advance(100, 200, t), None);
        assert_eq!(p.advance(200, 200, t), None);
    }

    #[test]
    fn a_large_backlog_logs_start_progress_and_end() {
        let mut p = Progress::default();
        let t = Instant::now();
        let size = 100 << 20;
        assert_eq!(
            p.advance(1 << 20, size, t),
            Some(CatchUp::Started {
                backlog_bytes: 99 << 20
            })
        );
        assert_eq!(p.advance(2 << 20, size, t + Duration::from_secs(1)), None);
        let Some(CatchUp::Progress {
            done_bytes,
            total_bytes,
            ..
        }) = p.advance(51 << 20, size, t + PROGRESS_EVERY)
        else {
            panic!("expected progress");
        };
        assert_eq!((done_bytes, total_bytes), (50 << 20, 99 << 20));
        assert!(matches!(
            p.advance(size, size, t + PROGRESS_EVERY * 2),
            Some(CatchUp::Finished { bytes, .. }) if bytes == 99 << 20
        ));
        assert_eq!(p.advance(size, size, t + PROGRESS_EVERY * 3), None);
    }
}
