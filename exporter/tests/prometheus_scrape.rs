//! The real Prometheus (Debian's, 2.42) scrapes the sidecar twice over: once as it negotiates on
//! its own — OpenMetrics 1.0 and gzip, the first choice of its Accept header — and once asking
//! for the classic text format uncompressed. Prometheus 2.42 predates `scrape_protocols` (2.49),
//! so for the classic job a proxy in this test rewrites the request's Accept and drops its
//! Accept-Encoding; both proxies record what was asked and answered. Both jobs must ingest the
//! same samples.

mod common;
use common::process::{poll_until, Sidecar};
use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What one scrape asked for and got: Accept, Accept-Encoding, Content-Type, Content-Encoding.
type Exchange = [String; 4];

/// A proxy in front of the sidecar, one connection per scrape. With `classic`, the request asks
/// for the classic text format, uncompressed, whatever Prometheus sent.
fn proxy(upstream: String, classic: bool) -> (String, Arc<Mutex<Vec<Exchange>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for c in l.incoming().map_while(Result::ok) {
            let (up, log) = (upstream.clone(), log2.clone());
            std::thread::spawn(move || {
                let _ = relay(c, &up, classic, &log);
            });
        }
    });
    (addr, log)
}

fn head_of(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn header(head: &str, name: &str) -> String {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default()
}

fn relay(
    mut c: TcpStream,
    upstream: &str,
    classic: bool,
    log: &Mutex<Vec<Exchange>>,
) -> std::io::Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(e) = head_of(&buf) {
            break e;
        }
        let n = c.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let (accept, encoding) = (header(&head, "accept"), header(&head, "accept-encoding"));
    let mut out = String::new();
    for (i, line) in head.trim_end().split("\r\n").enumerate() {
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if i > 0
            && (name == "connection"
                || (classic && (name == "accept" || name == "accept-encoding")))
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    if classic {
        out.push_str("Accept: text/plain;version=0.0.4\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut s = TcpStream::connect(upstream)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(out.as_bytes())?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let rh = head_of(&resp).map_or(String::new(), |e| {
        String::from_utf8_lossy(&resp[..e]).into_owned()
    });
    log.lock().unwrap().push([
        accept,
        encoding,
        header(&rh, "content-type"),
        header(&rh, "content-encoding"),
    ]);
    c.write_all(&resp)?;
    Ok(())
}

struct Prometheus {
    child: Child,
    url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn prometheus(dir: &Path, jobs: &[(&str, &str)]) -> Prometheus {
    let mut cfg =
        String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
    for (job, target) in jobs {
        cfg.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
        ));
    }
    write(&dir.join("prometheus.yml"), &cfg);
    let bin = std::env::var("PROMETHEUS").unwrap_or_else(|_| "prometheus".into());
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new(&bin)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus (Debian package prometheus)");
        let mut p = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let ready = (0..600).any(|_| {
            if p.child.try_wait().ok().flatten().is_some() {
                return false;
            }
            let addr = format!("127.0.0.1:{port}");
            if TcpStream::connect(&addr).is_ok()
                && common::process::http_get(&addr, "/-/ready").0 == 200
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
            false
        });
        if ready {
            return p;
        }
    }
    panic!(
        "prometheus did not start:\n{}",
        std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
    );
}

