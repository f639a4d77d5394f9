use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use super::*;

fn body(i: u32) -> Vec<u8> {
    format!("frame-{i:06}").into_bytes()
}

/// Everything unsent, acknowledging as it goes.
fn drain(b: &mut DiskBuffer) -> Vec<(u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut corrupt = Dropped::default();
    while let Some(s) = b.head(&mut corrupt).unwrap() {
        b.ack(s.id).unwrap();
        out.push((s.samples, s.body));
    }
    out
}

#[test]
fn frames_come_back_in_order_and_acked_ones_never_again_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut b, rec) = DiskBuffer::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(rec.frames, 0);
    for i in 0..10 {
        b.append(i, &body(i)).unwrap();
    }
    let mut corrupt = Dropped::default();
    for _ in 0..4 {
        let s = b.head(&mut corrupt).unwrap().unwrap();
        b.ack(s.id).unwrap();
    }
    drop(b); // no sync, no close: as if the host died here
    let (mut b, rec) = DiskBuffer::open(dir.path(), 1 << 20).unwrap();
    assert_eq!((rec.frames, rec.samples), (6, (4..10).sum::<u32>() as u64));
    let got = drain(&mut b);
    assert_eq!(got, (4..10).map(|i| (i, body(i))).collect::<Vec<_>>());
    assert!(b.is_empty());
    // Appends after a reopen go on from there.
    b.append(1, b"after").unwrap();
    assert_eq!(drain(&mut b), vec![(1, b"after".to_vec())]);
}

#[test]
fn a_torn_tail_is_cut_off_and_reported_and_appends_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let (mut b, _) = DiskBuffer::open(dir.path(), 1 << 20).unwrap();
    for i in 0..3 {
        b.append(1, &body(i)).unwrap();
    }
    drop(b);
    let seg = segment::list(dir.path()).unwrap()[0];
    let p = dir.path().join(format!("{seg:020}.seg"));
    let len = std::fs::metadata(&p).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let (mut b, rec) = DiskBuffer::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(rec.frames, 2);
    assert_eq!(rec.damage.len(), 1, "{:?}", rec.damage);
    assert!(
        rec.damage[0].contains("not whole frames"),
        "{:?}",
        rec.damage
    );
    b.append(1, &body(9)).unwrap();
    let got: Vec<_> = drain(&mut b).into_iter().map(|(_, b)| b).collect();
    assert_eq!(got, vec![body(0), body(1), body(9)]);
}

#[test]
fn a_frame_failing_its_checksum_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (mut b, _) = DiskBuffer::open(dir.path(), 1 << 20).unwrap();
    for i in 0..3 {
        b.append(7, &body(i)).unwrap();
    }
    drop(b);
    let seg = segment::list(dir.path()).unwrap()[0];
    let p = dir.path().join(format!("{seg:020}.seg"));
    let mut bytes = std::fs::read(&p).unwrap();
    let second = frame::HEADER + body(0).len() + frame::HEADER + 2;
    bytes[second] ^= 0xff;
    std::fs::write(&p, &bytes).unwrap();
    let (mut b, rec) = DiskBuffer::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(
        rec.corrupt,
        Dropped {
            frames: 1,
            samples: 7
        }
    );
    let got: Vec<_> = drain(&mut b).into_iter().map(|(_, b)| b).collect();
    assert_eq!(got, vec![body(0), body(2)]);
}

