//! The supervision loop: start journalctl at the right position, deliver
//! what it prints, checkpoint, restart it with backoff, stop it.

use std::ffi::OsString;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::checkpoint;
use crate::child::{Child, Msg, Spawn};
use crate::config::JournalConfig;
use crate::decode::Batch;
use crate::error::JournalError;
use crate::sink::{Event, Problem, Sink};

/// Default of [`JournalConfig::healthy_run`]: a journalctl that ran at least
/// this long is working; when it exits, the restart backoff starts over.
pub const HEALTHY_RUN: Duration = Duration::from_secs(10);

/// On stop, journalctl gets SIGTERM and this long to exit before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// After journalctl exited, its output is drained; if the pipe stays open
/// (a descendant outside its process group holds it) and silent this long,
/// the reader stops waiting for end of file.
const EOF_GRACE: Duration = Duration::from_secs(5);

/// Batches in flight between the stdout thread and the run loop. Each is at
/// most about 64 KiB of output plus one record.
const CHANNEL_CAP: usize = 8;

const MACHINE_ID_FILE: &str = "/etc/machine-id";

/// Follows the systemd journal as configured by a [`JournalConfig`].
pub struct JournalReader {
    cfg: JournalConfig,
    stop: Arc<AtomicBool>,
    tx: SyncSender<Msg>,
    rx: Receiver<Msg>,
    cursor_file: Option<PathBuf>,
    /// System journal only: `Ok(id)` to follow every boot of this machine,
    /// `Err(why)` when the id is unknown (current boot only).
    machine: Option<Result<String, String>>,
}

/// Stops a running [`JournalReader`] from any thread.
#[derive(Clone)]
pub struct StopHandle {
    stop: Arc<AtomicBool>,
    wake: SyncSender<Msg>,
}

impl StopHandle {
    /// Asks the reader to finish the batch in hand, stop journalctl (SIGTERM,
    /// SIGKILL after [`STOP_GRACE`]), write the final checkpoint and return.
    /// Wakes it at once, also during a backoff.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.wake.try_send(Msg::Wake);
    }
}

impl std::fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StopHandle")
            .field("stopped", &self.stop.load(Ordering::Relaxed))
            .finish()
    }
}

/// Where journalctl starts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Start {
    /// After the last processed entry.
    After(String),
    /// First run: entries whose realtime timestamp is not older than this.
    Since(SystemTime),
}

impl JournalReader {
    pub fn new(cfg: JournalConfig) -> Result<Self, JournalError> {
        cfg.validate()?;
        let cursor_file = match &cfg.state_dir {
            Some(dir) => {
                fs::create_dir_all(dir).map_err(|source| JournalError::StateDir {
                    path: dir.clone(),
                    source,
                })?;
                Some(checkpoint::cursor_path(dir, &cfg.name))
            }
            None => None,
        };
        let machine = (cfg.directory.is_none() && cfg.files.is_empty()).then(read_machine_id);
        let (tx, rx) = mpsc::sync_channel(CHANNEL_CAP);
        Ok(JournalReader {
            cfg,
            stop: Arc::new(AtomicBool::new(false)),
            tx,
            rx,
            cursor_file,
            machine,
        })
    }

    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            stop: Arc::clone(&self.stop),
            wake: self.tx.clone(),
        }
    }

    /// Blocks until stopped. Only a failure to write the final checkpoint is
    /// returned as an error; everything else is reported through
    /// [`Event`]s and retried.
    pub fn run(self, sink: &mut dyn Sink) -> Result<(), JournalError> {
        let mut sup = Supervisor {
            program: self.cfg.journalctl.clone().into_os_string(),
            record_cap: self.cfg.max_record_bytes(),
            machine_id: None,
            cfg: self.cfg,
            stop: self.stop,
            tx: self.tx,
            rx: self.rx,
            cursor_file: self.cursor_file,
            sink,
            cursor: None,
            written: None,
            since: SystemTime::now(),
            gen: 0,
            failures: 0,
        };
        match self.machine {
            Some(Ok(id)) => sup.machine_id = Some(id),
            Some(Err(why)) => {
                let msg = format!("{why}; following the current boot only");
                sup.sink.event(Event::Error {
                    error: &msg,
                    problem: Problem::MachineId,
                });
            }
            None => {}
        }
        sup.load_cursor();
        sup.sink.event(Event::Ready);
        sup.run()
    }
}

fn read_machine_id() -> Result<String, String> {
    let text = fs::read_to_string(MACHINE_ID_FILE)
        .map_err(|e| format!("cannot read {MACHINE_ID_FILE}: {e}"))?;
    let id = text.trim();
    if id.len() == 32 && id.bytes().all(|c| c.is_ascii_hexdigit()) {
        Ok(id.to_ascii_lowercase())
    } else {
        Err(format!("{MACHINE_ID_FILE} does not hold a machine id"))
    }
}

