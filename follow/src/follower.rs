//! The follow loop: scan, service tracked files, classify new ones,
//! checkpoint, sleep until woken.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::checkpoint::{self, Entry};
use crate::compression::{self, Compression, Sniffed, SNIFF_BYTES};
use crate::config::FollowConfig;
use crate::error::FollowError;
use crate::fingerprint::{head_of, read_full_at, read_head, Head, HEAD_BYTES};
use crate::scan::{self, FileId, Scan};
use crate::sink::{Event, Problem, Sink};
use crate::tracked::Tracked;
use crate::watcher::{self, DirWatcher, WatcherFactory};

/// How many read buffers one file may consume per wake before the others get
/// their turn (the loop then goes round again without sleeping).
const CHUNKS_PER_PASS: u64 = 16;

/// How much of two heads is compared to tell a copy in progress from an
/// unrelated file that merely starts with the same line.
const COPY_PROBE_BYTES: usize = 4096;

/// Follows the files matched by a [`FollowConfig`].
pub struct Follower {
    cfg: FollowConfig,
    stop: Arc<AtomicBool>,
    wake_tx: SyncSender<()>,
    wake_rx: Receiver<()>,
    watcher_factory: Option<WatcherFactory>,
    checkpoint: Option<PathBuf>,
}

/// Stops a running [`Follower`] from any thread.
#[derive(Clone)]
pub struct StopHandle {
    stop: Arc<AtomicBool>,
    wake: SyncSender<()>,
}

impl StopHandle {
    /// Asks the loop to finish the chunk in hand, write the final checkpoint
    /// and return. Wakes it at once.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.wake.try_send(());
    }
}

impl std::fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StopHandle")
            .field("stopped", &self.stop.load(Ordering::Relaxed))
            .finish()
    }
}

impl Follower {
    pub fn new(cfg: FollowConfig) -> Result<Self, FollowError> {
        let factory = cfg.use_inotify.then(watcher::inotify_factory);
        Self::with_watcher_factory(cfg, factory)
    }

    pub(crate) fn with_watcher_factory(
        cfg: FollowConfig,
        watcher_factory: Option<WatcherFactory>,
    ) -> Result<Self, FollowError> {
        cfg.validate()?;
        let checkpoint = match &cfg.state_dir {
            Some(dir) => {
                fs::create_dir_all(dir).map_err(|source| FollowError::StateDir {
                    path: dir.clone(),
                    source,
                })?;
                Some(checkpoint::checkpoint_path(dir, &cfg.name))
            }
            None => None,
        };
        let (wake_tx, wake_rx) = watcher::wake_channel();
        Ok(Follower {
            cfg,
            stop: Arc::new(AtomicBool::new(false)),
            wake_tx,
            wake_rx,
            watcher_factory,
            checkpoint,
        })
    }

    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            stop: Arc::clone(&self.stop),
            wake: self.wake_tx.clone(),
        }
    }

    /// Blocks until stopped. Only a failure to write the final checkpoint is
    /// returned as an error; everything else is reported via
    /// [`Event::Error`] and retried.
    pub fn run(self, sink: &mut dyn Sink) -> Result<(), FollowError> {
        let Follower {
            cfg,
            stop,
            wake_tx,
            wake_rx,
            watcher_factory,
            checkpoint,
        } = self;
        let mut errors = ErrorLog::default();
        let watcher = match watcher_factory {
            None => DirWatcher::disabled(),
            Some(factory) => match DirWatcher::start(factory, wake_tx) {
                Ok(w) => w,
                Err(e) => {
                    let msg = format!("inotify unavailable, falling back to polling: {e}");
                    errors.report(sink, Kind::Watch, Path::new(""), msg);
                    DirWatcher::disabled()
                }
            },
        };
        let mut engine = Engine {
            buf: vec![0; cfg.read_buffer_bytes],
            cfg,
            stop,
            tracked: BTreeMap::new(),
            candidates: BTreeMap::new(),
            skipped: BTreeMap::new(),
            pending: Vec::new(),
            watcher,
            errors,
            checkpoint,
            last_written: None,
            more: false,
        };
        engine.startup(sink, Instant::now());

        let interval = engine.cfg.checkpoint_interval;
        let mut next_checkpoint = Instant::now() + interval;
        while !engine.stopping() {
            engine.pass(sink, Instant::now());
            if engine.stopping() {
                break;
            }
            let now = Instant::now();
            let mut timeout = engine.cfg.poll_interval;
            if engine.checkpoint.is_some() {
                if now >= next_checkpoint {
                    // Failures are reported as events and retried next interval.
                    let _ = engine.write_checkpoint(sink, false);
                    next_checkpoint = now + interval;
                }
                timeout = timeout.min(next_checkpoint.saturating_duration_since(now));
            }
            if engine.more {
                // Data is waiting; a queued wake would only cause an empty pass.
                let _ = wake_rx.try_recv();
                continue;
            }
            match wake_rx.recv_timeout(timeout.max(Duration::from_millis(1))) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                // Cannot happen (the engine's StopHandle side is alive), but
                // never spin if it does.
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(timeout),
            }
        }
        if engine.checkpoint.is_some() {
            engine.write_checkpoint(sink, true)?;
        }
        Ok(())
    }
}