#[test]
fn a_full_buffer_drops_the_oldest_and_says_how_many() {
    let dir = tempfile::tempdir().unwrap();
    // 64 KiB segments; each frame ~8 KiB: 8 frames a segment.
    let max = 256 << 10;
    let (mut b, _) = DiskBuffer::open(dir.path(), max).unwrap();
    let big = vec![b'x'; (8 << 10) - frame::HEADER];
    let mut dropped = Dropped::default();
    for i in 0..100u32 {
        let mut frame = big.clone();
        frame[..4].copy_from_slice(&i.to_le_bytes());
        let d = b.append(10, &frame).unwrap();
        dropped.frames += d.frames;
        dropped.samples += d.samples;
        assert!(b.bytes() <= max);
    }
    let kept = drain(&mut b);
    assert_eq!(kept.len() as u64 + dropped.frames, 100);
    assert_eq!(dropped.samples, dropped.frames * 10);
    assert!(dropped.frames > 0);
    // The newest are the ones kept, in order.
    let first = u32::from_le_bytes(kept[0].1[..4].try_into().unwrap());
    assert_eq!(first as u64, dropped.frames);
    let last = u32::from_le_bytes(kept.last().unwrap().1[..4].try_into().unwrap());
    assert_eq!(last, 99);
    // A frame larger than the whole buffer is refused, not stored.
    let d = b.append(3, &vec![0; max as usize]).unwrap();
    assert_eq!(
        d,
        Dropped {
            frames: 1,
            samples: 3
        }
    );
}

#[test]
fn prepended_frames_come_before_everything_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (mut b, _) = DiskBuffer::open(dir.path(), 1 << 20).unwrap();
    b.append(1, b"disk-1").unwrap();
    b.append(1, b"disk-2").unwrap();
    let mut corrupt = Dropped::default();
    let s = b.head(&mut corrupt).unwrap().unwrap();
    b.ack(s.id).unwrap();
    b.prepend(&[(2, b"mem-1"), (2, b"mem-2")]).unwrap();
    drop(b);
    let (mut b, rec) = DiskBuffer::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(rec.frames, 3);
    let got: Vec<_> = drain(&mut b).into_iter().map(|(_, b)| b).collect();
    assert_eq!(
        got,
        vec![b"mem-1".to_vec(), b"mem-2".to_vec(), b"disk-2".to_vec()]
    );
}

#[test]
fn a_segment_put_in_front_after_everything_was_sent_is_not_taken_as_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (mut b, _) = DiskBuffer::open(dir.path(), 1 << 20).unwrap();
    b.append(1, b"old-1").unwrap();
    b.append(1, b"old-2").unwrap();
    assert_eq!(drain(&mut b).len(), 2);
    b.append(1, b"new").unwrap();
    // The shutdown puts frames in front: a segment id below the sent one's.
    b.prepend(&[(1, b"mem-1"), (1, b"mem-2")]).unwrap();
    drop(b);
    let (mut b, _) = DiskBuffer::open(dir.path(), 1 << 20).unwrap();
    let got: Vec<_> = drain(&mut b).into_iter().map(|(_, b)| b).collect();
    assert_eq!(
        got,
        vec![b"mem-1".to_vec(), b"mem-2".to_vec(), b"new".to_vec()]
    );
    assert_eq!((b.bytes(), b.unsent_bytes()), (0, 0));
}

const CHILD_DIR: &str = "WASMETER_EXPORT_CRASH_DIR";

/// The writer the crash test kills: appends numbered frames and says so.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let (mut b, _) = DiskBuffer::open(Path::new(&dir), 64 << 20).unwrap();
    for i in 0.. {
        b.append(1, &body(i)).unwrap();
        println!("appended {i}");
    }
}

#[test]
fn a_killed_writer_loses_no_frame_it_finished() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "buffer::tests::crash_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut finished = 0;
    for line in lines.by_ref() {
        if let Some(n) = line.unwrap().strip_prefix("appended ") {
            finished = n.parse::<u32>().unwrap();
            if finished >= 20_000 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL, mid-append
    child.wait().unwrap();
    let (mut b, _) = DiskBuffer::open(dir.path(), 64 << 20).unwrap();
    let got = drain(&mut b);
    assert!(
        got.len() as u32 > finished,
        "{} frames, {finished} finished",
        got.len()
    );
    for (i, (_, frame)) in got.iter().enumerate() {
        assert_eq!(frame, &body(i as u32));
    }
}
