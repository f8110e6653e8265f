//! The flags an operator of node_exporter expects from exporter-toolkit: socket activation through
//! systemd's own `systemd-socket-activate`, several `--web.listen-address`, `--log.format=json`
//! with RFC 3339 timestamps.

mod common;
use common::process::{http_get, poll_until, Sidecar, DEADLINE};
use common::*;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::time::SystemTime;

fn config(dir: &Path) -> PathBuf {
    let p = dir.join("chainwatch.yaml");
    write(
        &p,
        &format!(
            "version: 1\nprofiles: [dilithion]\nlabels: {{node: n1}}\nsources:\n  - name: node-log\n    type: file\n    paths: [\"{}/node.log*\"]\n",
            dir.display()
        ),
    );
    p
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child whose stderr lines arrive on a channel; killed when dropped.
struct Child {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Child {
    fn spawn(cmd: &mut Command) -> Child {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let err = child.stderr.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Child {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    fn wait_line(&mut self, f: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if f(&l) {
                        return l;
                    }
                }
                Err(_) => panic!("no such line; stderr so far:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// SIGTERM; the exit code and the rest of stderr.
    fn terminate(mut self) -> (i32, Vec<String>) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let code = self.child.wait().unwrap().code().unwrap_or(-1);
        while let Ok(l) = self.lines.recv_timeout(std::time::Duration::from_secs(5)) {
            self.seen.push(l);
        }
        (code, std::mem::take(&mut self.seen))
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn systemd_socket_activation_serves_on_the_passed_socket() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    // systemd-socket-activate (package systemd) binds, and on the first connection execs the
    // sidecar in its own process with LISTEN_FDS=1, LISTEN_PID and the socket as fd 3, as a
    // .socket unit does. The listen address given must not be used.
    let mut c = Child::spawn(
        Command::new("systemd-socket-activate")
            .args(["-l", &addr])
            .arg(bin())
            .arg("--config")
            .arg(&cfg)
            .args([
                "--web.systemd-socket",
                "--web.listen-address",
                "127.0.0.1:1",
            ]),
    );
    c.wait_line(|l| l.contains(&format!("Listening on {addr}")));
    // This first request starts the sidecar; it is answered once the sidecar accepts.
    let (status, body) = http_get(&addr, "/metrics");
    assert_eq!(status, 200);
    assert!(body.contains("chainwatch_build_info"), "{body}");
    let line = c.wait_line(|l| l.contains("msg=listening"));
    assert!(line.contains(&format!("address={addr}")), "{line}");
    assert!(line.contains("systemd_socket=true"), "{line}");
    let (status, _) = http_get(&addr, "/health");
    assert_eq!(status, 200);
    // Sources run as usual.
    std::fs::write(
        dir.path().join("node.log"),
        "[INFO] BLOCK FOUND! height=9\n",
    )
    .unwrap();
    poll_until("the line counted", || {
        let (_, b) = http_get(&addr, "/metrics");
        value(&parse(&b), "chain_blocks_mined_total", &[]).filter(|v| *v == 1.0)
    });
    let (code, log) = c.terminate();
    assert_eq!(code, 0, "{}", log.join("\n"));
}

#[test]
fn systemd_socket_without_a_socket_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .arg("--config")
        .arg(config(dir.path()))
        .arg("--web.systemd-socket")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no socket activation file descriptors"),
        "{err}"
    );
    assert!(!err.contains("msg=listening"), "{err}");
}

#[test]
fn every_listen_address_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Sidecar::start(
        &config(dir.path()),
        &["--web.listen-address", "127.0.0.1:0"],
    );
    let first = s.addr.clone();
    let second =
        s.wait_log(|l| l.contains("msg=listening") && !l.contains(&format!("address={first} ")));
    let second = second
        .split_whitespace()
        .find_map(|w| w.strip_prefix("address="))
        .unwrap()
        .to_string();
    assert_ne!(first, second);
    for a in [&first, &second] {
        let (status, body) = http_get(a, "/metrics");
        assert_eq!(status, 200, "{a}");
        assert!(body.contains("chainwatch_build_info"));
    }
    // An address that cannot be had stops the start, naming it.
    let out = Command::new(bin())
        .arg("--config")
        .arg(config(dir.path()))
        .args([
            "--web.listen-address",
            "127.0.0.1:0",
            "--web.listen-address",
            &first,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&first));
    let (code, _) = s.terminate();
    assert_eq!(code, 0);
}

#[test]
fn json_logs_are_one_object_a_line_with_rfc3339_times() {
    let dir = tempfile::tempdir().unwrap();
    let before = SystemTime::now() - std::time::Duration::from_secs(1);
    let mut c = Child::spawn(
        Command::new(bin())
            .arg("--config")
            .arg(config(dir.path()))
            .args([
                "--web.listen-address",
                "127.0.0.1:0",
                "--log.format",
                "json",
            ]),
    );
    let line = c.wait_line(|l| l.contains("\"listening\""));
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["msg"], "listening");
    assert_eq!(v["level"], "info");
    let addr = v["address"].as_str().unwrap().to_string();
    assert_eq!(http_get(&addr, "/health").0, 200);
    let (code, lines) = c.terminate();
    assert_eq!(code, 0);
    assert!(lines.iter().any(|l| l.contains("\"final count\"")));
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l}"));
        let ts = v["ts"].as_str().unwrap();
        // RFC 3339, UTC, milliseconds: 2025-01-31T12:00:00.123Z
        assert!(ts.len() == 24 && ts.ends_with('Z'), "{ts}");
        let t = humantime::parse_rfc3339(ts).unwrap();
        assert!(t >= before && t <= SystemTime::now(), "{ts}");
        assert!(v["msg"].is_string() && v["level"].is_string(), "{l}");
    }
}

#[test]
fn sigterm_as_soon_as_listening_is_logged_is_a_clean_exit() {
    // systemd and supervisors send SIGTERM whenever they like; one sent the moment the sidecar
    // says it is listening once found the default action still in place (death by signal).
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    for round in 0..10 {
        let mut c = Child::spawn(
            Command::new(bin())
                .arg("--config")
                .arg(&cfg)
                .args(["--web.listen-address", "127.0.0.1:0"]),
        );
        c.wait_line(|l| l.contains("listening"));
        let (code, lines) = c.terminate();
        assert_eq!(code, 0, "round {round}: {}", lines.join("\n"));
        assert!(
            lines.iter().any(|l| l.contains("final count")),
            "round {round}: {}",
            lines.join("\n")
        );
    }
}
