//! Where a source's events go: one reader, or the shards of a pipeline reading
//! one source together.
//!
//! Each shard of a sharded pipeline keeps its own offsets and checkpoint, so the
//! shards of one source may resume a file at different offsets (they checkpoint
//! apart). A shared source then resumes each file at the lowest of them and cuts
//! its reads at the others ([`Resumes::cuts`]), so that every chunk ends at or
//! before each shard's offset or starts at or after it; a shard is not sent the
//! chunks it had processed already ([`Reader`]'s floors), and its `Opened` names
//! its own offset. Every other event goes to every reader, in order.
//!
//! With a [`Route`] (the shards' keys), a chunk none of whose records are for a
//! reader is held back from it and sent later, joined to the next one it takes
//! (`hold.rs`): a shard is woken for its own records, not for every record.
//!
//! A reader stops taking events when its `stop` fires (its channel then closes
//! and its pipeline drains); the others go on. Each channel is bounded, so a slow
//! reader holds the others back, but not for long: one that takes nothing for
//! [`DETACH_AFTER`] (its pipeline paused by a quarantine, or far behind) is
//! detached and reads on through a source of its own, from just past the last
//! event it was sent. So is one whose offset in a file lies past the file's end
//! at the start (truncated while the shards were down, as far as that one can
//! tell): its own source takes the file as truncated, while the others read on.

use std::collections::{BTreeSet, HashMap};
use std::future::{Future, poll_fn};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::FileSourceConfig;
use crate::event::{FileCheckpoint, SourceEvent};
use crate::fingerprint::FileKey;
use crate::hold::{Held, Route};
use crate::source::FileSource;
use crate::stats::SourceStats;

/// How long a reader of a shared source may leave its full channel untouched
/// before it is detached (it then reads through a source of its own).
pub const DETACH_AFTER: Duration = Duration::from_secs(1);

/// One consumer of a source's events.
#[derive(Debug)]
pub struct Reader {
    /// Where its events go (waits while full).
    pub tx: mpsc::Sender<SourceEvent>,
    /// Fires when it takes no more events: the source drops `tx` and goes on
    /// for the other readers.
    pub stop: CancellationToken,
}

/// The checkpointed positions of several readers of one source, merged.
#[derive(Debug, Default)]
pub(crate) struct Resumes {
    /// Each file at the lowest offset any reader has for it.
    pub merged: Vec<FileCheckpoint>,
    /// Per reader (in order): the files it had read further than `merged`, with
    /// its offset in each.
    pub floors: Vec<HashMap<FileKey, u64>>,
    /// Per file: the offsets where reads must end (the readers' higher offsets).
    pub cuts: HashMap<FileKey, Vec<u64>>,
}

impl Resumes {
    /// One reader resuming from `resume`.
    pub fn single(resume: Vec<FileCheckpoint>) -> Resumes {
        Resumes {
            merged: resume,
            floors: vec![HashMap::new()],
            cuts: HashMap::new(),
        }
    }

    /// The readers' positions merged, or `None` if their checkpoints do not name
    /// the same files: a file one has and another lacks is ambiguous (finished
    /// and forgotten by one, or never seen), so each reader should then read on
    /// its own.
    pub fn merge(resumes: &[Vec<FileCheckpoint>]) -> Option<Resumes> {
        let files = |r: &Vec<FileCheckpoint>| r.iter().map(|c| c.file).collect::<BTreeSet<_>>();
        let first = files(resumes.first()?);
        if first.len() != resumes[0].len() || resumes.iter().any(|r| files(r) != first) {
            return None;
        }
        let mut merged: HashMap<FileKey, FileCheckpoint> = HashMap::new();
        for cp in resumes.iter().flatten() {
            merged
                .entry(cp.file)
                .and_modify(|m| {
                    if cp.offset < m.offset {
                        *m = cp.clone();
                    }
                })
                .or_insert_with(|| cp.clone());
        }
        let floors: Vec<HashMap<FileKey, u64>> = resumes
            .iter()
            .map(|r| {
                r.iter()
                    .filter(|c| c.offset > merged[&c.file].offset)
                    .map(|c| (c.file, c.offset))
                    .collect()
            })
            .collect();
        let mut cuts: HashMap<FileKey, Vec<u64>> = HashMap::new();
        for (file, offset) in floors.iter().flatten() {
            cuts.entry(*file).or_default().push(*offset);
        }
        for offsets in cuts.values_mut() {
            offsets.sort_unstable();
            offsets.dedup();
        }
        let mut merged: Vec<FileCheckpoint> = merged.into_values().collect();
        merged.sort_by_key(|c| c.file);
        Some(Resumes {
            merged,
            floors,
            cuts,
        })
    }
}

