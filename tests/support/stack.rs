//! The whole chain on loopback, the way an operator runs it: the simulated fleet
//! (`chainwatch-sim`) with one real sidecar per node on the configuration the simulator generated
//! (the simulator runs them beside their nodes, so a host that dies takes its sidecar with it),
//! the rules, Alertmanager configuration and dashboards rendered by `chainwatch-rulegen` with a
//! test overlay, the real `prometheus` scraping the sidecars every second and the real
//! Alertmanager delivering to a [`Webhook`] inside the test.
//!
//! Every port is chosen at run time; every process is stopped when the [`Stack`] is dropped
//! (Prometheus first, the webhook last), also when a test fails.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use serde_norway::Value as Yaml;

use crate::http::{self, urlencode};
use crate::process::Proc;
use crate::wait;
use crate::webhook::{Received, Webhook};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace's own binaries, rebuilt once per test run when stale (`cargo build -p …`, a
/// no-op when they are up to date), so `cargo test -p chainwatch-tests` never runs old ones.
pub fn fresh_bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        let release = exe
            .parent()
            .and_then(|d| d.parent())
            .is_some_and(|d| d.ends_with("release"));
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "--quiet"]);
        if release {
            cmd.arg("--release");
        }
        for p in [
            "chainwatch-exporter",
            "chainwatch-sim",
            "chainwatch-rulegen",
            "chainwatch-gate",
        ] {
            cmd.args(["-p", p]);
        }
        let st = cmd
            .current_dir(root())
            .status()
            .expect("run cargo build for the workspace binaries");
        assert!(st.success(), "cargo build of the workspace binaries failed");
    });
    crate::workspace_bin(name)
}

