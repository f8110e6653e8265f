//! A simulated host beside its node: the node's sidecar as a real `chainwatch-exporter` process
//! (on the config the simulator generated, with a state directory of its own, as systemd runs it)
//! and the host's address ([`Link`]) that Prometheus scrapes. A host that dies takes its sidecar
//! with it: SIGKILL to the sidecar's process group, no shutdown, no last checkpoint. Recovery
//! starts a new process on the same state directory.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::net::Link;

/// How to start a host's sidecar.
#[derive(Debug, Clone)]
pub struct SidecarCmd {
    pub bin: PathBuf,
    pub config: PathBuf,
    pub state_dir: PathBuf,
    /// stderr of every run of the sidecar, appended.
    pub log: PathBuf,
}

pub struct Host {
    pub name: String,
    pub link: Arc<Link>,
    cmd: SidecarCmd,
    run: Mutex<Run>,
}

#[derive(Default)]
struct Run {
    /// The process running now (its pid is its process group).
    pid: Option<i32>,
    /// Should a sidecar run (the host is up and the sidecar not taken down)?
    wanted: bool,
    /// The running process was killed on purpose (not a crash).
    killed: bool,
    /// Sidecar processes started so far.
    starts: u32,
    /// How the last one ended, when it did.
    last_exit: Option<String>,
    /// Bumped at every start, so the reaper of an older process changes nothing.
    generation: u64,
}

impl Host {
    pub async fn new(name: &str, cmd: SidecarCmd) -> std::io::Result<Arc<Host>> {
        std::fs::create_dir_all(&cmd.state_dir)?;
        Ok(Arc::new(Host {
            name: name.to_string(),
            link: Link::bind().await?,
            cmd,
            run: Mutex::new(Run::default()),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Run> {
        self.run.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bring the host to what the node's scenarios say: the sidecar running or not, the address
    /// reachable or not. Call within the runtime.
    pub fn sync(self: &Arc<Self>, sidecar_runs: bool, reachable: bool) {
        self.link.set_open(reachable);
        let mut r = self.lock();
        r.wanted = sidecar_runs;
        match (sidecar_runs, r.pid) {
            (true, None) => {
                drop(r);
                self.start();
            }
            (false, Some(pid)) if !r.killed => {
                r.killed = true;
                kill_group(pid, libc::SIGKILL);
            }
            // Running and wanted; or killed and not yet reaped (the reaper starts the next one
            // if it is wanted again by then).
            _ => {}
        }
    }

    /// Start a sidecar process; it counts as listening once it logs its address. A process
    /// that exits while still wanted is started again, a second later if it crashed (systemd's
    /// `Restart=on-failure`).
    fn start(self: &Arc<Self>) {
        let c = &self.cmd;
        let mut cmd = tokio::process::Command::new(&c.bin);
        cmd.arg("--config")
            .arg(&c.config)
            .arg("--state.dir")
            .arg(&c.state_dir)
            .args(["--web.listen-address", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group: killing the host kills whatever the sidecar started too.
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: prctl only sets a flag of the new process. The signal is sent when the thread
        // that forked exits: a runtime worker, which lives as long as the simulator does, so a
        // simulator killed without cleanup leaves no sidecar behind.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let msg = format!("could not start {}: {e}", c.bin.display());
                eprintln!("chainwatch-sim: {}: {msg}", self.name);
                self.lock().last_exit = Some(msg);
                return;
            }
        };
        let generation = {
            let mut r = self.lock();
            r.pid = child.id().map(|p| p as i32);
            r.killed = false;
            r.starts += 1;
            r.generation += 1;
            r.generation
        };
        let stderr = child.stderr.take();
        let host = self.clone();
        tokio::spawn(async move {
            if let Some(stderr) = stderr {
                host.follow_stderr(stderr).await;
            }
            let exit = match child.wait().await {
                Ok(s) => s.to_string(),
                Err(e) => format!("wait failed: {e}"),
            };
            let again = {
                let mut r = host.lock();
                if r.generation != generation {
                    return;
                }
                r.pid = None;
                host.link.set_upstream(None);
                let crashed = !r.killed;
                r.killed = false;
                eprintln!(
                    "chainwatch-sim: {}: sidecar {}: {exit}",
                    host.name,
                    if crashed { "exited" } else { "killed" }
                );
                r.last_exit = Some(exit);
                r.wanted.then_some(crashed)
            };
            if let Some(crashed) = again {
                if crashed {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                let r = host.lock();
                if r.wanted && r.pid.is_none() && r.generation == generation {
                    drop(r);
                    host.start();
                }
            }
        });
    }

    /// Append the sidecar's log to its file; learn its address from `msg=listening`.
    async fn follow_stderr(&self, stderr: tokio::process::ChildStderr) {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.cmd.log)
            .map_err(|e| {
                eprintln!(
                    "chainwatch-sim: {}: {}: {e}",
                    self.name,
                    self.cmd.log.display()
                )
            })
            .ok();
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(f) = file.as_mut() {
                let _ = writeln!(f, "{line}");
            }
            if line.contains("msg=listening") {
                if let Some(a) = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("address="))
                    .and_then(|a| a.parse::<SocketAddr>().ok())
                {
                    self.link.set_upstream(Some(a));
                }
            }
        }
    }

    /// Wait until the sidecar listens; Err with the end of its log if it exits first or takes
    /// longer than `timeout`.
    pub async fn ready(&self, timeout: Duration) -> Result<SocketAddr, String> {
        let mut up = self.link.watch_upstream();
        let wait = async {
            loop {
                if let Some(a) = *up.borrow_and_update() {
                    return Ok(a);
                }
                if self.lock().pid.is_none() {
                    return Err("exited".to_string());
                }
                // The reaper clears the upstream (None → None sends nothing): poll its exit too.
                let _ = tokio::time::timeout(Duration::from_millis(100), up.changed()).await;
            }
        };
        let r = match tokio::time::timeout(timeout, wait).await {
            Ok(r) => r,
            Err(_) => Err(format!("not listening within {timeout:?}")),
        };
        r.map_err(|why| {
            format!(
                "the sidecar of {} {why}; its log {}:\n{}",
                self.name,
                self.cmd.log.display(),
                tail(&self.cmd.log, 20)
            )
        })
    }

    /// Stop the sidecar as the host shuts down: SIGTERM, then SIGKILL after `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        let pid = {
            let mut r = self.lock();
            r.wanted = false;
            r.killed = true;
            r.pid
        };
        let Some(pid) = pid else { return };
        kill_group(pid, libc::SIGTERM);
        let deadline = tokio::time::Instant::now() + grace;
        while self.lock().pid.is_some() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if self.lock().pid.is_some() {
            kill_group(pid, libc::SIGKILL);
        }
    }

    /// The host as `GET /state` shows it.
    pub fn state(&self) -> Value {
        let r = self.lock();
        json!({
            "url": self.link.url(),
            "reachable": self.link.is_open(),
            "running": r.pid.is_some(),
            "pid": r.pid,
            "listening": self.link.upstream().map(|a| a.to_string()),
            "starts": r.starts,
            "last_exit": r.last_exit,
            "log": self.cmd.log,
        })
    }
}

/// Signal a sidecar's process group.
fn kill_group(pid: i32, sig: i32) {
    // SAFETY: kill(2) on the process group of a child we started and have not reaped (the
    // reaper clears `pid` under the same lock, so the group cannot have been reused).
    unsafe {
        libc::kill(-pid, sig);
    }
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
