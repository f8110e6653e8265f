//! Shared harness: real journal files written by `systemd-journal-remote`
//! from export format, a recording sink, a reader on its own thread.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chainwatch_journal::{Event, JournalConfig, JournalError, JournalReader, Sink, StopHandle};

pub const DEADLINE: Duration = Duration::from_secs(60);

pub const BOOT_A: &str = "0123456789abcdef0123456789abcdef";
pub const BOOT_B: &str = "fedcba9876543210fedcba9876543210";

const JOURNAL_REMOTE: [&str; 2] = [
    "/lib/systemd/systemd-journal-remote",
    "/usr/lib/systemd/systemd-journal-remote",
];

/// The real tools, or a failure naming the Debian package: nothing is
/// skipped silently.
pub fn journal_remote() -> PathBuf {
    JOURNAL_REMOTE
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "systemd-journal-remote not found at {JOURNAL_REMOTE:?}: install the Debian package \
                 `systemd-journal-remote` (scripts/test.sh does)"
            )
        })
}

pub fn require_journalctl() {
    match Command::new("journalctl").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        other => {
            panic!("journalctl is not runnable ({other:?}): install the Debian package `systemd`")
        }
    }
}

/// One journal entry to write.
#[derive(Debug, Clone)]
pub struct Entry {
    pub boot: &'static str,
    pub unit: String,
    pub ident: String,
    /// `None`: no MESSAGE field at all.
    pub message: Option<Vec<u8>>,
}

impl Entry {
    pub fn msg(unit: &str, message: impl Into<Vec<u8>>) -> Entry {
        Entry {
            boot: BOOT_A,
            unit: unit.to_string(),
            ident: unit.trim_end_matches(".service").to_string(),
            message: Some(message.into()),
        }
    }
}

/// `seq=<n> <unit> payload`
pub fn seq_entry(unit: &str, n: u64) -> Entry {
    Entry::msg(unit, format!("seq={n} {unit} payload for entry {n}"))
}

/// Appends entries to one journal file by running systemd-journal-remote on
/// it again (it opens the existing file and appends, continuing its
/// sequence numbers; a following journalctl notices through inotify).
pub struct JournalFile {
    pub path: PathBuf,
    last_realtime: u64,
    monotonic: u64,
    pub appends: u32,
}

impl JournalFile {
    pub fn new(path: PathBuf) -> JournalFile {
        journal_remote();
        JournalFile {
            path,
            last_realtime: 0,
            monotonic: 1_000_000,
            appends: 0,
        }
    }

    /// Entries stamped with the current time (strictly increasing).
    pub fn append(&mut self, entries: &[Entry]) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64;
        self.append_at(now, entries);
    }

    /// Entries stamped from `realtime_us` on (strictly increasing).
    pub fn append_at(&mut self, realtime_us: u64, entries: &[Entry]) {
        let mut export = Vec::new();
        for e in entries {
            let rt = realtime_us.max(self.last_realtime + 1);
            self.last_realtime = rt;
            self.monotonic += 1000;
            write!(
                export,
                "__REALTIME_TIMESTAMP={rt}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID={}\n\
                 _SYSTEMD_UNIT={}\nSYSLOG_IDENTIFIER={}\n",
                self.monotonic, e.boot, e.unit, e.ident
            )
            .unwrap();
            if let Some(m) = &e.message {
                field(&mut export, "MESSAGE", m);
            }
            export.push(b'\n');
        }
        let mut child = Command::new(journal_remote())
            .arg(format!("--output={}", self.path.display()))
            .arg("--split-mode=none")
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running systemd-journal-remote");
        child.stdin.take().unwrap().write_all(&export).unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "systemd-journal-remote: {stderr}");
        let want = format!("Finishing after writing {} entries", entries.len());
        assert!(stderr.contains(&want), "systemd-journal-remote: {stderr}");
        self.appends += 1;
    }
}

/// Export format: `NAME=value\n` for plain text, else the binary form
/// (`NAME\n`, 64-bit little-endian length, raw bytes, `\n`). An empty value
/// must be text (journal-remote drops zero-length binary fields).
fn field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    let plain = std::str::from_utf8(value).is_ok_and(|s| !s.chars().any(char::is_control));
    if plain {
        out.extend_from_slice(name.as_bytes());
        out.push(b'=');
        out.extend_from_slice(value);
    } else {
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        out.extend_from_slice(value);
    }
    out.push(b'\n');
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Ready,
    Started(u32),
    Healthy,
    Exited(String),
    Restarting(Duration),
    Error(String),
    Stderr(String),
    LineTruncated,
    InvalidEntry(String),
    CheckpointWritten,
}

