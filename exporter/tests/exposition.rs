//! `/metrics` as Prometheus people expect it of an exporter, scraped with curl: content
//! negotiation like client_golang's promhttp (OpenMetrics 1.0 when asked, the classic text format
//! otherwise, gzip when accepted), both formats checked by their parsers (promtool for the
//! classic one, the Python client's OpenMetrics parser) and carrying the same samples;
//! `process_*`; `chainwatch_build_info` and `--version` from the git checkout.

mod common;
use common::process::{poll_until, Sidecar};
use common::*;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn start(dir: &Path) -> Sidecar {
    let p = dir.join("chainwatch.yaml");
    write(
        &p,
        &format!(
            "version: 1\nprofiles: [dilithion]\nlabels: {{node: n1, region: eu-central}}\nsources:\n  - name: node-log\n    type: file\n    paths: [\"{}/node.log*\"]\n",
            dir.display()
        ),
    );
    let s = Sidecar::start(&p, &[]);
    s.wait_ready();
    std::fs::write(
        dir.join("node.log"),
        "[INFO] BLOCK FOUND! height=5\n[INFO] Received block 0000a1b2 at height 6 propagation=830ms\n\
         Received block 0000a1b3 at height 7 (propagation 2.5s)\n[INFO] Connected peers: 4\n",
    )
    .unwrap();
    poll_until("lines counted", || {
        let m = s.metrics();
        (value(&m, "chain_block_propagation_seconds_count", &[]) == Some(2.0)).then_some(())
    });
    s
}

struct Reply {
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// GET with curl, `headers` as given; the body as sent (not decoded).
fn curl(addr: &str, headers: &[&str]) -> Reply {
    let dir = tempfile::tempdir().unwrap();
    let (h, b) = (dir.path().join("h"), dir.path().join("b"));
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "30", "-D"])
        .arg(&h)
        .arg("-o")
        .arg(&b);
    for x in headers {
        cmd.args(["-H", x]);
    }
    let out = cmd
        .arg(format!("http://{addr}/metrics"))
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = std::fs::read_to_string(&h).unwrap();
    let headers = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        headers,
        body: std::fs::read(&b).unwrap(),
    }
}

fn gunzip(b: &[u8]) -> String {
    use std::io::Read;
    let mut s = String::new();
    flate2::read::GzDecoder::new(b)
        .read_to_string(&mut s)
        .expect("a gzip body");
    s
}

/// Samples as (name, labels with `le` normalised to its number, value); left out what moves
/// between two scrapes on its own: `process_*`, the checkpoint writes (every second), times.
fn stable(
    samples: impl IntoIterator<Item = (String, BTreeMap<String, String>, f64)>,
) -> Vec<(String, BTreeMap<String, String>, String)> {
    let mut v: Vec<_> = samples
        .into_iter()
        .filter(|(n, _, _)| {
            !n.starts_with("process_")
                && n != "chainwatch_checkpoint_writes_total"
                && !n.ends_with("_timestamp_seconds")
        })
        .map(|(n, mut l, v)| {
            if let Some(le) = l.get_mut("le") {
                let f: f64 = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                *le = f.to_string();
            }
            (n, l, format!("{v}"))
        })
        .collect();
    v.sort();
    v
}

const PROMETHEUS_2_42_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