/// journalctl's arguments (see the crate documentation for why each is there).
fn journalctl_args(cfg: &JournalConfig, machine_id: Option<&str>, start: &Start) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "--follow",
        "--all",
        "--no-pager",
        "--no-tail",
        "--output=json",
        "--output-fields=MESSAGE",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    let opt = |name: &str, value: &std::ffi::OsStr| {
        let mut a = OsString::from(name);
        a.push(value);
        a
    };
    if let Some(d) = &cfg.directory {
        args.push(opt("--directory=", d.as_os_str()));
    }
    for f in &cfg.files {
        args.push(opt("--file=", f.as_os_str()));
    }
    if cfg.directory.is_some() || !cfg.files.is_empty() || machine_id.is_some() {
        // Without it, --follow implies --boot: entries of an earlier boot
        // after the cursor would be skipped.
        args.push("--merge".into());
    }
    for u in &cfg.units {
        args.push(opt("--unit=", u.as_ref()));
    }
    for i in &cfg.identifiers {
        args.push(opt("--identifier=", i.as_ref()));
    }
    match start {
        Start::After(c) => args.push(opt("--after-cursor=", c.as_ref())),
        Start::Since(t) => {
            let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
            args.push(format!("--since=@{}.{:06}", d.as_secs(), d.subsec_micros()).into());
        }
    }
    if let Some(id) = machine_id {
        // --merge opens other machines' journals too; keep to this one.
        args.push(format!("_MACHINE_ID={id}").into());
    }
    args
}

/// The delay after the `failures`-th consecutive failure (from 1):
/// `min`, doubled each time, at most `max`.
fn backoff(min: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 1u32
        .checked_shl(failures.saturating_sub(1))
        .unwrap_or(u32::MAX);
    min.saturating_mul(factor).min(max)
}

struct Running {
    child: Child,
    stdout_done: bool,
    /// Set once the process is reaped.
    status: Option<String>,
    /// When to escalate (stdout closed but the process lives on) or give up
    /// waiting for the end of its output (exited, pipe still open).
    deadline: Option<Instant>,
    /// 0: nothing sent, 1: SIGTERM sent, 2: SIGKILL sent.
    signals: u8,
    /// `Event::Healthy` was reported for this run.
    healthy: bool,
}

impl Running {
    /// When this run becomes healthy, if it has not yet and still runs.
    fn healthy_at(&self, after: Duration) -> Option<Instant> {
        (!self.healthy && self.status.is_none()).then(|| self.child.started + after)
    }
}

enum State {
    Running(Box<Running>),
    Waiting { until: Instant },
}

struct Supervisor<'s> {
    cfg: JournalConfig,
    program: OsString,
    record_cap: usize,
    machine_id: Option<String>,
    stop: Arc<AtomicBool>,
    tx: SyncSender<Msg>,
    rx: Receiver<Msg>,
    cursor_file: Option<PathBuf>,
    sink: &'s mut dyn Sink,
    /// Cursor of the last entry handed to the sink.
    cursor: Option<String>,
    /// What the cursor file holds.
    written: Option<String>,
    /// First-run start, kept for restarts until an entry is processed.
    since: SystemTime,
    gen: u64,
    /// Consecutive failures, for the backoff.
    failures: u32,
}

