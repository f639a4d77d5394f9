//! One segment file of the buffer: its frames' index, appends, reads, and the
//! `ack` file that says how far the oldest segment has been sent.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::Recovery;
use super::frame::{self, Header};

/// An unsent frame's place in its segment.
#[derive(Debug, Clone, Copy)]
pub struct FrameRef {
    /// Offset of its header.
    pub offset: u64,
    /// Body length.
    pub len: u32,
    /// Samples in it.
    pub samples: u32,
    /// Its checksum.
    pub crc: u32,
}

impl FrameRef {
    /// Header and body.
    pub fn size(&self) -> u64 {
        (frame::HEADER + self.len as usize) as u64
    }
}

/// A segment file.
#[derive(Debug)]
pub struct Segment {
    /// Its id (the file name).
    pub id: u64,
    /// Bytes in the file.
    pub size: u64,
    /// Unsent frames, oldest first.
    pub frames: VecDeque<FrameRef>,
    /// Open for appends (only the newest segment).
    file: Option<File>,
    scratch: Vec<u8>,
}

fn path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

/// The file that records how far the oldest segment was sent.
pub fn ack_path(dir: &Path) -> PathBuf {
    dir.join("ack")
}

/// The segment ids in `dir`, oldest first.
pub fn list(dir: &Path) -> io::Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(id) = name.strip_suffix(".seg").and_then(|n| n.parse().ok()) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// `(segment, offset)` from the ack file, if it is there and intact.
pub fn read_ack(path: &Path) -> Option<(u64, u64)> {
    let b = std::fs::read(path).ok()?;
    if b.len() != 20 || crc32fast::hash(&b[..16]).to_le_bytes() != b[16..20] {
        return None;
    }
    let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
    Some((word(0), word(8)))
}

/// Records that `segment` was sent up to `offset` (overwritten in place).
pub fn write_ack(path: &Path, segment: u64, offset: u64) -> io::Result<()> {
    let mut b = [0u8; 20];
    b[..8].copy_from_slice(&segment.to_le_bytes());
    b[8..16].copy_from_slice(&offset.to_le_bytes());
    let crc = crc32fast::hash(&b[..16]);
    b[16..].copy_from_slice(&crc.to_le_bytes());
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(path)?;
    file.write_all_at(&b, 0)
}

impl Segment {
    /// A new, empty segment open for appends.
    pub fn create(dir: &Path, id: u64) -> io::Result<Segment> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path(dir, id))?;
        Ok(Segment {
            id,
            size: 0,
            frames: VecDeque::new(),
            file: Some(file),
            scratch: Vec::new(),
        })
    }

    /// Reads an existing segment: its frames from `skip_below` on. A torn tail is
    /// cut off the file; damage is added to `recovery`.
    pub fn recover(
        dir: &Path,
        id: u64,
        skip_below: u64,
        recovery: &mut Recovery,
    ) -> io::Result<Segment> {
        let p = path(dir, id);
        let bytes = std::fs::read(&p)?;
        let scan = frame::scan(&bytes);
        let mut size = bytes.len() as u64;
        if let Some(at) = scan.torn_at {
            recovery.damage.push(format!(
                "{}: {} bytes from offset {at} are not whole frames (cut off)",
                p.display(),
                size - at
            ));
            OpenOptions::new().write(true).open(&p)?.set_len(at)?;
            size = at;
        }
        for &(offset, samples) in &scan.corrupt {
            if offset >= skip_below {
                recovery.corrupt.add(samples);
                recovery.damage.push(format!(
                    "{}: frame at offset {offset} ({samples} samples) fails its checksum (skipped)",
                    p.display()
                ));
            }
        }
        let frames = scan
            .frames
            .iter()
            .filter(|(offset, _)| *offset >= skip_below)
            .map(|&(offset, h)| frame_ref(offset, h))
            .collect();
        Ok(Segment {
            id,
            size,
            frames,
            file: None,
            scratch: Vec::new(),
        })
    }

    /// Whether appends go here.
    pub fn is_open(&self) -> bool {
        self.file.is_some()
    }

    /// No more appends.
    pub fn close(&mut self) {
        self.file = None;
    }

    /// Unsent samples.
    pub fn unsent_samples(&self) -> u64 {
        self.frames.iter().map(|f| u64::from(f.samples)).sum()
    }

    /// Appends a frame (the segment must be open).
    pub fn append(&mut self, samples: u32, body: &[u8]) -> io::Result<()> {
        let file = self.file.as_mut().expect("appends go to the open segment");
        self.scratch.clear();
        frame::write(&mut self.scratch, samples, body);
        file.write_all(&self.scratch)?;
        self.frames.push_back(FrameRef {
            offset: self.size,
            len: body.len() as u32,
            samples,
            crc: frame::checksum(samples, body),
        });
        self.size += self.scratch.len() as u64;
        Ok(())
    }

    /// A frame's body; `None` if it no longer matches its checksum.
    pub fn read(&self, dir: &Path, f: &FrameRef) -> io::Result<Option<Vec<u8>>> {
        let mut body = vec![0u8; f.len as usize];
        let file = File::open(path(dir, self.id))?;
        match file.read_exact_at(&mut body, f.offset + frame::HEADER as u64) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        Ok((frame::checksum(f.samples, &body) == f.crc).then_some(body))
    }

    /// Flushes appends to the disk.
    pub fn sync(&mut self) -> io::Result<()> {
        match &self.file {
            Some(f) => f.sync_data(),
            None => Ok(()),
        }
    }

    /// Removes the file.
    pub fn delete(self, dir: &Path) -> io::Result<()> {
        match std::fs::remove_file(path(dir, self.id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn frame_ref(offset: u64, h: Header) -> FrameRef {
    FrameRef {
        offset,
        len: h.len,
        samples: h.samples,
        crc: h.crc,
    }
}