struct Candidate {
    file: File,
    path: PathBuf,
}

/// What is left of a file that was truncated (or closed while a copy of it
/// waited): a file appearing with this fingerprint is its copy and resumes
/// at `offset`.
struct PendingCopy {
    id: FileId,
    fp: u64,
    offset: u64,
    path: PathBuf,
    expires: Instant,
    /// A checkpoint entry whose inode no file had at start. A rename between
    /// the start's scan and its open hides the very file we were reading
    /// (node.log listed, node.log.1 by the time it is opened); when that
    /// inode shows up it resumes at `offset`, as `copy` if it was one.
    reappearing: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Scan,
    Watch,
    File,
    Checkpoint,
}

impl Kind {
    fn problem(self) -> Problem {
        match self {
            Kind::Scan | Kind::File => Problem::Read,
            Kind::Watch => Problem::Watch,
            Kind::Checkpoint => Problem::Checkpoint,
        }
    }
}

/// Reports each distinct problem once until it clears, so a permanently
/// unreadable file does not flood the sink on every wake.
#[derive(Default)]
struct ErrorLog {
    active: HashMap<(Kind, PathBuf), String>,
    /// What the last `Event::Problems` said: read, watch, checkpoint.
    published: (usize, usize, usize),
}

impl ErrorLog {
    fn report(&mut self, sink: &mut dyn Sink, kind: Kind, path: &Path, msg: String) {
        let key = (kind, path.to_path_buf());
        if self.active.get(&key) != Some(&msg) {
            sink.event(Event::Error {
                path,
                error: &msg,
                problem: kind.problem(),
            });
            self.active.insert(key, msg);
        }
    }

    fn clear(&mut self, kind: Kind, path: &Path) {
        if !self.active.is_empty() {
            self.active.remove(&(kind, path.to_path_buf()));
        }
    }

    /// Drops the problems of files that are neither matched nor followed any
    /// more: a file that vanished takes its problem with it.
    fn retain_files(&mut self, keep: impl Fn(&Path) -> bool) {
        if !self.active.is_empty() {
            self.active.retain(|(k, p), _| *k != Kind::File || keep(p));
        }
    }

    /// Tells the sink how many problems are unresolved, when that changed.
    fn publish(&mut self, sink: &mut dyn Sink) {
        let mut now = (0, 0, 0);
        for (kind, _) in self.active.keys() {
            match kind.problem() {
                Problem::Read => now.0 += 1,
                Problem::Watch => now.1 += 1,
                Problem::Checkpoint => now.2 += 1,
            }
        }
        if now != self.published {
            self.published = now;
            sink.event(Event::Problems {
                read: now.0,
                watch: now.1,
                checkpoint: now.2,
            });
        }
    }

