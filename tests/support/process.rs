//! Child processes of the end-to-end tests: output to files (nothing blocks on a full pipe, and
//! the logs are there to read when something fails), stopped on drop (SIGTERM, then SIGKILL).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running child process; SIGTERM on drop, SIGKILL if it has not exited within 5 seconds.
pub struct Proc {
    pub name: String,
    child: Child,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl Proc {
    /// Start `cmd` with stdout and stderr going to `<dir>/<name>.stdout` / `.stderr`.
    pub fn spawn(name: &str, mut cmd: Command, dir: &Path) -> Proc {
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        cmd.stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("create stdout log"))
            .stderr(File::create(&stderr).expect("create stderr log"));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} ({:?}): {e}", cmd.get_program()));
        Proc {
            name: name.to_string(),
            child,
            stdout,
            stderr,
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Wait until a line of `file` (this process's stdout or stderr) contains `needle`; return it.
    /// Panics (with the log) at the deadline or when the process exits first.
    pub fn wait_line(&mut self, file: &Path, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            // Only complete lines: the writer may be in the middle of one.
            if let Some(l) = text
                .split_inclusive('\n')
                .filter(|l| l.ends_with('\n'))
                .find(|l| l.contains(needle))
            {
                return l.trim_end().to_string();
            }
            if let Some(st) = self.exited() {
                panic!(
                    "{} exited ({st}) before printing {needle:?}:\n{}",
                    self.name,
                    self.logs()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} did not print {needle:?} within {timeout:?}:\n{}",
                    self.name,
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last lines of stdout and stderr, for failure messages.
    pub fn logs(&self) -> String {
        format!(
            "--- {} stdout (last lines)\n{}\n--- {} stderr (last lines)\n{}",
            self.name,
            tail(&self.stdout, 30),
            self.name,
            tail(&self.stderr, 30)
        )
    }

    /// SIGKILL, as a machine that dies: no shutdown, no last words; waits for the exit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then SIGKILL after 5 seconds; returns the exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        if let Some(st) = self.exited() {
            return Some(st);
        }
        // SAFETY: kill(2) on the pid of a child we own and have not reaped yet.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(st) = self.exited() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