/// Prometheus's HTTP API, through curl (its answers are chunked).
fn api(p: &Prometheus, path: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "20"])
        .arg(format!("{}{path}", p.url))
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "{path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The series one job ingested, at one instant: labels without job/instance, `le` as a number.
fn ingested(p: &Prometheus, job: &str, at: f64) -> BTreeMap<BTreeMap<String, String>, String> {
    let q = format!("{{job=\"{job}\",__name__=~\"chain_.+|chainwatch_.+|process_.+\"}}");
    let v = api(
        p,
        &format!("/api/v1/query?query={}&time={at}", urlencode(&q)),
    );
    let mut out = BTreeMap::new();
    for r in v["data"]["result"].as_array().unwrap() {
        let mut labels: BTreeMap<String, String> = r["metric"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k != "job" && *k != "instance")
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        if let Some(le) = labels.get_mut("le") {
            let f: f64 = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            *le = f.to_string();
        }
        out.insert(labels, r["value"][1].as_str().unwrap().to_string());
    }
    out
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn prometheus_ingests_the_same_samples_with_openmetrics_and_gzip_as_with_classic_text() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("chainwatch.yaml");
    write(
        &cfg,
        &format!(
            "version: 1\nprofiles: [dilithion]\nlabels: {{node: n1, region: eu-central}}\nsources:\n  - name: node-log\n    type: file\n    paths: [\"{}/node.log*\"]\n",
            dir.path().display()
        ),
    );
    let s = Sidecar::start(&cfg, &[]);
    s.wait_ready();
    write(
        &dir.path().join("node.log"),
        "[INFO] BLOCK FOUND! height=5\n[INFO] Received block 0000a1b2 at height 6 propagation=830ms\n\
         Received block 0000a1b3 at height 7 (propagation 2.5s)\n[INFO] Connected peers: 4\n",
    );
    poll_until("lines counted", || {
        (value(&s.metrics(), "chain_block_propagation_seconds_count", &[]) == Some(2.0))
            .then_some(())
    });
    let (negotiated, nlog) = proxy(s.addr.clone(), false);
    let (classic, clog) = proxy(s.addr.clone(), true);
    let p = prometheus(
        dir.path(),
        &[("negotiated", &negotiated), ("classic", &classic)],
    );

    // Both targets up, several scrapes each, no scrape error (Prometheus's OpenMetrics parser
    // is strict: a missing `# EOF` or a bad `le` fails the scrape).
    poll_until("both targets scraped cleanly", || {
        let t = api(&p, "/api/v1/targets");
        let active = t["data"]["activeTargets"].as_array()?.clone();
        let up = active.len() == 2
            && active
                .iter()
                .all(|x| x["health"] == "up" && x["lastError"] == "");
        (up && nlog.lock().unwrap().len() >= 3 && clog.lock().unwrap().len() >= 3).then_some(())
    });

    for e in nlog.lock().unwrap().iter() {
        assert!(e[0].starts_with("application/openmetrics-text"), "{e:?}");
        assert!(e[1].contains("gzip"), "{e:?}");
        assert_eq!(
            e[2],
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        assert_eq!(e[3], "gzip");
    }
    for e in clog.lock().unwrap().iter() {
        assert_eq!(e[2], "text/plain; version=0.0.4; charset=utf-8", "{e:?}");
        assert_eq!(e[3], "", "{e:?}");
    }

    // At an instant both jobs had scraped since the lines were counted.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let (n, c) = (
        ingested(&p, "negotiated", now),
        ingested(&p, "classic", now),
    );
    let names = |m: &BTreeMap<BTreeMap<String, String>, String>| -> BTreeSet<String> {
        m.keys().map(|l| l["__name__"].clone()).collect()
    };
    assert_eq!(names(&n), names(&c), "the same series names");
    for must in [
        "chain_blocks_mined_total",
        "chain_block_propagation_seconds_bucket",
        "chain_block_propagation_seconds_count",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "chainwatch_build_info",
    ] {
        assert!(
            names(&n).contains(must),
            "{must} not ingested: {:?}",
            names(&n)
        );
    }
    // The same label sets, and the same values where nothing moves between two scrapes.
    assert_eq!(
        n.keys().collect::<Vec<_>>(),
        c.keys().collect::<Vec<_>>(),
        "the same series"
    );
    let moving = |name: &str| {
        name.starts_with("process_")
            || name.ends_with("_timestamp_seconds")
            || name == "chainwatch_checkpoint_writes_total"
    };
    for (labels, v) in &n {
        if !moving(&labels["__name__"]) {
            assert_eq!(Some(v), c.get(labels), "{labels:?}");
        }
    }
    assert_eq!(
        n.iter()
            .find(|(l, _)| l["__name__"] == "chain_blocks_mined_total")
            .map(|(_, v)| v.as_str()),
        Some("1")
    );
}