    /// Replaces all problems of `kind` with the current list.
    fn replace(&mut self, sink: &mut dyn Sink, kind: Kind, current: Vec<(PathBuf, String)>) {
        self.active
            .retain(|(k, p), _| *k != kind || current.iter().any(|(q, _)| q == p));
        for (p, msg) in current {
            self.report(sink, kind, &p, msg);
        }
    }
}

/// Where a newly tracked file starts.
#[derive(Clone, Copy)]
struct Start {
    offset: u64,
    /// It is the copy of another inode.
    copy: bool,
}

impl Start {
    fn at(offset: u64) -> Self {
        Start {
            offset,
            copy: false,
        }
    }

    fn copy_at(offset: u64) -> Self {
        Start { offset, copy: true }
    }
}

enum Decision {
    Start(Start),
    Defer,
}

/// What a file's first bytes make of it.
enum Look {
    Compressed(Compression),
    /// No complete first line (or magic) yet.
    Wait,
    Text(Head),
}

fn look(file: &File) -> io::Result<Look> {
    let mut buf = [0u8; HEAD_BYTES];
    let n = read_full_at(file, &mut buf, 0)?;
    Ok(match compression::sniff(&buf[..n.min(SNIFF_BYTES)]) {
        Sniffed::Compressed(c) => Look::Compressed(c),
        Sniffed::Undecided => Look::Wait,
        Sniffed::Plain => match head_of(&buf[..n]) {
            Some(h) => Look::Text(h),
            None => Look::Wait,
        },
    })
}

struct Engine {
    cfg: FollowConfig,
    stop: Arc<AtomicBool>,
    tracked: BTreeMap<FileId, Tracked>,
    /// Opened but not yet read: first line incomplete, or a copy in progress.
    candidates: BTreeMap<FileId, Candidate>,
    /// Compressed files the patterns match, never read. Held open until they
    /// leave the scan so that their inode cannot be reused by a new log file
    /// that would then be taken for them.
    skipped: BTreeMap<FileId, File>,
    pending: Vec<PendingCopy>,
    watcher: DirWatcher,
    errors: ErrorLog,
    buf: Vec<u8>,
    checkpoint: Option<PathBuf>,
    last_written: Option<Vec<Entry>>,
    /// A file hit its per-pass budget.
    more: bool,
}

impl Engine {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn pending_ttl(&self) -> Duration {
        self.cfg.rotate_wait.max(self.cfg.poll_interval * 4)
    }

    fn update_watches(&mut self, sink: &mut dyn Sink) {
        if !self.watcher.is_active() {
            return;
        }
        let mut desired = scan::watch_dirs(&self.cfg.patterns);
        // A directory created after `desired` was computed but before its
        // parent's watch was in place sent no event to anyone: look again
        // until the set is stable (bounded, it only deepens).
        for _ in 0..8 {
            let errs = self.watcher.update(&desired);
            self.errors.replace(sink, Kind::Watch, errs);
            let again = scan::watch_dirs(&self.cfg.patterns);
            if again == desired {
                break;
            }
            desired = again;
        }
    }

    fn scan(&mut self, sink: &mut dyn Sink) -> Scan {
        let mut s = scan::scan(&self.cfg.patterns);
        self.errors
            .replace(sink, Kind::Scan, std::mem::take(&mut s.errors));
        s
    }