/// Every rule file of a rulegen output `dir`: the regional ones (`prometheus/rules/*.rules.yml`)
/// and the global tier's (`prometheus/rules/global/*.rules.yml`), sorted.
pub fn rule_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in ["prometheus/rules", "prometheus/rules/global"] {
        for e in std::fs::read_dir(dir.join(d)).unwrap() {
            let p = e.unwrap().path();
            if p.to_string_lossy().ends_with(".rules.yml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A system binary: `$ENV` if set, else the first of `names` found on PATH.
pub fn system_bin(env: &str, names: &[&str], package: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "none of {names:?} on PATH: install Debian's `{package}` package (scripts/test.sh does), \
         or set {env}=/path/to/binary"
    );
}

/// A port that was free a moment ago (for the two programs that cannot be told to pick one).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// One simulated node and its sidecar.
pub struct Node {
    pub name: String,
    pub family: String,
    pub chain: String,
    pub region: String,
    /// The host's address, where Prometheus scrapes the sidecar: `http://127.0.0.1:PORT`.
    pub sidecar_url: String,
    /// The sidecar's log (every run of it).
    pub sidecar_log: PathBuf,
    /// Labels Prometheus sets on the node's target: `region` and `node` for a node whose
    /// sidecar leaves its identity to Prometheus (`identity: target` in the fleet file).
    pub target_labels: BTreeMap<String, String>,
}

/// What the test wrote for one receiver of the generated Alertmanager configuration.
#[derive(Clone, Debug)]
pub struct Redirect {
    /// slack, pagerduty or webhook
    pub kind: String,
    /// Path on the test's webhook it now delivers to.
    pub path: String,
    /// The secret it must present: PagerDuty routing key, webhook bearer token (Slack: its
    /// secret is the URL itself).
    pub secret: Option<String>,
    /// Slack channel of the generated configuration.
    pub channel: Option<String>,
}

pub struct Stack {
    // Dropped in declaration order: Prometheus stops sending first, the directory goes last.
    pub prometheus: Proc,
    pub alertmanager: Proc,
    /// The simulator, which runs the sidecars (and stops them when it stops).
    pub sim: Proc,
    pub webhook: Webhook,
    pub prometheus_url: String,
    pub alertmanager_url: String,
    pub control_url: String,
    pub nodes: Vec<Node>,
    /// The rulegen output (prometheus/, alertmanager/, grafana/, docs/).
    pub rendered: PathBuf,
    /// receiver name → where it delivers now.
    pub receivers: BTreeMap<String, Redirect>,
    pub started: Instant,
    pub dir: Option<tempfile::TempDir>,
    pub dir_path: PathBuf,
}

const START: Duration = Duration::from_secs(30);

impl Stack {
    /// Start everything for the fleet file and the rulegen overlay (paths relative to the
    /// repository root), and wait until Prometheus scrapes every sidecar.
    pub fn start(fleet: &str, overlay: &str) -> Stack {
        Stack::start_with(fleet, overlay, Arc::new(|_: &Received| {}))
    }

    /// [`Stack::start`], calling `on_delivery` for every request the receivers' webhook gets
    /// (the demo prints them).
    pub fn start_with(
        fleet: &str,
        overlay: &str,
        on_delivery: Arc<dyn Fn(&Received) + Send + Sync>,
    ) -> Stack {
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("chainwatch-e2e.")
            .tempdir()
            .expect("tempdir");
        let d = dir.path().to_path_buf();
        // CHAINWATCH_E2E_KEEP=1 keeps the directory (logs, rendered files, TSDB) for a look.
        let (dir, dir_path) = if std::env::var_os("CHAINWATCH_E2E_KEEP").is_some() {
            let p = dir.keep();
            eprintln!("e2e: keeping {}", p.display());
            (None, p)
        } else {
            (Some(dir), d.clone())
        };
        let logs = d.join("logs");
        std::fs::create_dir_all(&logs).unwrap();

        let webhook = Webhook::start_with(on_delivery);

        let (sim, control_url, nodes) = start_sim(fleet, &d, &logs);
        let rendered = render(overlay, &d);
        let (alertmanager, alertmanager_url, receivers) =
            start_alertmanager(&rendered, &d, &logs, &webhook);

        // Prometheus: every sidecar every second, the rendered rules every second. A node that
        // leaves its identity to Prometheus gets it as target labels, as relabeling would set.
        let targets: Vec<String> = nodes
            .iter()
            .map(|n| {
                let labels: Vec<String> = n
                    .target_labels
                    .iter()
                    .map(|(k, v)| format!("{k}: '{v}'"))
                    .collect();
                format!(
                    "      - targets: ['{}']\n        labels: {{{}}}\n",
                    n.sidecar_url.trim_start_matches("http://"),
                    labels.join(", ")
                )
            })
            .collect();
        let prom_config = d.join("prometheus.yml");
        std::fs::write(
            &prom_config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n\
                 rule_files: ['{rules}/*.rules.yml', '{rules}/global/*.rules.yml']\n\
                 alerting:\n  alertmanagers:\n    - static_configs: [{{targets: ['{am}']}}]\n\
                 scrape_configs:\n  - job_name: chainwatch\n    static_configs:\n{targets}",
                rules = rendered.join("prometheus/rules").display(),
                am = alertmanager_url.trim_start_matches("http://"),
                targets = targets.concat(),
            ),
        )
        .unwrap();
        let prom_bin = system_bin("PROMETHEUS", &["prometheus"], "prometheus");
        let (prometheus, prometheus_url) = start_on_free_port("prometheus", &logs, |port| {
            let mut cmd = Command::new(&prom_bin);
            cmd.arg(format!("--config.file={}", prom_config.display()))
                .arg(format!("--storage.tsdb.path={}", d.join("tsdb").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                // Alerts firing at the first evaluation (the Watchdog) are dropped when
                // Alertmanager is not discovered yet; resend within seconds, not the default
                // minute. Firing alerts are then valid for 4 × 5s without a resend.
                .arg("--rules.alert.resend-delay=5s");
            cmd
        });

        let stack = Stack {
            prometheus,
            alertmanager,
            sim,
            webhook,
            prometheus_url,
            alertmanager_url,
            control_url,
            nodes,
            rendered,
            receivers,
            started,
            dir,
            dir_path,
        };
        let n = stack.nodes.len();
        wait::until("Prometheus scrapes every sidecar", START, || {
            let t = http::get_json(&format!("{}/api/v1/targets", stack.prometheus_url));
            let active = t["data"]["activeTargets"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let up = active.iter().filter(|t| t["health"] == "up").count();
            if up == n {
                Ok(())
            } else {
                Err(format!("{up} of {n} targets up: {active:?}"))
            }
        });
        eprintln!(
            "stack: {} nodes and their sidecars, Prometheus {} and Alertmanager {} up in {:?}",
            n,
            stack.prometheus_url,
            stack.alertmanager_url,
            stack.started.elapsed()
        );
        stack
    }

    pub fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name} in the fleet"))
    }

    /// POST /scenario to the simulator; must succeed.
    pub fn scenario(&self, body: &str) -> Value {
        self.control("/scenario", body)
    }

    /// POST to the simulator's control API (`/scenario`, `/mode`); must succeed.
    pub fn control(&self, path: &str, body: &str) -> Value {
        let (status, text) = http::post(&format!("{}{path}", self.control_url), body)
            .unwrap_or_else(|e| panic!("POST {path} {body}: {e}"));
        assert_eq!(status, 200, "POST {path} {body}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// An instant query: the result vector, or the error Prometheus gave.
    pub fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let url = format!(
            "{}/api/v1/query?query={}",
            self.prometheus_url,
            urlencode(expr)
        );
        prom_result(&url)
    }

    /// A range query over the last `range` with `step`: the result matrix, or the error.
    pub fn query_range(
        &self,
        expr: &str,
        range: Duration,
        step: &str,
    ) -> Result<Vec<Value>, String> {
        let end = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let url = format!(
            "{}/api/v1/query_range?query={}&start={:.3}&end={:.3}&step={step}",
            self.prometheus_url,
            urlencode(expr),
            end - range.as_secs_f64(),
            end
        );
        prom_result(&url)
    }

    /// Alertmanager's view of the alerts (`/api/v2/alerts`): active, suppressed (inhibited).
    pub fn am_alerts(&self) -> Vec<Value> {
        http::get_json(&format!("{}/api/v2/alerts", self.alertmanager_url))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The last lines of every process's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for p in [&self.prometheus, &self.alertmanager, &self.sim] {
            s.push_str(&p.logs());
            s.push('\n');
        }
        s
    }
}

/// The simulated fleet of `fleet` (relative to the repository root) under `d/fleet`, every node
/// on a host with its real sidecar: the simulator, its control URL and the nodes.
pub fn start_sim(fleet: &str, d: &Path, logs: &Path) -> (Proc, String, Vec<Node>) {
    // The simulated fleet, each node on a host with its sidecar (a real chainwatch-exporter
    // on the configuration the simulator generated), scraped at the host's address so that
    // hosts can die with their sidecars and partitions cut them off.
    let mut cmd = Command::new(fresh_bin("chainwatch-sim"));
    cmd.arg("--fleet")
        .arg(root().join(fleet))
        .arg("--dir")
        .arg(d.join("fleet"))
        .args(["--control", "127.0.0.1:0"])
        .arg("--sidecar")
        .arg(fresh_bin("chainwatch-exporter"));
    let mut sim = Proc::spawn("chainwatch-sim", cmd, logs);
    let out = sim.stdout.clone();
    let line = sim.wait_line(&out, "control_url", START);
    let info: Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("chainwatch-sim's first line is JSON: {e}: {line}"));
    let control_url = info["control_url"].as_str().unwrap().to_string();
    let nodes: Vec<Node> = info["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            let config = std::fs::read_to_string(n["config"].as_str().unwrap()).unwrap();
            let cfg: Yaml = serde_norway::from_str(&config).unwrap();
            Node {
                name: n["name"].as_str().unwrap().to_string(),
                family: n["family"].as_str().unwrap().to_string(),
                chain: cfg["labels"]["chain"].as_str().unwrap().to_string(),
                region: n["region"].as_str().unwrap().to_string(),
                sidecar_url: n["sidecar_url"].as_str().unwrap().to_string(),
                sidecar_log: PathBuf::from(n["sidecar_log"].as_str().unwrap()),
                target_labels: n["target_labels"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect(),
            }
        })
        .collect();

    (sim, control_url, nodes)
}

/// Rules, Alertmanager configuration and dashboards from thresholds.yaml + `overlay`, in
/// `d/rendered`.
pub fn render(overlay: &str, d: &Path) -> PathBuf {
    // Rules, Alertmanager configuration and dashboards from thresholds.yaml + the overlay.
    let rendered = d.join("rendered");
    let out = Command::new(fresh_bin("chainwatch-rulegen"))
        .arg("--thresholds")
        .arg(root().join("thresholds.yaml"))
        .arg("--overlay")
        .arg(root().join(overlay))
        .arg("--out")
        .arg(&rendered)
        .current_dir(root())
        .output()
        .expect("run chainwatch-rulegen");
    assert!(
        out.status.success(),
        "chainwatch-rulegen --overlay {overlay} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    rendered
}

/// The real Alertmanager on the rendered configuration, its receivers redirected to `webhook`.
pub fn start_alertmanager(
    rendered: &Path,
    d: &Path,
    logs: &Path,
    webhook: &Webhook,
) -> (Proc, String, BTreeMap<String, Redirect>) {
    // Alertmanager: the generated configuration, its receivers redirected to the webhook.
    let am_config = d.join("alertmanager.yml");
    let receivers = redirect_receivers(
        &rendered.join("alertmanager/alertmanager.yml"),
        &am_config,
        &webhook.url(),
        &d.join("secrets"),
    );
    let amtool = system_bin("AMTOOL", &["amtool"], "prometheus-alertmanager");
    let out = Command::new(amtool)
        .args(["check-config"])
        .arg(&am_config)
        .output()
        .expect("run amtool");
    assert!(
        out.status.success(),
        "amtool check-config on the redirected configuration:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let am_bin = system_bin(
        "ALERTMANAGER",
        &["alertmanager", "prometheus-alertmanager"],
        "prometheus-alertmanager",
    );
    let (alertmanager, alertmanager_url) = start_on_free_port("alertmanager", logs, |port| {
        let mut cmd = Command::new(&am_bin);
        cmd.arg(format!("--config.file={}", am_config.display()))
            .arg(format!("--storage.path={}", d.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // No gossip cluster: one instance, no port 9094.
            .arg("--cluster.listen-address=");
        cmd
    });

    (alertmanager, alertmanager_url, receivers)
}

fn prom_result(url: &str) -> Result<Vec<Value>, String> {
    let (status, body) = http::get(url).map_err(|e| format!("GET {url}: {e}"))?;
    let v: Value = serde_json::from_str(&body).map_err(|e| format!("{status} {e}: {body}"))?;
    if v["status"] != "success" {
        return Err(format!(
            "{status} {}: {}",
            v["errorType"].as_str().unwrap_or(""),
            v["error"].as_str().unwrap_or(&body)
        ));
    }
    Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
}

/// Start a program that must be given a port: pick a free one, and pick again if it was taken
/// in between. Waits for `/-/ready`.
pub fn start_on_free_port(
    name: &str,
    logs: &Path,
    mut cmd: impl FnMut(u16) -> Command,
) -> (Proc, String) {
    for attempt in 0..5 {
        let port = free_port();
        let mut p = Proc::spawn(&format!("{name}-{attempt}"), cmd(port), logs);
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + START;
        loop {
            if let Ok((200, _)) = http::get(&format!("{url}/-/ready")) {
                return (p, url);
            }
            if let Some(st) = p.exited() {
                let err = std::fs::read_to_string(&p.stderr).unwrap_or_default();
                if err.contains("address already in use") {
                    break; // the port was taken meanwhile: try another
                }
                panic!("{name} exited ({st}):\n{}", p.logs());
            }
            if Instant::now() >= deadline {
                panic!("{name} not ready within {START:?}:\n{}", p.logs());
            }
            std::thread::sleep(wait::POLL);
        }
    }
    panic!("{name}: no free port after 5 attempts");
}

/// Rewrite the generated Alertmanager configuration `src` into `dst` so that every receiver
/// delivers to the test's webhook: Slack `api_url_file` → a file holding the webhook URL,
/// PagerDuty `routing_key_file` → a file with a test key and `url` → the webhook, webhook
/// `url` → the webhook and its bearer token file → a test token. Nothing else changes (routes,
/// timings, inhibitions and templates are the generated ones; template paths become absolute).
/// Secrets given inline, or a receiver type the test does not know, fail the test.
pub fn redirect_receivers(
    src: &Path,
    dst: &Path,
    webhook: &str,
    secrets: &Path,
) -> BTreeMap<String, Redirect> {
    std::fs::create_dir_all(secrets).unwrap();
    let text = std::fs::read_to_string(src).unwrap();
    let mut cfg: Yaml = serde_norway::from_str(&text).expect("generated alertmanager.yml parses");
    let mut out = BTreeMap::new();
    let receivers = cfg["receivers"]
        .as_sequence_mut()
        .expect("alertmanager.yml has receivers");
    let s = |v: &str| Yaml::String(v.to_string());
    for r in receivers.iter_mut() {
        let name = r["name"].as_str().expect("receiver name").to_string();
        let m = r.as_mapping_mut().unwrap();
        for (k, v) in m.iter_mut() {
            let k = k.as_str().unwrap().to_string();
            if k == "name" {
                continue;
            }
            let configs = v
                .as_sequence_mut()
                .unwrap_or_else(|| panic!("receiver {name}: {k} is not a list"));
            assert_eq!(configs.len(), 1, "receiver {name}: one {k} entry expected");
            let c = configs[0].as_mapping_mut().unwrap();
            let mut redirect = |kind: &str, secret: Option<String>, channel: Option<String>| {
                let path = format!("/{kind}/{name}");
                out.insert(
                    name.clone(),
                    Redirect {
                        kind: kind.to_string(),
                        path: path.clone(),
                        secret,
                        channel,
                    },
                );
                format!("{webhook}{path}")
            };
            match k.as_str() {
                "slack_configs" => {
                    assert!(
                        !c.contains_key("api_url"),
                        "receiver {name}: Slack URL inline"
                    );
                    assert!(
                        c.contains_key("api_url_file"),
                        "receiver {name}: Slack URL not read from a file"
                    );
                    let channel = c.get("channel").and_then(|v| v.as_str()).map(String::from);
                    let url = redirect("slack", None, channel);
                    let f = secrets.join(format!("{name}.url"));
                    std::fs::write(&f, format!("{url}\n")).unwrap();
                    c.insert(s("api_url_file"), s(f.to_str().unwrap()));
                }
                "pagerduty_configs" => {
                    for inline in ["routing_key", "service_key"] {
                        assert!(!c.contains_key(inline), "receiver {name}: {inline} inline");
                    }
                    assert!(
                        c.contains_key("routing_key_file"),
                        "receiver {name}: routing key not read from a file"
                    );
                    let key = format!("e2e-routing-key-{name}");
                    let url = redirect("pagerduty", Some(key.clone()), None);
                    let f = secrets.join(format!("{name}.routing-key"));
                    std::fs::write(&f, format!("{key}\n")).unwrap();
                    c.insert(s("routing_key_file"), s(f.to_str().unwrap()));
                    c.insert(s("url"), s(&url));
                }
                "webhook_configs" => {
                    let auth = &c
                        .get("http_config")
                        .and_then(|h| h.get("authorization"))
                        .cloned();
                    let token = auth.as_ref().map(|a| {
                        assert!(
                            a.get("credentials").is_none(),
                            "receiver {name}: webhook credentials inline"
                        );
                        assert!(
                            a.get("credentials_file").is_some(),
                            "receiver {name}: webhook credentials not read from a file"
                        );
                        format!("e2e-token-{name}")
                    });
                    let url = redirect("webhook", token.clone(), None);
                    c.insert(s("url"), s(&url));
                    if let Some(token) = token {
                        let f = secrets.join(format!("{name}.token"));
                        std::fs::write(&f, format!("{token}\n")).unwrap();
                        let h = c.get_mut("http_config").unwrap();
                        h["authorization"]
                            .as_mapping_mut()
                            .unwrap()
                            .insert(s("credentials_file"), s(f.to_str().unwrap()));
                    }
                }
                other => panic!("receiver {name}: the test cannot redirect {other}"),
            }
        }
    }
    // Alertmanager resolves `templates:` against the configuration's directory: the rewritten
    // file lives elsewhere, so point them at the generated templates beside the original.
    let dir = src.parent().unwrap();
    if let Some(t) = cfg.get_mut("templates").and_then(|t| t.as_sequence_mut()) {
        for g in t.iter_mut() {
            let rel = g.as_str().expect("a template glob").to_string();
            *g = s(dir.join(rel).to_str().unwrap());
        }
    }
    std::fs::write(dst, serde_norway::to_string(&cfg).unwrap()).unwrap();
    out
}
