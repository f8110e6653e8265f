//! Helpers for the simulator's tests: start the real binary, talk HTTP over plain TCP, poll
//! conditions with deadlines, run `chainwatch-exporter replay` on log segments.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Fast blocks so scenarios show within a second or two: 4+ nodes, 2 regions, every family,
/// both `metrics_from` choices.
pub const FLEET: &str = "
version: 1
network: testnet
block_interval: 200ms
line_interval: 50ms
sidecar: {poll_interval: 500ms, file_poll_interval: 50ms}
nodes:
  - {name: cj-eu, family: coinjecture, region: eu, consensus_mode: shadow}
  - {name: cj-us, family: coinjecture, region: us, consensus_mode: rust, metrics_from: api}
  - {name: dil-eu, family: dilithion, region: eu}
  - {name: dil-us, family: dilithion, region: us, peers: 6}
  - {name: pop-eu, family: pop, region: eu, validators: 4}
  - {name: pop-us, family: pop, region: us, validators: 4, metrics_from: api}
  - {name: bc-eu, family: bitcell, region: eu, miners: 5}
  - {name: bc-us, family: bitcell, region: us, miners: 5}
";

pub const DEADLINE: Duration = Duration::from_secs(10);

/// A running simulator; SIGTERM (then SIGKILL) on drop.
pub struct Sim {
    pub child: Child,
    pub dir: tempfile::TempDir,
    /// The first line of stdout.
    pub info: Value,
    pub control: String,
}

impl Sim {
    pub fn start() -> Sim {
        Sim::start_with(FLEET, &[])
    }