    /// Opens a scanned file, trusting the identity of the descriptor over the
    /// stat done by the scan (the name may have been replaced in between).
    fn open(&mut self, sink: &mut dyn Sink, path: &Path) -> Option<(FileId, File, u64)> {
        // O_NONBLOCK: should the name have become a FIFO since the scan's
        // stat, opening it must not hang the loop (no effect on regular files).
        let opened = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .and_then(|f| {
                let meta = f.metadata()?;
                Ok((f, meta))
            });
        match opened {
            Ok((f, meta)) if meta.is_file() => {
                self.errors.clear(Kind::File, path);
                Some((FileId::of(&meta), f, meta.len()))
            }
            Ok(_) => None,
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                self.errors
                    .report(sink, Kind::File, path, format!("open failed: {e}"));
                None
            }
        }
    }

    fn track(
        &mut self,
        sink: &mut dyn Sink,
        id: FileId,
        file: File,
        path: PathBuf,
        head: Head,
        start: Start,
    ) {
        sink.event(Event::Opened {
            path: &path,
            offset: start.offset,
        });
        let max = self.cfg.max_line_bytes;
        let t = Tracked::new(file, id, path, Some(head), start.offset, start.copy, max);
        self.tracked.insert(id, t);
    }

    fn skip(&mut self, sink: &mut dyn Sink, id: FileId, file: File, path: &Path, c: Compression) {
        sink.event(Event::SkippedCompressed { path, format: c });
        self.skipped.insert(id, file);
    }

    fn startup(&mut self, sink: &mut dyn Sink, now: Instant) {
        let entries = match &self.checkpoint {
            None => None,
            Some(p) => match checkpoint::load(p) {
                Ok(e) => e,
                Err(e) => {
                    let p = p.clone();
                    // Starting as a first run loses nothing that a garbled
                    // checkpoint could have told us reliably.
                    let msg = format!("checkpoint {e}; starting without checkpoint");
                    self.errors.report(sink, Kind::Checkpoint, &p, msg);
                    None
                }
            },
        };
        self.update_watches(sink);
        let scan = self.scan(sink);

        let mut found: Vec<(FileId, File, PathBuf, Option<Head>, u64)> = Vec::new();
        for id in &scan.order {
            let Some(path) = scan.name_for(id, None) else {
                continue;
            };
            let path = path.to_path_buf();
            let Some((real, file, size)) = self.open(sink, &path) else {
                continue;
            };
            if found.iter().any(|f| f.0 == real) {
                continue;
            }
            let head = match look(&file) {
                Ok(Look::Text(h)) => Some(h),
                Ok(Look::Wait) => None,
                Ok(Look::Compressed(c)) => {
                    self.skip(sink, real, file, &path, c);
                    continue;
                }
                Err(e) => {
                    self.errors
                        .report(sink, Kind::File, &path, format!("read failed: {e}"));
                    continue;
                }
            };
            found.push((real, file, path, head, size));
        }

        match entries {
            None => {
                for (id, file, path, head, size) in found {
                    match head {
                        Some(h) => match offset_after_last_newline(&file, size) {
                            Ok(off) => self.track(sink, id, file, path, h, Start::at(off)),
                            Err(e) => self.errors.report(
                                sink,
                                Kind::File,
                                &path,
                                format!("read failed: {e}"),
                            ),
                        },
                        // No complete line yet, so its end is offset 0.
                        None => {
                            self.candidates.insert(id, Candidate { file, path });
                        }
                    }
                }
            }
            Some(entries) => self.resume(sink, now, found, entries),
        }
        // Positions only: reading starts with the first pass, after Ready.
        self.evaluate_candidates(sink, &scan, now, false);
        self.settle_problems(sink, &scan);
        sink.event(Event::Ready);
    }

    /// Matches the files found at start against the checkpoint.
    fn resume(
        &mut self,
        sink: &mut dyn Sink,
        now: Instant,
        found: Vec<(FileId, File, PathBuf, Option<Head>, u64)>,
        entries: Vec<Entry>,
    ) {
        let mut claimed = vec![false; entries.len()];
        let mut rest = Vec::new();
        // Same inode and same first line: the very file we were reading.
        for (id, file, path, head, size) in found {
            let hit = head.and_then(|h| {
                entries.iter().enumerate().position(|(i, e)| {
                    !claimed[i] && e.dev == id.dev && e.ino == id.ino && e.fingerprint == h.fp
                })
            });
            match (hit, head) {
                (Some(i), Some(h)) => {
                    claimed[i] = true;
                    let e = &entries[i];
                    if size >= e.offset {
                        let start = Start {
                            offset: e.offset,
                            copy: e.copy,
                        };
                        self.track(sink, id, file, path, h, start);
                    } else {
                        // Truncated while we were down; its copy may show up.
                        sink.event(Event::Truncated { path: &path });
                        self.add_pending(id, h.fp, e.offset, path.clone(), now);
                        self.track(sink, id, file, path, h, Start::at(0));
                    }
                }
                _ => rest.push((id, file, path, head, size)),
            }
        }
        // Same first line on another inode: copied or moved onto a new inode
        // while we were down; its bytes up to the offset were counted, and
        // if it is shorter, all of it was (copied, then read further in the
        // original before it was truncated).
        let mut new = Vec::new();
        for (id, file, path, head, size) in rest {
            let hit = head.and_then(|h| {
                let same = |i: &usize| !claimed[*i] && entries[*i].fingerprint == h.fp;
                let mut all = (0..entries.len()).filter(same);
                let covering = all.clone().find(|&i| size >= entries[i].offset);
                covering.or_else(|| all.next())
            });
            match (hit, head) {
                (Some(i), Some(h)) => {
                    claimed[i] = true;
                    let offset = entries[i].offset.min(size);
                    self.track(sink, id, file, path, h, Start::copy_at(offset));
                }
                _ => new.push((id, file, path)),
            }
        }
        // A copy may still be on its way (its first line not written yet).
        for (i, e) in entries.into_iter().enumerate() {
            if !claimed[i] {
                let id = FileId {
                    dev: e.dev,
                    ino: e.ino,
                };
                self.add_pending(id, e.fingerprint, e.offset, e.path, now);
                if let Some(p) = self.pending.last_mut() {
                    p.reappearing = Some(e.copy);
                }
            }
        }
        // Everything else appeared since the last run: read from the start.
        for (id, file, path) in new {
            self.candidates.insert(id, Candidate { file, path });
        }
    }

    fn add_pending(&mut self, id: FileId, fp: u64, offset: u64, path: PathBuf, now: Instant) {
        let expires = now + self.pending_ttl();
        self.pending.push(PendingCopy {
            id,
            fp,
            offset,
            path,
            expires,
            reappearing: None,
        });
    }

    /// One wake's worth of work.
    fn pass(&mut self, sink: &mut dyn Sink, now: Instant) {
        self.more = false;
        self.update_watches(sink);
        let scan = self.scan(sink);

        // Truncation checks (inside service) must precede adoption of new
        // files, so that a copy finds its pending entry in this same pass.
        let ids: Vec<FileId> = self.tracked.keys().copied().collect();
        for id in ids {
            if self.stopping() {
                return;
            }
            self.service(sink, &scan, id, now);
        }
        self.pending.retain(|p| p.expires > now);

        self.candidates.retain(|id, _| scan.files.contains_key(id));
        self.skipped.retain(|id, _| scan.files.contains_key(id));
        let known = |e: &Engine, id: &FileId| {
            e.tracked.contains_key(id)
                || e.candidates.contains_key(id)
                || e.skipped.contains_key(id)
        };
        for id in &scan.order {
            if known(self, id) {
                continue;
            }
            let Some(path) = scan.name_for(id, None) else {
                continue;
            };
            let path = path.to_path_buf();
            let Some((real, file, _)) = self.open(sink, &path) else {
                continue;
            };
            if known(self, &real) {
                continue;
            }
            self.candidates.insert(real, Candidate { file, path });
        }
        if self.stopping() {
            return;
        }
        self.evaluate_candidates(sink, &scan, now, true);
        self.settle_problems(sink, &scan);
    }

    fn settle_problems(&mut self, sink: &mut dyn Sink, scan: &Scan) {
        let tracked = &self.tracked;
        self.errors.retain_files(|p| {
            scan.files.values().flatten().any(|q| q == p) || tracked.values().any(|t| t.path == p)
        });
        self.errors.publish(sink);
    }

    /// Decides for each candidate whose first line is complete whether it is
    /// compressed, the copy of a truncated file, a copy in progress of a live
    /// one, or new.
    fn evaluate_candidates(&mut self, sink: &mut dyn Sink, scan: &Scan, now: Instant, read: bool) {
        let ids: Vec<FileId> = self.candidates.keys().copied().collect();
        for id in ids {
            let Some(c) = self.candidates.get_mut(&id) else {
                continue;
            };
            if let Some(p) = scan.name_for(&id, Some(&c.path)) {
                if p != c.path {
                    c.path = p.to_path_buf();
                }
            }
            let probe = look(&c.file).and_then(|l| Ok((l, c.file.metadata()?.len())));
            let (head, size) = match probe {
                Ok((Look::Text(h), size)) => (h, size),
                Ok((Look::Wait, _)) => continue,
                Ok((Look::Compressed(format), _)) => {
                    if let Some(c) = self.candidates.remove(&id) {
                        self.skip(sink, id, c.file, &c.path, format);
                    }
                    continue;
                }
                Err(e) => {
                    let path = c.path.clone();
                    self.errors
                        .report(sink, Kind::File, &path, format!("read failed: {e}"));
                    continue;
                }
            };
            let decision = self.classify(id, head, size, now);
            if let Decision::Start(start) = decision {
                let Some(c) = self.candidates.remove(&id) else {
                    continue;
                };
                self.track(sink, id, c.file, c.path, head, start);
                if read && !self.stopping() {
                    self.service(sink, scan, id, now);
                }
            }
        }
    }

    fn classify(&mut self, id: FileId, head: Head, size: u64, now: Instant) -> Decision {
        let back = self
            .pending
            .iter()
            .position(|p| p.reappearing.is_some() && p.id == id && p.fp == head.fp);
        if let Some(i) = back {
            let p = self.pending.remove(i);
            if size >= p.offset {
                return Decision::Start(Start {
                    offset: p.offset,
                    copy: p.reappearing == Some(true),
                });
            }
            // Truncated while we were down, as in `resume`.
            self.add_pending(id, p.fp, p.offset, p.path, now);
            return Decision::Start(Start::at(0));
        }
        let matches: Vec<usize> = (0..self.pending.len())
            .filter(|&i| self.pending[i].fp == head.fp && self.pending[i].id != id)
            .collect();
        if !matches.is_empty() {
            // The copy of a file that was truncated. What both share up to the
            // offset was counted; a copy shorter than the offset was taken
            // before the original was read further (logrotate copies, the
            // writer goes on, then it truncates), so all of it was counted.
            // It is complete: nothing truncates a file before its copy is.
            let i = matches
                .iter()
                .copied()
                .find(|&i| size >= self.pending[i].offset)
                .unwrap_or(matches[0]);
            let offset = self.pending.remove(i).offset.min(size);
            return Decision::Start(Start::copy_at(offset));
        }
        let Some(c) = self.candidates.get(&id) else {
            return Decision::Defer;
        };
        let live = self
            .tracked
            .values()
            .find(|t| t.head.map(|h| h.fp) == Some(head.fp));
        match live {
            // Reading a copy in progress from 0 would count its lines twice;
            // wait until the original is truncated (pending copy) or gone.
            Some(t) if !is_unrelated(&c.file, size, t) => Decision::Defer,
            _ => Decision::Start(Start::at(0)),
        }
    }

    /// Name bookkeeping, truncation check, reading, and closing of one file.
    fn service(&mut self, sink: &mut dyn Sink, scan: &Scan, id: FileId, now: Instant) {
        let budget = CHUNKS_PER_PASS * self.buf.len() as u64;
        let Some(t) = self.tracked.get_mut(&id) else {
            return;
        };
        match scan.name_for(&id, Some(&t.path)) {
            Some(p) => {
                if p != t.path {
                    if t.matching {
                        sink.event(Event::Rotated { path: &t.path });
                    }
                    t.path = p.to_path_buf();
                }
                t.matching = true;
            }
            None => {
                if t.matching {
                    sink.event(Event::Rotated { path: &t.path });
                    t.matching = false;
                }
            }
        }

        let mut polled = None;
        // One retry: after a truncation the new content is usually readable
        // straight away, and no further wake may come for it.
        for _ in 0..2 {
            let Some(t) = self.tracked.get_mut(&id) else {
                return;
            };
            match t.poll(&mut self.buf, budget, &self.stop, sink) {
                Err(e) => {
                    let path = t.path.clone();
                    self.errors
                        .report(sink, Kind::File, &path, format!("read failed: {e}"));
                    return;
                }
                Ok(p) => {
                    if let Some((fp, committed)) = p.truncated {
                        sink.event(Event::Truncated { path: &t.path });
                        let path = t.path.clone();
                        t.restart_after_truncation();
                        self.add_pending(id, fp, committed, path, now);
                        continue;
                    }
                    polled = Some(p);
                    break;
                }
            }
        }
        let Some(p) = polled else { return };
        let Some(t) = self.tracked.get_mut(&id) else {
            return;
        };
        self.errors.clear(Kind::File, &t.path);
        if p.stopped {
            return;
        }
        if !p.at_eof {
            self.more = true;
            t.idle_since = None;
            return;
        }
        let deleted = p.nlink == 0;
        if !deleted && t.matching {
            t.idle_since = None;
            return;
        }
        if p.bytes > 0 {
            t.idle_since = Some(now);
        }
        let since = *t.idle_since.get_or_insert(now);
        // A deleted file only gets a short grace for writes racing the
        // unlink; keeping it open longer would pin its disk space.
        let wait = if deleted {
            self.cfg.rotate_wait.min(self.cfg.poll_interval)
        } else {
            self.cfg.rotate_wait
        };
        if now.saturating_duration_since(since) >= wait {
            self.close(sink, id, now);
        }
    }

    fn close(&mut self, sink: &mut dyn Sink, id: FileId, now: Instant) {
        let Some(mut t) = self.tracked.remove(&id) else {
            return;
        };
        if let Err(e) = t.finish(&mut self.buf, sink) {
            let path = t.path.clone();
            self.errors
                .report(sink, Kind::File, &path, format!("read failed: {e}"));
        }
        self.errors.clear(Kind::File, &t.path);
        sink.event(Event::Closed { path: &t.path });
        // A candidate deferred as a copy of this file (cp + rm rotation)
        // resumes where the original ended.
        if let Some(h) = t.head {
            let waiting = self.candidates.values().any(|c| {
                read_head(&c.file)
                    .ok()
                    .flatten()
                    .is_some_and(|ch| ch.fp == h.fp)
            });
            if waiting {
                self.add_pending(id, h.fp, t.committed(), t.path.clone(), now);
            }
        }
    }

    fn entries(&self) -> Vec<Entry> {
        let live = self.tracked.values().filter_map(|t| {
            t.head.map(|h| Entry {
                dev: t.id.dev,
                ino: t.id.ino,
                fingerprint: h.fp,
                offset: t.committed(),
                path: t.path.clone(),
                copy: t.copy,
            })
        });
        let pending = self.pending.iter().map(|p| Entry {
            dev: p.id.dev,
            ino: p.id.ino,
            fingerprint: p.fp,
            offset: p.offset,
            path: p.path.clone(),
            copy: p.reappearing == Some(true),
        });
        live.chain(pending).collect()
    }

    /// Writes when something changed (or when `force`d at stop).
    fn write_checkpoint(&mut self, sink: &mut dyn Sink, force: bool) -> Result<(), FollowError> {
        let Some(path) = self.checkpoint.clone() else {
            return Ok(());
        };
        let entries = self.entries();
        if !force && self.last_written.as_ref() == Some(&entries) {
            return Ok(());
        }
        match checkpoint::store(&path, &entries) {
            Ok(()) => {
                self.errors.clear(Kind::Checkpoint, &path);
                self.last_written = Some(entries);
                sink.event(Event::CheckpointWritten);
                Ok(())
            }
            Err(e) => {
                self.errors
                    .report(sink, Kind::Checkpoint, &path, format!("write failed: {e}"));
                Err(FollowError::Checkpoint { path, source: e })
            }
        }
    }
}

