//! Shared harness: a recording sink, a follower on its own thread, and a
//! writer that numbers every line so tests can assert the exact multiset.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chainwatch_follow::{Event, FollowConfig, FollowError, Follower, Sink, StopHandle};

pub const DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Ready,
    Opened(PathBuf, u64),
    Rotated(PathBuf),
    Truncated(PathBuf),
    Closed(PathBuf),
    LineTruncated(PathBuf),
    Error(PathBuf, String),
    /// read, watch, checkpoint
    Problems(usize, usize, usize),
    SkippedCompressed(PathBuf, &'static str),
    CheckpointWritten,
}

#[derive(Debug, Default)]
pub struct Recorder {
    /// How often each sequence number arrived.
    pub counts: HashMap<u64, u32>,
    pub total_seq_lines: usize,
    /// Lines without a `seq=` prefix (headers, garbage).
    pub other: Vec<Vec<u8>>,
    /// Every line verbatim, unless disabled for volume.
    pub raw: Vec<Vec<u8>>,
    pub keep_raw: bool,
    pub events: Vec<Ev>,
    /// Chunks violating the "complete lines only" contract.
    pub bad_chunks: usize,
}

impl Recorder {
    fn record(&mut self, chunk: &[u8]) {
        if chunk.last() != Some(&b'\n') {
            self.bad_chunks += 1;
        }
        for line in chunk.split_inclusive(|&b| b == b'\n') {
            if self.keep_raw {
                self.raw.push(line.to_vec());
            }
            match parse_seq(line) {
                Some(n) => {
                    *self.counts.entry(n).or_default() += 1;
                    self.total_seq_lines += 1;
                }
                None => self.other.push(line.to_vec()),
            }
        }
    }

    pub fn seen(&self, n: u64) -> bool {
        self.counts.contains_key(&n)
    }

    pub fn has_all(&self, expected: &[u64]) -> bool {
        expected.iter().all(|n| self.counts.contains_key(n))
    }

    pub fn count_events(&self, f: impl Fn(&Ev) -> bool) -> usize {
        self.events.iter().filter(|e| f(e)).count()
    }

    /// Each expected number exactly once, nothing else.
    pub fn assert_exact(&self, expected: &[u64]) {
        assert_eq!(self.bad_chunks, 0, "chunks not ending in a newline");
        let mut want: BTreeMap<u64, u32> = BTreeMap::new();
        for &n in expected {
            *want.entry(n).or_default() += 1;
        }
        let missing: Vec<u64> = want
            .keys()
            .filter(|n| !self.counts.contains_key(n))
            .copied()
            .collect();
        let dup: Vec<(u64, u32)> = self
            .counts
            .iter()
            .filter(|(_, &c)| c > 1)
            .map(|(&n, &c)| (n, c))
            .collect();
        let extra: Vec<u64> = self
            .counts
            .keys()
            .filter(|n| !want.contains_key(n))
            .copied()
            .collect();
        if !missing.is_empty() || !dup.is_empty() || !extra.is_empty() {
            panic!(
                "not exact: {} missing (first {:?}), {} duplicated (first {:?}), {} unexpected (first {:?}); other lines: {:?}; events: {:?}",
                missing.len(),
                &missing[..missing.len().min(10)],
                dup.len(),
                &dup[..dup.len().min(10)],
                extra.len(),
                &extra[..extra.len().min(10)],
                self.other.iter().take(5).map(|l| String::from_utf8_lossy(l).into_owned()).collect::<Vec<_>>(),
                self.events.iter().filter(|e| !matches!(e, Ev::CheckpointWritten)).take(40).collect::<Vec<_>>(),
            );
        }
    }

    /// Merges another run's counts (restart tests).
    pub fn merge(&mut self, other: &Recorder) {
        for (&n, &c) in &other.counts {
            *self.counts.entry(n).or_default() += c;
        }
        self.total_seq_lines += other.total_seq_lines;
        self.other.extend(other.other.iter().cloned());
        self.bad_chunks += other.bad_chunks;
        self.events.extend(other.events.iter().cloned());
    }
}

