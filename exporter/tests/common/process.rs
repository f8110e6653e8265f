//! A running sidecar process for tests: started with a config, its address read from its log,
//! stopped with SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

pub struct Sidecar {
    pub child: Child,
    pub addr: String,
    log: Receiver<String>,
    pub lines: Vec<String>,
}

pub const DEADLINE: Duration = Duration::from_secs(60);

impl Sidecar {
    pub fn start(config: &Path, extra: &[&str]) -> Sidecar {
        Sidecar::start_with(config, extra, |_| {})
    }

    /// [`Sidecar::start`] with the command adjusted first (environment, working directory).
    pub fn start_with(config: &Path, extra: &[&str], adjust: impl FnOnce(&mut Command)) -> Sidecar {
        let mut cmd = Command::new(super::bin());
        cmd.arg("--config")
            .arg(config)
            .args(["--web.listen-address", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        adjust(&mut cmd);
        let mut child = cmd.spawn().expect("start chainwatch-exporter");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut s = Sidecar {
            child,
            addr: String::new(),
            log: rx,
            lines: Vec::new(),
        };
        let line = s.wait_log(|l| l.contains("msg=listening"));
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("address="))
            .expect("address in listening line");
        s.addr = addr.to_string();
        s
    }

    /// Wait for a log line satisfying `f` (lines already seen count).
    pub fn wait_log(&mut self, f: impl Fn(&str) -> bool) -> String {
        if let Some(l) = self.lines.iter().find(|l| f(l)) {
            return l.clone();
        }
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(l) => {
                    self.lines.push(l.clone());
                    if f(&l) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "no matching log line within {DEADLINE:?}; log so far:\n{}",
                    self.lines.join("\n")
                ),
            }
        }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(&self.addr, path)
    }

    pub fn metrics(&self) -> Vec<(super::Series, f64)> {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200);
        super::parse(&body)
    }

    /// Poll until the source reports ready in /health.
    pub fn wait_ready(&self) {
        poll_until("sources ready", || {
            let (_, body) = self.get("/health");
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            (v["status"] == "ok").then_some(())
        });
    }

    /// SIGTERM, wait for exit, return the exit code and collect the remaining log.
    pub fn terminate(mut self) -> (i32, Vec<String>) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let status = self.child.wait().unwrap();
        while let Ok(l) = self.log.recv_timeout(Duration::from_secs(5)) {
            self.lines.push(l);
        }
        (status.code().unwrap_or(-1), std::mem::take(&mut self.lines))
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Repeat `f` until it returns Some, or fail after the deadline. Not a sleep-as-assertion: the
/// condition is what is asserted, the pause only paces the polling.
pub fn poll_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to sidecar");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// The value a `final count` log line reports for `labels` (e.g. `rule=dilithion/block_found`).
pub fn final_count(lines: &[String], labels: &str) -> f64 {
    lines
        .iter()
        .filter(|l| {
            l.contains("msg=\"final count\"")
                && (l.contains(&format!("labels={labels} "))
                    || l.contains(&format!("labels=\"{labels}\" ")))
        })
        .find_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("value="))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or_else(|| panic!("no final count for {labels} in:\n{}", lines.join("\n")))
}