#[derive(Debug, Default)]
pub struct Recorder {
    /// How often each sequence number arrived.
    pub counts: HashMap<u64, u32>,
    pub total_seq_lines: usize,
    /// Every line verbatim (without its newline).
    pub raw: Vec<Vec<u8>>,
    pub events: Vec<Ev>,
    /// Chunks violating the "complete lines only" contract.
    pub bad_chunks: usize,
    /// Seq lines seen when the first `Exited` arrived.
    pub seq_at_exit: Option<usize>,
}

impl Recorder {
    fn record(&mut self, chunk: &[u8]) {
        if chunk.last() != Some(&b'\n') {
            self.bad_chunks += 1;
        }
        for line in chunk.split_inclusive(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            self.raw.push(line.to_vec());
            if let Some(n) = parse_seq(line) {
                *self.counts.entry(n).or_default() += 1;
                self.total_seq_lines += 1;
            }
        }
    }

    pub fn has_all(&self, expected: impl IntoIterator<Item = u64>) -> bool {
        expected.into_iter().all(|n| self.counts.contains_key(&n))
    }

    pub fn count_events(&self, f: impl Fn(&Ev) -> bool) -> usize {
        self.events.iter().filter(|e| f(e)).count()
    }

    pub fn pids(&self) -> Vec<u32> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Ev::Started(p) => Some(*p),
                _ => None,
            })
            .collect()
    }

    /// Each expected number exactly once, nothing else.
    pub fn assert_exact(&self, expected: impl IntoIterator<Item = u64>) {
        assert_eq!(self.bad_chunks, 0, "chunks not ending in a newline");
        let want: BTreeMap<u64, u32> = expected.into_iter().map(|n| (n, 1)).collect();
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
                "not exact: {} missing (first {:?}), {} duplicated (first {:?}), {} unexpected (first {:?}); events: {:?}",
                missing.len(),
                &missing[..missing.len().min(10)],
                dup.len(),
                &dup[..dup.len().min(10)],
                extra.len(),
                &extra[..extra.len().min(10)],
                self.events
                    .iter()
                    .filter(|e| !matches!(e, Ev::CheckpointWritten))
                    .take(40)
                    .collect::<Vec<_>>(),
            );
        }
        assert_eq!(self.total_seq_lines, want.len());
    }

    /// Merges another run's counts (restart tests).
    pub fn merge(&mut self, other: &Recorder) {
        for (&n, &c) in &other.counts {
            *self.counts.entry(n).or_default() += c;
        }
        self.total_seq_lines += other.total_seq_lines;
        self.bad_chunks += other.bad_chunks;
        self.raw.extend(other.raw.iter().cloned());
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

/// Runs inside the sink, on the reader's thread: the reader is blocked
/// while it runs.
pub type Hook = Box<dyn FnMut(&Recorder) + Send>;

#[derive(Default)]
pub struct Hooks {
    /// After each `lines` call.
    pub on_lines: Option<Hook>,
    /// On each `Exited` event, before the reader can restart journalctl.
    pub on_exited: Option<Hook>,
}

pub struct TestSink {
    pub rec: Arc<Mutex<Recorder>>,
    hooks: Hooks,
}

impl Sink for TestSink {
    fn lines(&mut self, chunk: &[u8]) {
        let mut rec = lock(&self.rec);
        rec.record(chunk);
        if let Some(h) = &mut self.hooks.on_lines {
            h(&rec);
        }
    }

    fn event(&mut self, event: Event<'_>) {
        let ev = match event {
            Event::Ready => Ev::Ready,
            Event::Started { pid } => Ev::Started(pid),
            Event::Healthy => Ev::Healthy,
            Event::Exited { status } => Ev::Exited(status.to_string()),
            Event::Restarting { after } => Ev::Restarting(after),
            Event::Error { error, .. } => Ev::Error(error.to_string()),
            Event::Stderr { line } => Ev::Stderr(line.to_string()),
            Event::LineTruncated => Ev::LineTruncated,
            Event::InvalidEntry { error } => Ev::InvalidEntry(error.to_string()),
            Event::CheckpointWritten => Ev::CheckpointWritten,
        };
        let exited = matches!(ev, Ev::Exited(_));
        let mut rec = lock(&self.rec);
        if exited && rec.seq_at_exit.is_none() {
            rec.seq_at_exit = Some(rec.total_seq_lines);
        }
        rec.events.push(ev);
        if exited {
            if let Some(h) = &mut self.hooks.on_exited {
                h(&rec);
            }
        }
    }
}

/// A poisoned lock only means another assertion already failed.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn config(name: &str) -> JournalConfig {
    require_journalctl();
    JournalConfig {
        name: name.into(),
        checkpoint_interval: Duration::from_millis(100),
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        ..JournalConfig::default()
    }
}