/// `seq=<n>` up to the first space or line end.
pub fn parse_seq(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"seq=")?;
    let end = rest
        .iter()
        .position(|&b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

pub fn line(n: u64) -> String {
    format!("seq={n} payload for line {n}\n")
}

pub fn lines(range: std::ops::Range<u64>) -> String {
    range.map(line).collect()
}

pub struct TestSink {
    pub rec: Arc<Mutex<Recorder>>,
    /// When set, every `lines` call first takes this lock: a test holding it
    /// pauses the follower inside the sink.
    pub gate: Option<Arc<Mutex<()>>>,
    pub entered: Arc<AtomicUsize>,
}

impl Sink for TestSink {
    fn lines(&mut self, _path: &Path, chunk: &[u8]) {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let _held = self.gate.as_ref().map(|g| lock(g));
        lock(&self.rec).record(chunk);
    }

    fn event(&mut self, event: Event<'_>) {
        let ev = match event {
            Event::Ready => Ev::Ready,
            Event::Opened { path, offset } => Ev::Opened(path.into(), offset),
            Event::Rotated { path } => Ev::Rotated(path.into()),
            Event::Truncated { path } => Ev::Truncated(path.into()),
            Event::Closed { path } => Ev::Closed(path.into()),
            Event::LineTruncated { path } => Ev::LineTruncated(path.into()),
            Event::Error { path, error, .. } => Ev::Error(path.into(), error.to_string()),
            Event::Problems {
                read,
                watch,
                checkpoint,
            } => Ev::Problems(read, watch, checkpoint),
            Event::SkippedCompressed { path, format } => {
                Ev::SkippedCompressed(path.into(), format.name())
            }
            Event::CheckpointWritten => Ev::CheckpointWritten,
        };
        lock(&self.rec).events.push(ev);
    }
}

/// A poisoned lock only means another assertion already failed.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn config(patterns: Vec<String>, inotify: bool) -> FollowConfig {
    FollowConfig {
        name: "test".into(),
        patterns,
        use_inotify: inotify,
        poll_interval: Duration::from_millis(if inotify { 200 } else { 40 }),
        rotate_wait: Duration::from_secs(1),
        checkpoint_interval: Duration::from_millis(200),
        ..FollowConfig::default()
    }
}

pub fn pat(dir: &Path, rest: &str) -> String {
    format!("{}/{rest}", dir.display())
}

pub struct Running {
    pub rec: Arc<Mutex<Recorder>>,
    pub entered: Arc<AtomicUsize>,
    stop: StopHandle,
    thread: Option<JoinHandle<Result<(), FollowError>>>,
}

impl Running {
    pub fn start(cfg: FollowConfig) -> Running {
        Self::start_with(cfg, None, true)
    }

    /// Starts the follower on its own thread and waits for `Ready`.
    pub fn start_with(cfg: FollowConfig, gate: Option<Arc<Mutex<()>>>, keep_raw: bool) -> Running {
        let follower = Follower::new(cfg).expect("follower config");
        let stop = follower.stop_handle();
        let rec = Arc::new(Mutex::new(Recorder {
            keep_raw,
            ..Recorder::default()
        }));
        let entered = Arc::new(AtomicUsize::new(0));
        let mut sink = TestSink {
            rec: rec.clone(),
            gate,
            entered: entered.clone(),
        };
        let thread = std::thread::spawn(move || follower.run(&mut sink));
        let r = Running {
            rec,
            entered,
            stop,
            thread: Some(thread),
        };
        r.wait("Ready", |rec| rec.events.contains(&Ev::Ready));
        r
    }

    pub fn rec(&self) -> MutexGuard<'_, Recorder> {
        lock(&self.rec)
    }

    /// Polls `cond` until it holds; fails the test after [`DEADLINE`].
    pub fn wait(&self, what: &str, cond: impl Fn(&Recorder) -> bool) {
        let start = Instant::now();
        loop {
            {
                let rec = self.rec();
                if cond(&rec) {
                    return;
                }
                if start.elapsed() > DEADLINE {
                    let mut seen: Vec<u64> = rec.counts.keys().copied().collect();
                    seen.sort_unstable();
                    panic!(
                        "timed out after {DEADLINE:?} waiting for {what}; {} distinct lines seen (last {:?}); events: {:?}",
                        seen.len(),
                        seen.last(),
                        rec.events.iter().filter(|e| !matches!(e, Ev::CheckpointWritten)).take(40).collect::<Vec<_>>()
                    );
                }
            }
            if let Some(t) = &self.thread {
                assert!(
                    !t.is_finished(),
                    "follower thread ended while waiting for {what}"
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    pub fn wait_lines(&self, expected: &[u64]) {
        self.wait(&format!("{} lines", expected.len()), |r| {
            r.has_all(expected)
        });
    }

    /// Stops, joins, and hands back what was recorded.
    pub fn stop(mut self) -> Recorder {
        self.stop.stop();
        let res = self.thread.take().expect("running").join();
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("follower returned error: {e}"),
            Err(_) => panic!("follower thread panicked"),
        }
        std::mem::take(&mut *lock(&self.rec))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Polls `cond` with the same deadline (for conditions outside the recorder).
pub fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn append(path: &Path, data: &str) {
    append_bytes(path, data.as_bytes());
}

pub fn append_bytes(path: &Path, data: &[u8]) {
    let mut f = open_append(path);
    f.write_all(data).unwrap();
}

pub fn open_append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

pub fn read_checkpoint(state: &Path) -> serde_json::Value {
    let text = fs::read_to_string(state.join("test.checkpoint.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

pub fn range(r: std::ops::Range<u64>) -> Vec<u64> {
    r.collect()
}

/// Generates an inotify and a polling-only test from `fn name(inotify: bool)`.
#[macro_export]
macro_rules! both_modes {
    ($($name:ident),* $(,)?) => {
        mod inotify {
            $(#[test] fn $name() { super::$name(true) })*
        }
        mod polling {
            $(#[test] fn $name() { super::$name(false) })*
        }
    };
}