#[test]
fn negotiates_openmetrics_text_and_gzip_like_promhttp() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());

    // Nothing asked: the classic text format, uncompressed, promtool's parser agrees.
    let plain = curl(&s.addr, &[]);
    assert_eq!(
        plain.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(!plain.headers.contains_key("content-encoding"));
    let text = String::from_utf8(plain.body).unwrap();
    promtool_check_metrics(&text);
    assert!(
        text.contains("# TYPE chain_blocks_mined_total counter\n"),
        "{text}"
    );
    assert!(!text.contains("# EOF"));

    // What Prometheus 2.42 sends: OpenMetrics 1.0.0, and gzip.
    let om = curl(
        &s.addr,
        &[
            &format!("Accept: {PROMETHEUS_2_42_ACCEPT}"),
            "Accept-Encoding: gzip",
        ],
    );
    assert_eq!(
        om.headers["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert_eq!(om.headers["content-encoding"], "gzip");
    assert!(om.headers["vary"].contains("Accept-Encoding"));
    let om_text = gunzip(&om.body);
    assert!(om_text.ends_with("# EOF\n"), "{om_text}");
    // A counter family is named without `_total`, its sample keeps it; units are declared.
    assert!(
        om_text.contains("# TYPE chain_blocks_mined counter\n"),
        "{om_text}"
    );
    assert!(om_text.contains("\nchain_blocks_mined_total{"), "{om_text}");
    assert!(om_text.contains("# UNIT chain_block_propagation_seconds seconds\n"));
    assert!(
        om_text.contains("le=\"1.0\""),
        "canonical le in OpenMetrics: {om_text}"
    );
    let parsed = openmetrics_parse(&om_text);
    let fam = |name: &str| {
        parsed["families"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f[0] == name)
            .unwrap_or_else(|| panic!("no family {name}"))
            .clone()
    };
    assert_eq!(fam("chain_blocks_mined")[1], "counter");
    assert_eq!(fam("chain_block_propagation_seconds")[1], "histogram");
    assert_eq!(fam("chain_block_propagation_seconds")[2], "seconds");
    assert_eq!(fam("process_cpu_seconds")[2], "seconds");
    assert_eq!(fam("process_resident_memory_bytes")[2], "bytes");

    // The same samples in both formats.
    let from_text = parse(&text).into_iter().map(|(s, v)| (s.name, s.labels, v));
    let from_om = parsed["samples"].as_array().unwrap().iter().map(|x| {
        let labels: BTreeMap<String, String> = x[1]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let v = match &x[2] {
            serde_json::Value::String(s) if s == "+Inf" => f64::INFINITY,
            v => v.as_f64().unwrap(),
        };
        (x[0].as_str().unwrap().to_string(), labels, v)
    });
    let (a, b) = (stable(from_text), stable(from_om));
    assert!(a.len() > 30, "{a:?}");
    assert_eq!(a, b, "classic text and OpenMetrics disagree");

    // curl decoding the gzip body itself sees the classic text.
    let out = Command::new("curl")
        .args(["-sS", "--compressed", &format!("http://{}/metrics", s.addr)])
        .output()
        .unwrap();
    let decoded = String::from_utf8(out.stdout).unwrap();
    let again: Vec<_> = parse(&decoded)
        .into_iter()
        .map(|(s, v)| (s.name, s.labels, v))
        .collect();
    assert_eq!(stable(again), a);
}

#[test]
fn accept_headers_pick_the_format_promhttp_would() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let om = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    let text = "text/plain; version=0.0.4; charset=utf-8";
    for (accept, want) in [
        ("application/openmetrics-text", om),
        ("application/openmetrics-text;version=0.0.1", om),
        // Quality decides, not order.
        ("text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5", text),
        // Protobuf is not served: the next acceptable format is.
        ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,application/openmetrics-text;version=1.0.0;q=0.5", om),
        // An OpenMetrics version this sidecar does not speak, or nothing it speaks: text.
        ("application/openmetrics-text;version=2.0.0", text),
        ("application/json", text),
        ("application/openmetrics-text;q=0", text),
    ] {
        let r = curl(&s.addr, &[&format!("Accept: {accept}")]);
        assert_eq!(r.headers["content-type"], want, "Accept: {accept}");
        let body = String::from_utf8(r.body).unwrap();
        assert_eq!(body.ends_with("# EOF\n"), want == om, "Accept: {accept}");
    }
    for (enc, gz) in [
        ("gzip", true),
        ("deflate, br, gzip;q=0.5", true),
        ("*", true),
        ("gzip;q=0", false),
        ("identity", false),
        ("br", false),
    ] {
        let r = curl(&s.addr, &[&format!("Accept-Encoding: {enc}")]);
        assert_eq!(
            r.headers.get("content-encoding").map(String::as_str),
            gz.then_some("gzip"),
            "Accept-Encoding: {enc}"
        );
        assert_eq!(r.body.starts_with(&[0x1f, 0x8b]), gz);
    }
}

#[test]
fn process_metrics_and_build_info_describe_this_process_and_checkout() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let m = s.metrics();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let get = |n: &str| value(&m, n, &[("node", "n1")]).unwrap_or_else(|| panic!("no {n}"));
    let started = get("process_start_time_seconds");
    assert!(
        started <= now + 1.0 && started > now - 600.0,
        "start {started}, now {now}"
    );
    assert!(get("process_resident_memory_bytes") > 1e6);
    assert!(get("process_virtual_memory_bytes") >= get("process_resident_memory_bytes"));
    assert!(get("process_open_fds") >= 3.0);
    assert!(get("process_max_fds") >= get("process_open_fds"));
    assert!(get("process_threads") >= 2.0);
    assert!(get("process_cpu_seconds_total") >= 0.0);

    // The revision and branch of the checkout the binary was built from; `unknown` only where
    // there is no git checkout.
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "unknown".into())
    };
    let (rev, branch) = (
        git(&["rev-parse", "HEAD"]),
        git(&["rev-parse", "--abbrev-ref", "HEAD"]),
    );
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("--version")
        .output()
        .unwrap();
    let rustc = String::from_utf8_lossy(&rustc.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let info = m
        .iter()
        .find(|(s, _)| s.name == "chainwatch_build_info")
        .expect("chainwatch_build_info");
    assert_eq!(info.1, 1.0);
    let l = &info.0.labels;
    assert_eq!(l["revision"], rev);
    assert_eq!(l["branch"], branch);
    assert_eq!(l["rustversion"], rustc);
    assert_eq!(l["version"], env!("CARGO_PKG_VERSION"));
    if std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.git")
        .exists()
    {
        assert_ne!(l["revision"], "unknown", "built from a git checkout");
    }

    // `--version` in the layout of Prometheus's binaries.
    let out = Command::new(bin()).arg("--version").output().unwrap();
    assert!(out.status.success());
    let v = String::from_utf8(out.stdout).unwrap();
    let first = v.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "chainwatch-exporter {} (branch: {branch}, revision: {rev})",
            env!("CARGO_PKG_VERSION")
        )
    );
    let date = v
        .lines()
        .find_map(|l| l.trim().strip_prefix("build date:"))
        .expect("build date")
        .trim();
    assert!(
        date.len() == 17
            && date.as_bytes()[8] == b'-'
            && date[..8].bytes().all(|b| b.is_ascii_digit()),
        "{date}"
    );
    assert!(v.contains(&format!("rustc {rustc}")), "{v}");
}
