//! The on-disk buffer of one output: encoded request bodies waiting to be sent,
//! in a log of segment files (`<id>.seg`, CRC'd frames) under the output's
//! directory, at most `max_bytes` in all.
//!
//! - Appends go to the newest segment; a new one starts past `max_bytes / 8`.
//! - When an append would pass `max_bytes`, the oldest segments are deleted first
//!   and their unsent samples counted as dropped (the newest data is kept).
//! - Sent frames are acknowledged: a fully sent segment is deleted, and the
//!   position in the oldest one is kept in `ack` (16 bytes + CRC), so a restart
//!   resends nothing already acknowledged and everything not.
//! - Opening replays every segment: a torn tail (the host died mid-write) is cut
//!   off, a frame whose checksum fails is skipped, and both are reported.
//!
//! Writes are not fsync'ed one by one: a killed host loses nothing (the page
//! cache has it); a power cut may lose the last seconds.

mod frame;
mod segment;

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};

use segment::{Segment, ack_path};

/// Where a stored frame is, to acknowledge it once sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameId {
    segment: u64,
    offset: u64,
}

/// A frame read back from the buffer.
#[derive(Debug)]
pub struct Stored {
    /// Its place, for [`DiskBuffer::ack`].
    pub id: FrameId,
    /// Samples in it.
    pub samples: u32,
    /// The request body.
    pub body: Vec<u8>,
}

/// Samples (and frames) given up.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    /// Frames.
    pub frames: u64,
    /// Samples in them.
    pub samples: u64,
}

impl Dropped {
    fn add(&mut self, samples: u32) {
        self.frames += 1;
        self.samples += u64::from(samples);
    }
}

/// What opening found: frames waiting to be sent and what could not be read.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Unsent frames found.
    pub frames: u64,
    /// Unsent samples in them.
    pub samples: u64,
    /// Frames that failed their checksum (skipped).
    pub corrupt: Dropped,
    /// What was damaged, file and offset, one line each.
    pub damage: Vec<String>,
}

/// The first segment id: room below it for segments put in front (a shutdown's
/// unsent in-memory frames, which are older than anything on disk).
const FIRST_ID: u64 = 1 << 40;

/// A bounded log of frames on disk.
#[derive(Debug)]
pub struct DiskBuffer {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    /// Oldest first; only the last one is appended to.
    segments: VecDeque<Segment>,
    /// Bytes of the segment files.
    bytes: u64,
    /// Bytes of the frames not yet sent.
    unsent: u64,
}

impl DiskBuffer {
    /// Opens (or creates) the buffer in `dir`, replaying what is there.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<(Self, Recovery)> {
        std::fs::create_dir_all(dir)?;
        let mut ack = segment::read_ack(&ack_path(dir));
        let mut recovery = Recovery::default();
        let mut segments = VecDeque::new();
        let ids = segment::list(dir)?;
        if let Some((seg, _)) = ack
            && !ids.contains(&seg)
        {
            // Its segment is gone (sent): cleared before an id can be reused.
            segment::write_ack(&ack_path(dir), 0, 0)?;
            ack = None;
        }
        for id in ids {
            let skip_below = match ack {
                Some((seg, offset)) if seg == id => offset,
                _ => 0,
            };
            let s = Segment::recover(dir, id, skip_below, &mut recovery)?;
            if s.frames.is_empty() {
                s.delete(dir)?;
                if ack.is_some_and(|(seg, _)| seg == id) {
                    segment::write_ack(&ack_path(dir), 0, 0)?;
                }
                continue;
            }
            segments.push_back(s);
        }
        let bytes = segments.iter().map(|s| s.size).sum();
        let unsent = segments
            .iter()
            .flat_map(|s| s.frames.iter().map(|f| f.size()))
            .sum();
        for s in &segments {
            recovery.frames += s.frames.len() as u64;
            recovery.samples += s.unsent_samples();
        }
        let buffer = Self {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes: (max_bytes / 8).max(64 << 10),
            segments,
            bytes,
            unsent,
        };
        Ok((buffer, recovery))
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Bytes of the frames waiting to be sent.
    pub fn unsent_bytes(&self) -> u64 {
        self.unsent
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.segments.iter().all(|s| s.frames.is_empty())
    }

    /// Unsent samples on disk.
    pub fn samples(&self) -> u64 {
        self.segments.iter().map(Segment::unsent_samples).sum()
    }

