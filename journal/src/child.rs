//! One supervised journalctl process and the threads that watch it.
//!
//! Three threads per process, all reporting on the reader's bounded channel
//! (so the run loop waits on exactly one thing and never polls):
//! - stdout: reads, frames and decodes records into [`Batch`]es;
//! - stderr: forwards lines;
//! - waiter: `waitid(WEXITED | WNOWAIT)` tells that the process ended
//!   without reaping it, so its pid cannot be reused while the run loop may
//!   still signal it. Only the run loop reaps (or [`Drop`]).

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::SyncSender;
use std::thread;
use std::time::Instant;

use crate::decode::{Batch, Framer};

/// Bytes read from journalctl's stdout at a time; also about the most one
/// [`Batch`] holds (plus one record).
const READ_BYTES: usize = 64 * 1024;
/// stderr lines are cut to this.
const STDERR_LINE_BYTES: usize = 4096;

/// Everything the run loop waits for. `gen` identifies the journalctl
/// process a message is about; messages of an earlier one are dropped.
pub(crate) enum Msg {
    Batch {
        gen: u64,
        batch: Batch,
    },
    StdoutEof {
        gen: u64,
        error: Option<String>,
    },
    Stderr {
        line: String,
    },
    /// The process ended (not yet reaped).
    Ended {
        gen: u64,
    },
    /// From [`StopHandle::stop`](crate::StopHandle::stop).
    Wake,
}

pub(crate) struct Spawn<'a> {
    pub program: &'a OsString,
    pub args: &'a [OsString],
    pub gen: u64,
    pub tx: &'a SyncSender<Msg>,
    pub record_cap: usize,
    pub max_line: usize,
}

pub(crate) struct Child {
    inner: std::process::Child,
    pub pid: u32,
    pub gen: u64,
    pub started: Instant,
    reaped: bool,
}

impl Child {
    pub fn spawn(s: Spawn<'_>) -> io::Result<Child> {
        let mut cmd = Command::new(s.program);
        cmd.args(s.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("SYSTEMD_COLORS", "0")
            // Its own process group: a Ctrl-C on the terminal reaches the
            // application, which then stops journalctl itself, and stopping
            // signals the whole group (a wrapper script and its children).
            .process_group(0);
        let parent = std::process::id();
        // SAFETY: between fork and exec the closure only makes
        // async-signal-safe calls (prctl, getppid) and allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                // Dies with the thread that supervises it, even on kill -9 of
                // the application.
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                // The parent died before prctl took effect.
                if libc::getppid() as u32 != parent {
                    return Err(io::Error::other("parent exited during spawn"));
                }
                Ok(())
            });
        }
        let mut inner = cmd.spawn()?;
        let pid = inner.id();
        let stdout = inner.stdout.take();
        let stderr = inner.stderr.take();
        let child = Child {
            inner,
            pid,
            gen: s.gen,
            started: Instant::now(),
            reaped: false,
        };
        // From here on, dropping `child` kills and reaps the process.
        let gen = s.gen;
        if let Some(out) = stdout {
            let (tx, cap, max_line) = (s.tx.clone(), s.record_cap, s.max_line);
            thread::Builder::new()
                .name("journalctl-stdout".into())
                .spawn(move || read_stdout(out, gen, tx, cap, max_line))?;
        }
        if let Some(err) = stderr {
            let tx = s.tx.clone();
            thread::Builder::new()
                .name("journalctl-stderr".into())
                .spawn(move || read_stderr(err, tx))?;
        }
        let tx = s.tx.clone();
        thread::Builder::new()
            .name("journalctl-wait".into())
            .spawn(move || wait_ended(pid, gen, tx))?;
        Ok(child)
    }

    /// Signals journalctl's process group. Never after reaping, when the
    /// pid may belong to someone else.
    pub fn signal(&self, sig: libc::c_int) {
        if !self.reaped {
            if let Ok(pgid) = libc::pid_t::try_from(self.pid) {
                // SAFETY: plain syscall; the group is ours (process_group(0)).
                unsafe {
                    libc::kill(-pgid, sig);
                }
            }
        }
    }

    /// Collects the exit status. Only call once the waiter reported
    /// [`Msg::Ended`] or after SIGKILL: it blocks until the process exits.
    pub fn reap(&mut self) -> io::Result<ExitStatus> {
        let status = self.inner.wait();
        if status.is_ok() {
            self.reaped = true;
        }
        status
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            self.signal(libc::SIGKILL);
            let _ = self.inner.wait();
            self.reaped = true;
        }
    }
}

fn read_stdout(
    mut out: std::process::ChildStdout,
    gen: u64,
    tx: SyncSender<Msg>,
    cap: usize,
    max_line: usize,
) {
    let mut buf = vec![0u8; READ_BYTES];
    let mut framer = Framer::new(cap, max_line);
    let error = loop {
        let n = match out.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Some(format!("reading journalctl output: {e}")),
        };
        let mut batch = Batch::default();
        framer.feed(&buf[..n], &mut batch);
        // Blocks while the run loop is busy: back-pressure reaches
        // journalctl through the pipe, memory stays bounded.
        if !batch.is_empty() && tx.send(Msg::Batch { gen, batch }).is_err() {
            return;
        }
    };
    // An unterminated last record is the one journalctl was writing when it
    // died; it was not delivered, so the cursor still points before it and
    // the next journalctl prints it again.
    let _ = tx.send(Msg::StdoutEof { gen, error });
}

fn read_stderr(mut err: std::process::ChildStderr, tx: SyncSender<Msg>) {
    let mut buf = vec![0u8; 8192];
    let mut line: Vec<u8> = Vec::new();
    let mut overflow = false;
    let emit = |line: &mut Vec<u8>, overflow: &mut bool| -> bool {
        let mut text = String::from_utf8_lossy(line).trim_end().to_string();
        if *overflow {
            text.push('…');
        }
        line.clear();
        *overflow = false;
        text.is_empty() || tx.send(Msg::Stderr { line: text }).is_ok()
    };
    loop {
        let n = match err.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        for piece in buf[..n].split_inclusive(|&b| b == b'\n') {
            let (body, complete) = match piece.strip_suffix(b"\n") {
                Some(b) => (b, true),
                None => (piece, false),
            };
            let room = STDERR_LINE_BYTES.saturating_sub(line.len());
            if body.len() > room {
                line.extend_from_slice(&body[..room]);
                overflow = true;
            } else {
                line.extend_from_slice(body);
            }
            if complete && !emit(&mut line, &mut overflow) {
                return;
            }
        }
    }
    if !line.is_empty() {
        emit(&mut line, &mut overflow);
    }
}

fn wait_ended(pid: u32, gen: u64, tx: SyncSender<Msg>) {
    let id: libc::id_t = pid;
    loop {
        // SAFETY: siginfo_t is plain data; waitid only writes into it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::waitid(libc::P_PID, id, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if r == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            // Ended, or already reaped (ECHILD): either way it is gone.
            break;
        }
    }
    let _ = tx.send(Msg::Ended { gen });
}