    pub fn start_with(fleet: &str, args: &[&str]) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let fleet_path = dir.path().join("fleet.yaml");
        std::fs::write(&fleet_path, fleet).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_chainwatch-sim"))
            .arg("--fleet")
            .arg(&fleet_path)
            .arg("--dir")
            .arg(dir.path().join("fleet"))
            .args(["--control", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chainwatch-sim");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            // Keep the pipe drained; show the simulator's messages with the test's output.
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[sim] {l}");
            }
        });
        let line = rx
            .recv_timeout(DEADLINE)
            .expect("chainwatch-sim prints its addresses on the first line");
        let info: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("first line is JSON: {e}: {line:?}"));
        let control = info["control_url"].as_str().unwrap().to_string();
        Sim {
            child,
            dir,
            info,
            control,
        }
    }

    pub fn announced(&self, name: &str) -> Value {
        self.info["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .unwrap_or_else(|| panic!("node {name} announced"))
            .clone()
    }

    pub fn url(&self, name: &str, path: &str) -> String {
        format!(
            "{}{path}",
            self.announced(name)["api_url"].as_str().unwrap()
        )
    }

    pub fn log(&self, name: &str) -> PathBuf {
        PathBuf::from(self.announced(name)["logs"][0].as_str().unwrap())
    }

    pub fn logs(&self, name: &str) -> Vec<PathBuf> {
        self.announced(name)["logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| PathBuf::from(p.as_str().unwrap()))
            .collect()
    }

    pub fn state(&self) -> Value {
        let (status, body) = get(&format!("{}/state", self.control)).expect("GET /state");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    pub fn node(&self, name: &str) -> Value {
        self.state()["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .unwrap()
            .clone()
    }

    pub fn height(&self, name: &str) -> u64 {
        self.node(name)["height"].as_u64().unwrap()
    }

    /// POST /scenario; returns (status, parsed body).
    pub fn scenario(&self, body: &str) -> (u16, Value) {
        let (status, text) =
            post(&format!("{}/scenario", self.control), body, &[]).expect("POST /scenario");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// POST /scenario that must succeed.
    pub fn set(&self, body: &str) -> Value {
        let (status, v) = self.scenario(body);
        assert_eq!(status, 200, "POST /scenario {body}: {v}");
        v
    }

    /// A JSON-RPC call to a Dilithion node with its cookie.
    pub fn rpc(&self, name: &str, method: &str) -> std::io::Result<(u16, Value)> {
        let cookie_path = self.announced(name)["cookie_file"]
            .as_str()
            .unwrap()
            .to_string();
        let cookie = std::fs::read_to_string(cookie_path)?;
        let auth = format!("Basic {}", base64(cookie.trim().as_bytes()));
        let body = format!(r#"{{"jsonrpc":"1.0","id":"t","method":"{method}","params":[]}}"#);
        let (status, text) = post(
            &self.url(name, "/"),
            &body,
            &[("authorization", auth.as_str())],
        )?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    pub fn block_count(&self, name: &str) -> u64 {
        let (status, v) = self.rpc(name, "getblockcount").expect("getblockcount");
        assert_eq!(status, 200, "{v}");
        v["result"].as_u64().unwrap()
    }

    /// Wait until node `name` is `n` blocks past where it is now.
    pub fn wait_blocks(&self, name: &str, n: u64) {
        let h = self.height(name);
        wait_until(&format!("{name} advances {n} blocks past {h}"), || {
            self.height(name) >= h + n
        });
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return self.child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

/// Poll `f` until it holds; panic with `what` at the deadline.
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if f() {
            return;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting until {what}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// One HTTP/1.1 exchange over a fresh connection.
pub fn http(
    method: &str,
    url: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr: std::net::SocketAddr = authority.parse().expect("host:port");
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or("");
    if method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("no HTTP response: {text:?}"),
        )
    })?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head:?}")))?;
    Ok((status, body.to_string()))
}

pub fn get(url: &str) -> std::io::Result<(u16, String)> {
    http("GET", url, None, &[], Duration::from_secs(5))
}

pub fn post(url: &str, body: &str, headers: &[(&str, &str)]) -> std::io::Result<(u16, String)> {
    http("POST", url, Some(body), headers, Duration::from_secs(5))
}

pub fn get_json(url: &str) -> Value {
    let (status, body) = get(url).unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(status, 200, "GET {url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}: {body}"))
}

/// Is the connection refused (the port closed)?
pub fn refused(url: &str) -> bool {
    matches!(get(url), Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
}

/// The sidecar binary, built once per test run (`cargo build -p chainwatch-exporter`; a no-op
/// when it is up to date) in the workspace's target directory. `CHAINWATCH_EXPORTER=path` uses
/// that binary instead.
pub fn exporter() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("CHAINWATCH_EXPORTER") {
            return PathBuf::from(p);
        }
        let t = Instant::now();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let st = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "chainwatch-exporter"])
            .current_dir(&root)
            .status()
            .expect("run cargo build -p chainwatch-exporter");
        assert!(st.success(), "cargo build -p chainwatch-exporter failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        let bin = target.join("debug").join("chainwatch-exporter");
        assert!(bin.exists(), "{} was not built", bin.display());
        eprintln!("chainwatch-exporter built in {:?}", t.elapsed());
        bin
    })
}

/// The bytes appended to `path` since `offset`, up to the last complete line, as a file of its
/// own (for `replay`).
pub fn segment(path: &Path, offset: u64, into: &Path) -> PathBuf {
    let all = std::fs::read(path).unwrap();
    let tail = &all[offset as usize..];
    let end = tail.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let name = format!(
        "{}-{}-from-{offset}.log",
        path.parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy(),
        path.file_stem().unwrap().to_string_lossy()
    );
    let out = into.join(name);
    std::fs::write(&out, &tail[..end]).unwrap();
    out
}

pub fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Samples of `chainwatch-exporter replay --profile P… FILES`, by series text (name{labels}).
pub struct Samples(pub BTreeMap<String, f64>);

impl Samples {
    /// Sum of every series of `name` whose labels contain all of `labels` (k="v").
    pub fn sum(&self, name: &str, labels: &[&str]) -> f64 {
        self.0
            .iter()
            .filter(|(k, _)| {
                let (n, rest) = k.split_once('{').unwrap_or((k.as_str(), ""));
                n == name && labels.iter().all(|l| rest.contains(l))
            })
            .map(|(_, v)| *v)
            .sum()
    }

    pub fn has(&self, name: &str) -> bool {
        self.0
            .keys()
            .any(|k| k.split_once('{').map_or(k.as_str(), |x| x.0) == name)
    }
}

pub fn replay(profiles: &[&str], files: &[PathBuf]) -> Samples {
    let mut cmd = Command::new(exporter());
    cmd.arg("replay");
    for p in profiles {
        cmd.args(["--profile", p]);
    }
    let out = cmd
        .args(files)
        .output()
        .expect("run chainwatch-exporter replay");
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut m = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        m.insert(series.to_string(), value.parse().unwrap());
    }
    Samples(m)
}

/// A chainwatch-exporter started on a generated config; SIGTERM on drop.
pub struct Sidecar {
    pub child: Child,
    pub metrics_url: String,
}

impl Sidecar {
    pub fn start(config: &str) -> Sidecar {
        let mut child = Command::new(exporter())
            .args(["--config", config, "--web.listen-address", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chainwatch-exporter");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(a) = l
                    .contains("msg=listening")
                    .then(|| {
                        l.split_whitespace()
                            .find_map(|f| f.strip_prefix("address="))
                    })
                    .flatten()
                {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(a.to_string());
                    }
                }
            }
        });
        let addr = rx
            .recv_timeout(DEADLINE)
            .expect("chainwatch-exporter logs its listening address");
        Sidecar {
            child,
            metrics_url: format!("http://{addr}/metrics"),
        }
    }

    /// The value of the first series of `name` (any labels), if exported.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (_, text) = get(&self.metrics_url).ok()?;
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find(|l| {
                l.strip_prefix(name)
                    .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
            })
            .and_then(|l| l.rsplit_once(' '))
            .and_then(|(_, v)| v.parse().ok())
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}