impl Supervisor<'_> {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn load_cursor(&mut self) {
        let Some(path) = &self.cursor_file else {
            return;
        };
        match checkpoint::load(path) {
            Ok(c) => {
                self.written.clone_from(&c);
                self.cursor = c;
            }
            Err(e) => {
                // Starting as a first run loses nothing that a garbled file
                // could have told us reliably.
                let msg = format!("journal cursor {}: {e}; starting from now", path.display());
                self.sink.event(Event::Error {
                    error: &msg,
                    problem: Problem::Checkpoint,
                });
            }
        }
    }

    fn run(mut self) -> Result<(), JournalError> {
        let interval = self.cfg.checkpoint_interval;
        let mut next_checkpoint = Instant::now() + interval;
        if self.stopping() {
            return self.final_checkpoint();
        }
        let mut state = self.start();
        while !self.stopping() {
            let now = Instant::now();
            if now >= next_checkpoint {
                self.checkpoint();
                next_checkpoint = now + interval;
            }
            state = match state {
                State::Waiting { until } if now >= until => {
                    if self.stopping() {
                        break;
                    }
                    self.start()
                }
                State::Running(r) if r.status.is_some() && r.stdout_done => self.exited(*r),
                State::Running(mut r) => {
                    if r.deadline.is_some_and(|d| now >= d) {
                        self.escalate(&mut r, now);
                    }
                    if r.healthy_at(self.cfg.healthy_run).is_some_and(|t| now >= t) {
                        r.healthy = true;
                        self.sink.event(Event::Healthy);
                    }
                    State::Running(r)
                }
                s => s,
            };
            let wake_at = match &state {
                State::Waiting { until } => (*until).min(next_checkpoint),
                State::Running(r) if r.status.is_some() && r.stdout_done => now,
                State::Running(r) => [r.deadline, r.healthy_at(self.cfg.healthy_run)]
                    .into_iter()
                    .flatten()
                    .fold(next_checkpoint, Instant::min),
            };
            let timeout = wake_at.saturating_duration_since(Instant::now());
            if timeout.is_zero() {
                continue;
            }
            match self.rx.recv_timeout(timeout) {
                Ok(msg) => self.handle(msg, &mut state),
                Err(RecvTimeoutError::Timeout) => {}
                // Cannot happen (we hold a sender), but never spin if it does.
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(timeout),
            }
        }
        if let State::Running(r) = state {
            self.shutdown(*r);
        }
        self.final_checkpoint()
    }

    fn start(&mut self) -> State {
        self.gen += 1;
        let start = match &self.cursor {
            Some(c) => Start::After(c.clone()),
            None => Start::Since(self.since),
        };
        let args = journalctl_args(&self.cfg, self.machine_id.as_deref(), &start);
        let spawned = Child::spawn(Spawn {
            program: &self.program,
            args: &args,
            gen: self.gen,
            tx: &self.tx,
            record_cap: self.record_cap,
            max_line: self.cfg.max_line_bytes,
        });
        match spawned {
            Ok(child) => {
                self.sink.event(Event::Started { pid: child.pid });
                State::Running(Box::new(Running {
                    child,
                    stdout_done: false,
                    status: None,
                    deadline: None,
                    signals: 0,
                    healthy: false,
                }))
            }
            Err(e) => {
                let msg = format!("cannot start {}: {e}", self.cfg.journalctl.display());
                self.sink.event(Event::Error {
                    error: &msg,
                    problem: Problem::Journalctl,
                });
                self.restart_later(None)
            }
        }
    }

    fn exited(&mut self, r: Running) -> State {
        let status = r.status.as_deref().unwrap_or("unknown");
        self.sink.event(Event::Exited { status });
        self.restart_later(Some(r.child.started.elapsed()))
    }

    fn restart_later(&mut self, ran: Option<Duration>) -> State {
        if ran.is_some_and(|d| d >= self.cfg.healthy_run) {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        let after = backoff(self.cfg.backoff_min, self.cfg.backoff_max, self.failures);
        self.sink.event(Event::Restarting { after });
        State::Waiting {
            until: Instant::now() + after,
        }
    }

    fn handle(&mut self, msg: Msg, state: &mut State) {
        let current = match state {
            State::Running(r) => Some(r),
            State::Waiting { .. } => None,
        };
        match msg {
            Msg::Wake => {}
            Msg::Stderr { line } => self.sink.event(Event::Stderr { line: &line }),
            Msg::Batch { gen, batch } => {
                if let Some(r) = current.filter(|r| r.child.gen == gen && !r.stdout_done) {
                    if r.status.is_some() {
                        // Still draining after the exit: not stuck.
                        r.deadline = Some(Instant::now() + EOF_GRACE);
                    }
                    self.deliver(batch);
                }
            }
            Msg::StdoutEof { gen, error } => {
                if let Some(r) = current.filter(|r| r.child.gen == gen && !r.stdout_done) {
                    r.stdout_done = true;
                    if let Some(e) = error {
                        self.sink.event(Event::Error {
                            error: &e,
                            problem: Problem::Journalctl,
                        });
                    }
                    if r.status.is_none() {
                        // Exiting; if it does not, it is made to.
                        r.deadline = Some(Instant::now() + STOP_GRACE);
                    }
                }
            }
            Msg::Ended { gen } => {
                if let Some(r) = current.filter(|r| r.child.gen == gen && r.status.is_none()) {
                    // Leftovers of its process group would keep the pipe open.
                    r.child.signal(libc::SIGKILL);
                    r.status = Some(match r.child.reap() {
                        Ok(s) => s.to_string(),
                        Err(e) => format!("unknown ({e})"),
                    });
                    r.deadline = (!r.stdout_done).then(|| Instant::now() + EOF_GRACE);
                }
            }
        }
    }

    fn escalate(&mut self, r: &mut Running, now: Instant) {
        if r.status.is_some() {
            // Exited long ago, output pipe still open and silent.
            r.stdout_done = true;
            r.deadline = None;
            self.sink.event(Event::Error {
                error: "journalctl exited but its output stayed open; not waiting for it",
                problem: Problem::Journalctl,
            });
            return;
        }
        // Output closed, process still there.
        match r.signals {
            0 => {
                r.child.signal(libc::SIGTERM);
                r.signals = 1;
                r.deadline = Some(now + STOP_GRACE);
            }
            1 => {
                r.child.signal(libc::SIGKILL);
                r.signals = 2;
                r.deadline = None;
            }
            _ => r.deadline = None,
        }
    }

    fn deliver(&mut self, batch: Batch) {
        if !batch.data.is_empty() {
            self.sink.lines(&batch.data);
        }
        for _ in 0..batch.truncated {
            self.sink.event(Event::LineTruncated);
        }
        for e in &batch.invalid {
            self.sink.event(Event::InvalidEntry { error: e });
        }
        // Only now: the sink has returned for every entry up to this cursor.
        if batch.cursor.is_some() {
            self.cursor = batch.cursor;
        }
    }

    /// Stops the running journalctl: SIGTERM, then SIGKILL after the grace.
    /// Output still arriving is dropped: it is not covered by the cursor,
    /// so the next run reads it again.
    fn shutdown(&mut self, r: Running) {
        if r.status.is_some() {
            return;
        }
        r.child.signal(libc::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.rx.recv_timeout(left) {
                Ok(Msg::Ended { gen }) if gen == r.child.gen => break,
                Ok(Msg::Stderr { line }) => self.sink.event(Event::Stderr { line: &line }),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // Dropping kills what is left of the group (SIGKILL) and reaps.
        drop(r);
    }

    fn checkpoint(&mut self) {
        if let Err(e) = self.write_checkpoint() {
            let msg = format!("{e}; retrying");
            self.sink.event(Event::Error {
                error: &msg,
                problem: Problem::Checkpoint,
            });
        }
    }

    fn final_checkpoint(&mut self) -> Result<(), JournalError> {
        self.write_checkpoint()
    }

    fn write_checkpoint(&mut self) -> Result<(), JournalError> {
        let (Some(path), Some(cursor)) = (&self.cursor_file, &self.cursor) else {
            return Ok(());
        };
        if self.written.as_ref() == Some(cursor) {
            return Ok(());
        }
        checkpoint::store(path, cursor).map_err(|source| JournalError::Checkpoint {
            path: path.clone(),
            source,
        })?;
        self.written = Some(cursor.clone());
        self.sink.event(Event::CheckpointWritten);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(args: &[OsString]) -> Vec<&str> {
        args.iter().map(|a| a.to_str().unwrap()).collect()
    }

    #[test]
    fn backoff_doubles_up_to_max() {
        let ms = Duration::from_millis;
        let got: Vec<Duration> = [1, 2, 3, 4, 5, 6, 40, u32::MAX]
            .iter()
            .map(|&f| backoff(ms(500), Duration::from_secs(30), f))
            .collect();
        assert_eq!(
            got,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000].map(ms)
        );
        // Saturates instead of overflowing.
        assert_eq!(backoff(Duration::MAX, Duration::MAX, 3), Duration::MAX);
    }

    #[test]
    fn command_line() {
        let cfg = JournalConfig {
            units: vec!["a.service".into(), "-b.service".into()],
            identifiers: vec!["node".into()],
            directory: Some("/j".into()),
            ..JournalConfig::default()
        };
        let at = UNIX_EPOCH + Duration::from_micros(1_795_305_331_000_042);
        assert_eq!(
            strs(&journalctl_args(&cfg, None, &Start::Since(at))),
            [
                "--follow",
                "--all",
                "--no-pager",
                "--no-tail",
                "--output=json",
                "--output-fields=MESSAGE",
                "--directory=/j",
                "--merge",
                "--unit=a.service",
                "--unit=-b.service",
                "--identifier=node",
                "--since=@1795305331.000042",
            ]
        );
        let cfg = JournalConfig {
            files: vec!["/j/a.journal".into(), "/j/b.journal".into()],
            ..JournalConfig::default()
        };
        let args = journalctl_args(&cfg, None, &Start::After("t=1".into()));
        assert_eq!(
            strs(&args[6..]),
            [
                "--file=/j/a.journal",
                "--file=/j/b.journal",
                "--merge",
                "--after-cursor=t=1"
            ]
        );
        // The system journal: every boot, this machine only.
        let args = journalctl_args(
            &JournalConfig::default(),
            Some("3d1219c7c4c5404aaa1f6d2a48adfda4"),
            &Start::After("t=1".into()),
        );
        assert_eq!(
            strs(&args[6..]),
            [
                "--merge",
                "--after-cursor=t=1",
                "_MACHINE_ID=3d1219c7c4c5404aaa1f6d2a48adfda4"
            ]
        );
        // Unknown machine id: journalctl's defaults (this machine, current boot).
        let args = journalctl_args(&JournalConfig::default(), None, &Start::After("t=1".into()));
        assert_eq!(strs(&args[6..]), ["--after-cursor=t=1"]);
    }
}