/// A reader with what it must not be sent again.
struct Live {
    reader: Reader,
    /// Its place among the readers it was started with (its entry in a route's
    /// answer).
    index: usize,
    /// Chunks held back from it: none of their records is for it.
    held: Held,
    floors: HashMap<FileKey, u64>,
    /// Where it is in each open file, as far as it was sent (kept only when it
    /// can be detached: the checkpoint its own source would resume from).
    positions: HashMap<FileKey, FileCheckpoint>,
}

impl Live {
    /// Notes an event it was sent.
    fn sent(&mut self, event: &SourceEvent) {
        match event {
            SourceEvent::Opened { file, path, offset } => {
                let size = self
                    .positions
                    .get(file)
                    .map_or(*offset, |p| p.size.max(*offset));
                self.positions.insert(
                    *file,
                    FileCheckpoint {
                        file: *file,
                        path: path.to_path_buf(),
                        offset: *offset,
                        size,
                    },
                );
            }
            SourceEvent::Chunk(chunk) => {
                if let Some(p) = self.positions.get_mut(&chunk.file) {
                    p.offset = chunk.end;
                    p.size = chunk.file_size;
                    if *p.path != *chunk.path {
                        p.path = chunk.path.to_path_buf();
                    }
                }
            }
            SourceEvent::Truncated { file, .. } | SourceEvent::Closed { file } => {
                self.positions.remove(file);
            }
            SourceEvent::Rotated { .. } => {}
        }
    }

    /// The event as this reader is to see it, or `None` if it had processed it.
    fn filter(&mut self, event: &SourceEvent) -> Option<SourceEvent> {
        if self.floors.is_empty() {
            return Some(event.clone());
        }
        match event {
            SourceEvent::Opened { file, path, offset } => match self.floors.get(file) {
                Some(floor) if floor > offset => Some(SourceEvent::Opened {
                    file: *file,
                    path: path.clone(),
                    offset: *floor,
                }),
                _ => Some(event.clone()),
            },
            SourceEvent::Chunk(chunk) => match self.floors.get(&chunk.file) {
                Some(floor) if chunk.end <= *floor => None,
                Some(floor) => {
                    if chunk.start < *floor {
                        // Reads are cut at the floor, so only an offset that was not a
                        // record's end gets here: the chunk is passed whole.
                        tracing::warn!(path = %chunk.path.display(), offset = floor, "a shard's checkpointed offset is not at a record's end");
                    }
                    self.floors.remove(&chunk.file);
                    Some(event.clone())
                }
                None => Some(event.clone()),
            },
            SourceEvent::Truncated { file, .. } | SourceEvent::Closed { file } => {
                self.floors.remove(file);
                Some(event.clone())
            }
            SourceEvent::Rotated { .. } => Some(event.clone()),
        }
    }

    /// Appends to `out` what this reader is to be sent now for `event`
    /// (filtered): a chunk with none of its records (`wants` says) is held
    /// back; a chunk it takes goes joined to what is held of its file; any other
    /// event goes after everything held.
    fn route(
        &mut self,
        event: SourceEvent,
        wants: Option<&[bool]>,
        max_bytes: usize,
        out: &mut Vec<SourceEvent>,
    ) {
        match event {
            SourceEvent::Chunk(chunk) => match wants {
                Some(wants) if !wants.get(self.index).copied().unwrap_or(true) => {
                    self.held.hold(chunk, max_bytes, out)
                }
                _ => self.held.take(chunk, max_bytes, out),
            },
            event => {
                self.held.flush(out);
                out.push(event);
            }
        }
    }
}

/// How sending one event to a reader ended.
enum Delivery {
    /// It took it.
    Sent,
    /// It is gone (stopped, or its receiver dropped).
    Gone,
    /// It left its full channel untouched for [`DETACH_AFTER`].
    Slow,
    /// The source was cancelled meanwhile.
    Cancelled,
}