    /// Appends a frame after everything else. Makes room first by deleting the
    /// oldest segments; returns what that dropped (the frame itself if it alone
    /// is larger than the buffer).
    pub fn append(&mut self, samples: u32, body: &[u8]) -> io::Result<Dropped> {
        let size = (frame::HEADER + body.len()) as u64;
        let mut dropped = Dropped::default();
        if size > self.max_bytes || body.len() > frame::MAX_BODY {
            dropped.add(samples);
            return Ok(dropped);
        }
        let full = |b: &Self| b.bytes + size > b.max_bytes;
        while full(self) && !self.segments.is_empty() {
            let oldest = self.segments.pop_front().expect("not empty");
            for f in &oldest.frames {
                dropped.add(f.samples);
                self.unsent -= f.size();
            }
            self.bytes -= oldest.size;
            oldest.delete(&self.dir)?;
        }
        let rotate = match self.segments.back() {
            None => true,
            Some(s) => s.size + size > self.segment_bytes || !s.is_open(),
        };
        if rotate {
            let id = self.segments.back().map_or(FIRST_ID, |s| s.id + 1);
            if let Some(s) = self.segments.back_mut() {
                s.close();
                if s.frames.is_empty() {
                    let done = self.segments.pop_back().expect("just seen");
                    self.bytes -= done.size;
                    done.delete(&self.dir)?;
                }
            }
            self.segments.push_back(Segment::create(&self.dir, id)?);
        }
        let segment = self.segments.back_mut().expect("just made");
        segment.append(samples, body)?;
        self.bytes += size;
        self.unsent += size;
        Ok(dropped)
    }

    /// Puts frames in front of everything on disk (they are older), in a
    /// segment of their own. Used at shutdown for frames still in memory.
    pub fn prepend(&mut self, frames: &[(u32, &[u8])]) -> io::Result<Dropped> {
        let mut dropped = Dropped::default();
        if frames.is_empty() {
            return Ok(dropped);
        }
        let id = self.segments.front().map_or(FIRST_ID, |s| s.id - 1);
        let mut segment = Segment::create(&self.dir, id)?;
        for &(samples, body) in frames {
            let size = (frame::HEADER + body.len()) as u64;
            if self.bytes + size > self.max_bytes {
                dropped.add(samples);
                continue;
            }
            segment.append(samples, body)?;
            self.bytes += size;
            self.unsent += size;
        }
        segment.sync()?;
        segment.close();
        self.segments.push_front(segment);
        Ok(dropped)
    }

    /// The oldest unsent frame. A frame that fails its checksum on the way back
    /// is skipped and added to `corrupt`.
    pub fn head(&mut self, corrupt: &mut Dropped) -> io::Result<Option<Stored>> {
        loop {
            let Some(segment) = self.segments.iter_mut().find(|s| !s.frames.is_empty()) else {
                return Ok(None);
            };
            let f = *segment.frames.front().expect("not empty");
            let id = FrameId {
                segment: segment.id,
                offset: f.offset,
            };
            match segment.read(&self.dir, &f)? {
                Some(body) => {
                    return Ok(Some(Stored {
                        id,
                        samples: f.samples,
                        body,
                    }));
                }
                None => {
                    corrupt.add(f.samples);
                    self.ack(id)?;
                }
            }
        }
    }

    /// Marks the frame sent: it is never returned again, nor after a restart.
    /// A frame dropped meanwhile (the buffer was full) is ignored.
    pub fn ack(&mut self, id: FrameId) -> io::Result<()> {
        let Some(at) = self.segments.iter().position(|s| s.id == id.segment) else {
            return Ok(());
        };
        let segment = &mut self.segments[at];
        if segment.frames.front().map(|f| f.offset) != Some(id.offset) {
            return Ok(());
        }
        let sent = segment.frames.pop_front().expect("checked");
        self.unsent -= sent.size();
        // A fully sent segment goes, the one appended to as well (the next
        // append starts another).
        if segment.frames.is_empty() {
            let done = self.segments.remove(at).expect("found");
            self.bytes -= done.size;
            done.delete(&self.dir)?;
            // The ack named it: cleared, so that a segment made later with the
            // same id (the next one put in front) is not taken as sent.
            return segment::write_ack(&ack_path(&self.dir), 0, 0);
        }
        segment::write_ack(&ack_path(&self.dir), id.segment, sent.offset + sent.size())
    }

    /// Writes what was appended to disk (at shutdown).
    pub fn sync(&mut self) -> io::Result<()> {
        match self.segments.back_mut() {
            Some(s) => s.sync(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