pub struct Running {
    pub rec: Arc<Mutex<Recorder>>,
    stop: StopHandle,
    thread: Option<JoinHandle<Result<(), JournalError>>>,
}

impl Running {
    pub fn start(cfg: JournalConfig) -> Running {
        Self::start_with(cfg, Hooks::default())
    }

    /// Starts the reader and waits for `Ready`.
    pub fn start_with(cfg: JournalConfig, hooks: Hooks) -> Running {
        let reader = JournalReader::new(cfg).expect("valid config");
        let stop = reader.stop_handle();
        let rec = Arc::new(Mutex::new(Recorder::default()));
        let mut sink = TestSink {
            rec: rec.clone(),
            hooks,
        };
        let thread = std::thread::spawn(move || reader.run(&mut sink));
        let r = Running {
            rec,
            stop,
            thread: Some(thread),
        };
        r.wait("Ready", |r| r.events.contains(&Ev::Ready));
        r
    }

    pub fn rec(&self) -> MutexGuard<'_, Recorder> {
        lock(&self.rec)
    }

    /// Polls `cond` until it holds; fails after [`DEADLINE`].
    pub fn wait(&self, what: &str, cond: impl Fn(&Recorder) -> bool) {
        let start = Instant::now();
        loop {
            {
                let r = lock(&self.rec);
                if cond(&r) {
                    return;
                }
                if start.elapsed() > DEADLINE {
                    panic!(
                        "timed out waiting for {what}; {} seq lines, events: {:?}",
                        r.total_seq_lines,
                        r.events
                            .iter()
                            .filter(|e| !matches!(e, Ev::CheckpointWritten))
                            .take(60)
                            .collect::<Vec<_>>()
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the reader and returns what it recorded, checking that `run`
    /// returned promptly and without error.
    pub fn stop(self) -> Recorder {
        let (rec, result) = self.stop_result();
        result.expect("run failed");
        rec
    }

    /// Like [`stop`](Self::stop), returning what `run` returned.
    pub fn stop_result(mut self) -> (Recorder, Result<(), JournalError>) {
        let t0 = Instant::now();
        self.stop.stop();
        let result = self.thread.take().unwrap().join().expect("reader panicked");
        let took = t0.elapsed();
        assert!(took < Duration::from_secs(5), "stop took {took:?}");
        (std::mem::take(&mut *lock(&self.rec)), result)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.stop();
            let _ = t.join();
        }
    }
}

pub fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// True while a process with this pid exists (zombies included).
pub fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// True while a process with this pid runs (not a zombie: a killed
/// grandchild waits for whoever reaps orphans here).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) S ...`: the state follows the last `)`.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Kills a process by pid (the test's handle on "journalctl dies").
pub fn kill(pid: u32, sig: i32) {
    // SAFETY: plain syscall.
    let r = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(
        r,
        0,
        "kill({pid}, {sig}): {}",
        std::io::Error::last_os_error()
    );
}

/// A counter shared with hooks.
pub fn shared_flag() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

pub fn shared_count() -> Arc<AtomicU32> {
    Arc::new(AtomicU32::new(0))
}

pub fn load(flag: &AtomicBool) -> bool {
    flag.load(Ordering::SeqCst)
}

pub fn read_cursor_file(state: &Path, name: &str) -> serde_json::Value {
    let p = chainwatch_journal::cursor_path(state, name);
    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
}