/// True only when the candidate provably differs from `live` within their
/// common prefix while `live` itself is unchanged, i.e. it is not a copy.
fn is_unrelated(candidate: &File, size: u64, live: &Tracked) -> bool {
    let Some(live_head) = live.head else {
        return false;
    };
    let check = || -> io::Result<bool> {
        let live_size = live.file.metadata()?.len();
        let k = (size.min(live_size) as usize).min(COPY_PROBE_BYTES);
        if k <= live_head.len {
            return Ok(false);
        }
        let mut a = vec![0; k];
        let mut b = vec![0; k];
        let na = read_full_at(candidate, &mut a, 0)?;
        let nb = read_full_at(&live.file, &mut b, 0)?;
        let n = na.min(nb);
        if a[..n] == b[..n] {
            return Ok(false);
        }
        // The difference could come from the original having just been
        // truncated and refilled; then the next pass deals with it.
        let unchanged = live.file.metadata()?.len() >= live.read_pos
            && read_head(&live.file)? == Some(live_head);
        Ok(unchanged)
    };
    check().unwrap_or(false)
}

/// Where to start a file that existed before the first run: right after its
/// last newline, so a line being written is counted once completed.
fn offset_after_last_newline(file: &File, size: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut end = size;
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let len = (end - start) as usize;
        let n = read_full_at(file, &mut buf[..len], start)?;
        if let Some(i) = memchr::memrchr(b'\n', &buf[..n]) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_newline_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let at = |content: &[u8]| {
            fs::write(&p, content).unwrap();
            let f = File::open(&p).unwrap();
            offset_after_last_newline(&f, content.len() as u64).unwrap()
        };
        assert_eq!(at(b""), 0);
        assert_eq!(at(b"partial"), 0);
        assert_eq!(at(b"a\nb\n"), 4);
        assert_eq!(at(b"a\nbc"), 2);
        let mut big = b"x\n".to_vec();
        big.extend_from_slice(&[b'y'; 200_000]);
        assert_eq!(at(&big), 2);
    }

    struct Rec(std::sync::Arc<std::sync::Mutex<(Vec<u8>, Vec<String>)>>);
    impl Sink for Rec {
        fn lines(&mut self, _: &Path, chunk: &[u8]) {
            self.0.lock().unwrap().0.extend_from_slice(chunk);
        }
        fn event(&mut self, event: Event<'_>) {
            self.0.lock().unwrap().1.push(format!("{event:?}"));
        }
    }

    /// inotify failing to start must not stop anything: polling takes over.
    #[test]
    fn falls_back_to_polling_when_inotify_fails() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        let cfg = FollowConfig {
            patterns: vec![log.display().to_string()],
            poll_interval: Duration::from_millis(20),
            ..FollowConfig::default()
        };
        let factory: WatcherFactory =
            Box::new(|_| Err(notify::Error::generic("simulated inotify failure")));
        let f = Follower::with_watcher_factory(cfg, Some(factory)).unwrap();
        let stop = f.stop_handle();
        let state = std::sync::Arc::new(std::sync::Mutex::new((Vec::new(), Vec::new())));
        let mut sink = Rec(state.clone());
        let t = std::thread::spawn(move || f.run(&mut sink));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !state.lock().unwrap().1.iter().any(|e| e == "Ready") {
            assert!(Instant::now() < deadline, "never ready");
            std::thread::sleep(Duration::from_millis(5));
        }
        fs::write(&log, b"one\ntwo\n").unwrap();
        while state.lock().unwrap().0 != b"one\ntwo\n" {
            assert!(Instant::now() < deadline, "lines never arrived");
            std::thread::sleep(Duration::from_millis(5));
        }
        stop.stop();
        t.join().unwrap().unwrap();
        let events = state.lock().unwrap().1.clone();
        assert!(
            events[0].contains("Error") && events[0].contains("falling back to polling"),
            "{events:?}"
        );
    }
}
