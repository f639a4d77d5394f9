//! One source read by several readers (the shards of a pipeline), each from its own
//! checkpoint.

mod util;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use util::{Delivered, Running, WAIT, XorShift, config};
use wasmeter_source::{FileCheckpoint, FileSource, Reader, Route, SourceEvent};

/// `n` records `line-<i>` from `from`, each 9 bytes with its newline.
fn lines(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("line-{i:03}\n")).collect()
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// One reader's end: its channel, its stop and what it received.
struct Shard {
    rx: mpsc::Receiver<SourceEvent>,
    stop: CancellationToken,
    delivered: Delivered,
}

impl Shard {
    fn new() -> (Shard, Reader) {
        let (tx, rx) = mpsc::channel(4);
        let stop = CancellationToken::new();
        let reader = Reader {
            tx,
            stop: stop.clone(),
        };
        let shard = Shard {
            rx,
            stop,
            delivered: Delivered::default(),
        };
        (shard, reader)
    }

    /// Receives until `bytes` record bytes have arrived.
    async fn until(&mut self, bytes: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.delivered.data_len() < bytes {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(event)) => self.delivered.apply(&event),
                Ok(None) => panic!("channel closed; delivered: {:#?}", self.delivered),
                Err(_) => panic!("timed out; delivered: {:#?}", self.delivered),
            }
        }
    }

    /// Receives until the source closes the channel.
    async fn until_closed(&mut self) {
        loop {
            match tokio::time::timeout(WAIT, self.rx.recv()).await {
                Ok(Some(event)) => self.delivered.apply(&event),
                Ok(None) => return,
                Err(_) => panic!("the channel stays open; delivered: {:#?}", self.delivered),
            }
        }
    }
}

/// A checkpoint of `a.log` at each of `offsets` (its key from reading it once).
async fn checkpoint_at(dir: &Path, offsets: &[u64]) -> Vec<Vec<FileCheckpoint>> {
    let mut first = Running::start(config(dir, "*.log"), vec![], 16);
    let size = std::fs::metadata(dir.join("a.log")).unwrap().len() as usize;
    first.until("the file", |d| d.data_len() == size).await;
    let delivered = first.stop().await;
    let first_gen = &delivered.gens[0];
    offsets
        .iter()
        .map(|offset| {
            vec![FileCheckpoint {
                file: first_gen.key,
                path: first_gen.path.clone(),
                offset: *offset,
                size: size as u64,
            }]
        })
        .collect()
}

/// A shared source over `dir` running for one reader per checkpoint.
struct SharedRun {
    shards: Vec<Shard>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), wasmeter_source::SourceError>>,
}

impl SharedRun {
    fn start(dir: &Path, resumes: &[Vec<FileCheckpoint>]) -> SharedRun {
        Self::start_routed(dir, resumes, None)
    }

    /// [`SharedRun::start`] with chunks routed to readers by `route`.
    fn start_routed(
        dir: &Path,
        resumes: &[Vec<FileCheckpoint>],
        route: Option<Route>,
    ) -> SharedRun {
        let source = FileSource::shared(config(dir, "*.log"), resumes)
            .unwrap()
            .expect("the checkpoints name the same files");
        let source = match route {
            Some(route) => source.with_route(route),
            None => source,
        };
        let (shards, readers): (Vec<Shard>, Vec<Reader>) =
            resumes.iter().map(|_| Shard::new()).unzip();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(source.run_readers(readers, cancel.clone()));
        SharedRun {
            shards,
            cancel,
            task,
        }
    }