/// Sends `event` to `live`, waiting while its channel is full (for at most
/// [`DETACH_AFTER`] unless `patient`); notes what it was sent if `track`.
async fn deliver(
    live: &mut Live,
    event: SourceEvent,
    patient: bool,
    track: bool,
    cancel: &CancellationToken,
) -> Delivery {
    let tracked = track.then(|| event.clone());
    let unsent = match live.reader.tx.try_send(event) {
        Ok(()) => None,
        Err(TrySendError::Closed(_)) => {
            live.reader.stop.cancel();
            return Delivery::Gone;
        }
        Err(TrySendError::Full(event)) => Some(event),
    };
    if let Some(event) = unsent {
        let patience = async {
            match patient {
                false => tokio::time::sleep(DETACH_AFTER).await,
                true => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Delivery::Cancelled,
            _ = live.reader.stop.cancelled() => return Delivery::Gone,
            sent = live.reader.tx.send(event) => if sent.is_err() {
                live.reader.stop.cancel();
                return Delivery::Gone;
            },
            _ = patience => return Delivery::Slow,
        }
    }
    if let Some(event) = tracked {
        live.sent(&event);
    }
    Delivery::Sent
}

/// What a slow reader's own source is made from.
pub(crate) struct Detach {
    /// The shared source's config.
    pub config: FileSourceConfig,
    /// The shared source's counters (a detached reader's source counts there too).
    pub stats: Arc<SourceStats>,
}

/// The readers a source still sends to.
pub(crate) struct Readers {
    live: Vec<Live>,
    /// Which readers a chunk's records are for (shards' keys), if any.
    route: Option<Route>,
    /// The route's answer for the chunk being sent, one entry per reader started.
    wants: Vec<bool>,
    /// The largest chunk a reader is sent (held chunks are joined up to it).
    max_bytes: usize,
    /// What is being sent to one reader (kept for its allocation).
    out: Vec<SourceEvent>,
    /// Set when there are several readers at the start.
    detach: Option<Detach>,
    /// The sources of detached readers.
    detached: Vec<JoinHandle<()>>,
}

impl Readers {
    /// `readers` in the order of `resume.floors`; with several, a slow one is
    /// detached through `detach`, and a chunk none of whose records `route`
    /// gives a reader is held back from it (joined up to `max_bytes`).
    pub fn new(
        readers: Vec<Reader>,
        resume: &Resumes,
        detach: Detach,
        route: Option<Route>,
        max_bytes: usize,
    ) -> Readers {
        let started = readers.len();
        debug_assert_eq!(readers.len(), resume.floors.len());
        let detach = (readers.len() > 1).then_some(detach);
        let floors = resume.floors.iter().cloned();
        let live = readers
            .into_iter()
            .zip(floors.chain(std::iter::repeat_with(HashMap::new)))
            .enumerate()
            .map(|(index, (reader, floors))| {
                // Until a file is opened, a detached reader resumes it from its own
                // checkpoint.
                let positions = match detach {
                    Some(_) => resume
                        .merged
                        .iter()
                        .map(|cp| {
                            let offset = floors.get(&cp.file).copied().unwrap_or(cp.offset);
                            (
                                cp.file,
                                FileCheckpoint {
                                    offset,
                                    ..cp.clone()
                                },
                            )
                        })
                        .collect(),
                    None => HashMap::new(),
                };
                Live {
                    reader,
                    index,
                    held: Held::default(),
                    floors,
                    positions,
                }
            })
            .collect();
        Readers {
            live,
            route: route.filter(|_| started > 1),
            wants: vec![false; started],
            max_bytes,
            out: Vec::new(),
            detach,
            detached: Vec::new(),
        }
    }

    /// Whether no reader is left.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Sends `events` in order to every reader (as each is to see them), then
    /// what is held and due. A reader whose `stop` fires, or whose receiver is
    /// gone, is dropped. `false` if none is left or `cancel` fired.
    pub async fn send_all(&mut self, cancel: &CancellationToken, events: Vec<SourceEvent>) -> bool {
        for event in events {
            let asked = self.route_chunk(&event);
            let wants = std::mem::take(&mut self.wants);
            let max_bytes = self.max_bytes;
            let sent = self
                .send_each(cancel, |live, out| {
                    if let Some(event) = live.filter(&event) {
                        live.route(event, asked.then_some(&wants[..]), max_bytes, out);
                    }
                })
                .await;
            self.wants = wants;
            if !sent {
                return false;
            }
        }
        self.flush_due(cancel).await
    }

    /// Sends every reader what is held for it if the oldest of it is due. Same
    /// result as [`Self::send_all`].
    pub async fn flush_due(&mut self, cancel: &CancellationToken) -> bool {
        let now = tokio::time::Instant::now();
        if !self
            .live
            .iter()
            .any(|l| l.held.due().is_some_and(|due| due <= now))
        {
            return !cancel.is_cancelled();
        }
        self.send_each(cancel, |live, out| {
            if live.held.due().is_some_and(|due| due <= now) {
                live.held.flush(out);
            }
        })
        .await
    }

    /// When something held is next due to be sent, if anything is held.
    pub fn hold_due(&self) -> Option<tokio::time::Instant> {
        self.live.iter().filter_map(|l| l.held.due()).min()
    }

    /// Asks the route which readers `event`'s records are for (into
    /// `self.wants`), if it is a chunk with records, there is a route and more
    /// than one reader left; whether it asked.
    fn route_chunk(&mut self, event: &SourceEvent) -> bool {
        let (Some(route), SourceEvent::Chunk(chunk)) = (&self.route, event) else {
            return false;
        };
        if chunk.data.is_empty() || self.live.len() < 2 {
            return false;
        }
        self.wants.fill(false);
        route(&chunk.data, &mut self.wants);
        true
    }

    /// Sends each reader, in order, what `what` puts in its list. A reader whose
    /// `stop` fires, or whose receiver is gone, is dropped; a slow one detached.
    /// `false` if none is left or `cancel` fired.
    async fn send_each(
        &mut self,
        cancel: &CancellationToken,
        mut what: impl FnMut(&mut Live, &mut Vec<SourceEvent>),
    ) -> bool {
        let mut gone = false;
        let mut slow = Vec::new();
        // A slow reader is detached only if it holds others back.
        let patient = self.detach.is_none() || self.live.len() < 2;
        let track = self.detach.is_some();
        let mut out = std::mem::take(&mut self.out);
        'readers: for (i, live) in self.live.iter_mut().enumerate() {
            if live.reader.stop.is_cancelled() {
                gone = true;
                continue;
            }
            out.clear();
            what(live, &mut out);
            for event in out.drain(..) {
                match deliver(live, event, patient, track, cancel).await {
                    Delivery::Sent => {}
                    Delivery::Gone => {
                        gone = true;
                        continue 'readers;
                    }
                    Delivery::Slow => {
                        slow.push(i);
                        continue 'readers;
                    }
                    Delivery::Cancelled => return false,
                }
            }
        }
        out.clear();
        self.out = out;
        for i in slow.into_iter().rev() {
            let live = self.live.remove(i);
            self.detach_reader(live, cancel, "a shard took nothing for a second");
        }
        if gone {
            self.drop_stopped();
        }
        !self.live.is_empty() && !cancel.is_cancelled()
    }

    /// Detaches the readers whose offset in one of these files is past its size
    /// (the file was truncated while they were down, as far as they can tell):
    /// their own source takes the file as truncated, as it would have without
    /// the others.
    pub fn detach_past(&mut self, shorter: Vec<(FileKey, u64)>, cancel: &CancellationToken) {
        for (file, size) in shorter {
            let mut i = 0;
            while i < self.live.len() {
                if self.live[i].floors.get(&file).is_some_and(|f| *f > size) {
                    let live = self.live.remove(i);
                    self.detach_reader(live, cancel, "a file is shorter than a shard's offset");
                } else {
                    i += 1;
                }
            }
        }
    }

    /// Hands a reader a source of its own, resuming where it was sent to; `why`
    /// for the log.
    fn detach_reader(&mut self, live: Live, cancel: &CancellationToken, why: &str) {
        let Some(detach) = &self.detach else {
            return;
        };
        let resume: Vec<FileCheckpoint> = live.positions.into_values().collect();
        let name = detach.config.name.clone();
        tracing::warn!(source = %name, files = resume.len(), "{why}: it reads the files through a source of its own now");
        let source = match FileSource::new(detach.config.clone(), resume) {
            Ok(source) => source.with_stats(detach.stats.clone()),
            Err(error) => {
                // The config was valid when the shared source was made.
                tracing::error!(source = %name, %error, "cannot detach a slow shard; it stops");
                live.reader.stop.cancel();
                return;
            }
        };
        let reader = live.reader;
        let cancel = cancel.clone();
        self.detached.push(tokio::spawn(async move {
            if let Err(error) = source.run_readers(vec![reader], cancel).await {
                tracing::error!(source = %name, %error, "a detached shard's file source failed");
            }
        }));
    }

    /// Waits for the sources of detached readers (they end with their readers
    /// or with the source's cancellation).
    pub async fn finish(self) {
        for task in self.detached {
            let _ = task.await;
        }
    }

    /// Drops the readers whose `stop` fired (closing their channels), sending
    /// each what is held for it if its channel has room (its pipeline drains
    /// the channel; what does not fit is skipped again after a restart).
    pub fn drop_stopped(&mut self) {
        let out = &mut self.out;
        self.live.retain_mut(|l| {
            if !l.reader.stop.is_cancelled() {
                return true;
            }
            out.clear();
            l.held.flush(out);
            for event in out.drain(..) {
                if l.reader.tx.try_send(event).is_err() {
                    break;
                }
            }
            false
        });
    }

    /// Resolves when some reader's `stop` fires (never if there is none). The
    /// source waits on it at every idle turn: with one reader (every source but a
    /// shared one) it allocates nothing.
    pub async fn some_stopped(&self) {
        if let [only] = self.live.as_slice() {
            return only.reader.stop.cancelled().await;
        }
        let mut waits: Vec<_> = self
            .live
            .iter()
            .map(|l| Box::pin(l.reader.stop.cancelled()))
            .collect();
        poll_fn(|cx| {
            for wait in &mut waits {
                if wait.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
            }
            Poll::Pending
        })
        .await
    }
}