    /// Waits (bounded) for the source to end, cancelled first if `cancel`.
    async fn end(self, cancel: bool) -> Vec<Shard> {
        if cancel {
            self.cancel.cancel();
        }
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the source ends")
            .unwrap()
            .unwrap();
        self.shards
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_of_one_source_each_resume_from_their_own_offset() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.log");
    append(&file, &lines(0, 50));
    let offsets = [90, 360, 0];
    let resumes = checkpoint_at(dir.path(), &offsets).await;
    append(&file, &lines(50, 10));

    let mut run = SharedRun::start(dir.path(), &resumes);
    let shards = &mut run.shards;

    let written = std::fs::read(&file).unwrap();
    for (shard, offset) in shards.iter_mut().zip(offsets) {
        shard.until(written.len() - offset as usize).await;
        // `Delivered` checks that every chunk starts where the last ended, from
        // the offset `Opened` gave: nothing repeated, nothing skipped.
        assert_eq!(shard.delivered.gens.len(), 1);
        assert_eq!(shard.delivered.gens[0].opened_at, offset);
        assert_eq!(shard.delivered.all_data(), &written[offset as usize..]);
    }

    // One reader stops: its channel closes, the others go on.
    shards[1].stop.cancel();
    shards[1].until_closed().await;
    append(&file, &lines(60, 5));
    let written = std::fs::read(&file).unwrap();
    for i in [0, 2] {
        let offset = offsets[i] as usize;
        shards[i].until(written.len() - offset).await;
        assert_eq!(shards[i].delivered.all_data(), &written[offset..]);
    }
    assert_eq!(
        shards[1].delivered.all_data(),
        &written[360..60 * 9],
        "a stopped reader gets nothing more"
    );

    // The last readers stop: so does the source (not cancelled).
    shards[0].stop.cancel();
    shards[2].stop.cancel();
    run.end(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_whose_checkpoints_name_other_files_are_not_merged() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("a.log"), &lines(0, 5));
    let resumes = checkpoint_at(dir.path(), &[18]).await;
    let config = config(dir.path(), "*.log");
    let differ = [resumes[0].clone(), vec![]];
    assert!(
        FileSource::shared(config.clone(), &differ)
            .unwrap()
            .is_none()
    );
    let same = [resumes[0].clone(), resumes[0].clone()];
    assert!(FileSource::shared(config, &same).unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_takes_nothing_is_detached_and_reads_on_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.log");
    append(&file, &lines(0, 20));
    let offsets = [45, 90];
    let resumes = checkpoint_at(dir.path(), &offsets).await;
    let mut run = SharedRun::start(dir.path(), &resumes);
    let shards = &mut run.shards;

    // Shard 1 takes nothing while appends fill its channel (4 events): shard 0
    // still gets every one of them.
    for round in 0..12 {
        append(&file, &lines(20 + round * 3, 3));
        let written = std::fs::metadata(&file).unwrap().len() as usize;
        shards[0].until(written - 45).await;
    }
    // Then it takes what it was sent and reads on through a source of its own:
    // every record past its offset once, in order.
    let written = std::fs::read(&file).unwrap();
    shards[1].until(written.len() - 90).await;
    assert_eq!(shards[1].delivered.all_data(), &written[90..]);
    append(&file, &lines(56, 4));
    let written = std::fs::read(&file).unwrap();
    for (shard, offset) in shards.iter_mut().zip(offsets) {
        shard.until(written.len() - offset as usize).await;
        assert_eq!(shard.delivered.all_data(), &written[offset as usize..]);
    }

    run.end(true).await;
}

/// What a reader was sent, less the chunks' boundaries (which depend on when
/// reads happen): its records and its other events.
fn seen(delivered: &Delivered) -> (Vec<u8>, Vec<String>) {
    let events = delivered
        .events
        .iter()
        .filter(|e| !e.starts_with("Chunk"))
        .cloned()
        .collect();
    (delivered.all_data(), events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_shorter_than_one_readers_offset_is_truncated_for_that_reader_only() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.log");
    append(&file, &lines(0, 50));
    let offsets = [90, 360];
    let resumes = checkpoint_at(dir.path(), &offsets).await;
    // While they were down, the file lost its tail: 270 bytes are left, the
    // same first bytes (so the same file as far as its key goes). The reader at
    // 90 reads on; the one at 360 takes it as truncated and reads it again.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(270)
        .unwrap();
    let expected = [270 - 90, 270];

    let mut run = SharedRun::start(dir.path(), &resumes);
    for (shard, bytes) in run.shards.iter_mut().zip(expected) {
        shard.until(bytes).await;
    }
    let shards = run.end(true).await;

    // Each saw what a source of its own would have sent it.
    for ((shard, resume), bytes) in shards.iter().zip(&resumes).zip(expected) {
        let mut own = Running::start(config(dir.path(), "*.log"), resume.clone(), 16);
        own.until("its own source's records", |d| d.data_len() == bytes)
            .await;
        let own = own.stop().await;
        assert_eq!(seen(&shard.delivered), seen(&own), "{:#?}", shard.delivered);
    }
}

/// Records of varied length, `r<i>` first, each ending with a newline; and the
/// offset just past each.
fn varied(rng: &mut XorShift, from: usize, n: usize) -> (String, Vec<usize>) {
    let mut text = String::new();
    let mut ends = Vec::new();
    for i in from..from + n {
        text.push_str(&format!("r{i}-{}\n", "x".repeat(rng.below(40) as usize)));
        ends.push(text.len());
    }
    (text, ends)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_reader_of_a_shared_source_sees_what_a_source_of_its_own_would() {
    let mut rng = XorShift(0x05ee_d0f5_a4ed);
    for case in 0..48 {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.log");
        let n = 20 + rng.below(40) as usize;
        let (text, ends) = varied(&mut rng, 0, n);
        append(&file, &text);
        // Two or three readers, each at a record's end (or at 0), some equal.
        let readers = 2 + rng.below(2) as usize;
        let offsets: Vec<u64> = (0..readers)
            .map(|_| match rng.below(ends.len() as u64 + 1) as usize {
                0 => 0,
                i => ends[i - 1] as u64,
            })
            .collect();
        let resumes = checkpoint_at(dir.path(), &offsets).await;
        // While down: more records, the tail cut at a record's end (its first
        // bytes kept, or not even those), or nothing.
        match rng.below(3) {
            0 => {
                let n = 1 + rng.below(20) as usize;
                append(&file, &varied(&mut rng, 1000, n).0);
            }
            1 => {
                // Mostly past the first 256 bytes, so that it is the same file.
                let kept: Vec<usize> = match rng.below(3) {
                    0 => ends.clone(),
                    _ => ends.iter().copied().filter(|e| *e >= 256).collect(),
                };
                let at = kept[rng.below(kept.len() as u64) as usize] as u64;
                let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
                f.set_len(at).unwrap();
            }
            _ => {}
        }
        let size = std::fs::metadata(&file).unwrap().len();
        // What a reader at `offset` gets: the rest of the same file, or all of
        // it again when it is shorter than its offset or no longer the same file
        // (its first 256 bytes changed).
        let expected = |offset: u64| match size >= 256 && offset <= size {
            true => (size - offset) as usize,
            false => size as usize,
        };

        // A third of the cases route each record to one reader by its number,
        // holding chunks back from the others: each still sees every record.
        let route = (rng.below(3) == 0).then(|| by_number(readers));
        let mut run = SharedRun::start_routed(dir.path(), &resumes, route);
        for (shard, offset) in run.shards.iter_mut().zip(&offsets) {
            shard.until(expected(*offset)).await;
        }
        let shards = run.end(true).await;

        for ((shard, resume), offset) in shards.iter().zip(&resumes).zip(&offsets) {
            let mut own = Running::start(config(dir.path(), "*.log"), resume.clone(), 16);
            let bytes = expected(*offset);
            own.until("its own source's records", |d| d.data_len() == bytes)
                .await;
            let own = own.stop().await;
            assert_eq!(
                seen(&shard.delivered),
                seen(&own),
                "case {case}: offsets {offsets:?}, size {size}: {:#?}",
                shard.delivered
            );
        }
    }
}

/// A route that gives record `r<i>-...` or `line-<i>` to reader `i % readers`.
fn by_number(readers: usize) -> Route {
    Arc::new(move |records: &[u8], owners: &mut [bool]| {
        for record in records.split_inclusive(|b| *b == b'\n') {
            let digits: String = record
                .iter()
                .skip_while(|b| !b.is_ascii_digit())
                .take_while(|b| b.is_ascii_digit())
                .map(|b| *b as char)
                .collect();
            let i: usize = digits.parse().expect("a numbered record");
            owners[i % readers] = true;
        }
    })
}

/// The chunks a reader was sent: `(start, end)` of each.
fn chunk_spans(events: &[SourceEvent]) -> Vec<(u64, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Chunk(c) => Some((c.start, c.end)),
            _ => None,
        })
        .collect()
}

impl Shard {
    /// Receives until `bytes` record bytes have arrived, keeping the events.
    async fn until_keeping(&mut self, bytes: usize, kept: &mut Vec<SourceEvent>) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.delivered.data_len() < bytes {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(event)) => {
                    self.delivered.apply(&event);
                    kept.push(event);
                }
                Ok(None) => panic!("channel closed; delivered: {:#?}", self.delivered),
                Err(_) => panic!("timed out; delivered: {:#?}", self.delivered),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_is_sent_the_chunks_it_has_no_record_in_joined_to_its_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.log");
    append(&file, &lines(0, 2));
    let resumes = checkpoint_at(dir.path(), &[18, 18]).await;
    let mut run = SharedRun::start_routed(dir.path(), &resumes, Some(by_number(2)));
    let [zero, one] = &mut run.shards[..] else {
        unreachable!()
    };

    // Three appends of reader 0's records only, each read on its own (reader 0
    // has it before the next is written), then one of reader 1's.
    let (mut to_zero, mut to_one) = (Vec::new(), Vec::new());
    for (i, first) in [2, 4, 6].into_iter().enumerate() {
        append(&file, &lines(first, 1));
        zero.until_keeping(9 * (i + 1), &mut to_zero).await;
    }
    append(&file, &lines(9, 1));
    one.until_keeping(36, &mut to_one).await;
    zero.until_keeping(36, &mut to_zero).await;

    // Reader 0 was woken for each of its records, and got reader 1's once it
    // was due; reader 1 once, for all four (unless they were held past their
    // bound, when what was held came alone first).
    assert_eq!(
        chunk_spans(&to_zero),
        vec![(18, 27), (27, 36), (36, 45), (45, 54)]
    );
    let spans = chunk_spans(&to_one);
    assert_eq!(spans.last().map(|s| s.1), Some(54));
    assert!(
        spans == vec![(18, 54)] || spans == vec![(18, 45), (45, 54)],
        "reader 1 was sent {spans:?}"
    );
    assert_eq!(
        one.delivered.all_data(),
        std::fs::read(&file).unwrap()[18..]
    );
    run.end(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_held_back_is_sent_once_it_is_due_or_the_reader_stops() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.log");
    append(&file, &lines(0, 2));
    let resumes = checkpoint_at(dir.path(), &[18, 18, 18]).await;
    let mut run = SharedRun::start_routed(dir.path(), &resumes, Some(by_number(3)));

    // Records for reader 0 only (3, 6, 9).
    append(&file, &(lines(3, 1) + &lines(6, 1) + &lines(9, 1)));
    run.shards[0].until(27).await;
    let written = std::fs::read(&file).unwrap();

    // Reader 2 stops at once, long before they are due: what is held is sent
    // before its channel closes (its pipeline drains the channel and saves
    // where it got).
    run.shards[2].stop.cancel();
    run.shards[2].until_closed().await;
    assert_eq!(run.shards[2].delivered.all_data(), &written[18..]);

    // Reader 1 gets them once they are due, with nothing of its own to join
    // them to.
    run.shards[1].until(27).await;
    assert_eq!(run.shards[1].delivered.all_data(), &written[18..]);
    run.end(true).await;
}
