//! The generated Alertmanager configuration against the real Alertmanager 0.25 (Debian's
//! `prometheus-alertmanager`): `amtool check-config`, every generated routing case through
//! `amtool config routes test --verify.receivers`, and every generated inhibition case against a
//! live Alertmanager on loopback. Plus the promises the cases rest on: every alert has a routing
//! case and a runbook section its `runbook_url` points at.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_chainwatch-rulegen");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Render the workspace's thresholds.yaml (with optional overlay) into a temp dir.
fn generate(overlay: Option<&str>) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec!["--out".to_string(), out.path().display().to_string()];
    if let Some(o) = overlay {
        args.push("--overlay".into());
        args.push(workspace().join(o).display().to_string());
    }
    let o = Command::new(BIN)
        .current_dir(workspace())
        .args(&args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    out
}

fn amtool() -> &'static str {
    match Command::new("amtool").arg("--version").output() {
        Ok(o) if o.status.success() => "amtool",
        _ => panic!("amtool not found: install Debian's `prometheus-alertmanager` package"),
    }
}

struct Route {
    case: String,
    receivers: String,
    labels: Vec<String>,
}

fn routes(root: &Path) -> Vec<Route> {
    fs::read_to_string(root.join("alertmanager/tests/routes.tsv"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 3, "bad line {l:?}");
            Route {
                case: f[0].into(),
                receivers: f[1].into(),
                labels: f[2].split(' ').map(String::from).collect(),
            }
        })
        .collect()
}

/// The rule files of an output: the regional ones and the global tier's (`rules/global/`).
fn rule_files(root: &Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for d in ["prometheus/rules", "prometheus/rules/global"] {
        for e in fs::read_dir(root.join(d)).into_iter().flatten() {
            let p = e.unwrap().path();
            if p.is_file() {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

/// Alert names of the generated rule files.
fn alert_names(root: &Path) -> Vec<String> {
    let mut v = Vec::new();
    for path in rule_files(root) {
        let t = fs::read_to_string(path).unwrap();
        v.extend(
            t.lines()
                .filter_map(|l| l.trim().strip_prefix("- alert: "))
                .map(String::from),
        );
    }
    v.sort();
    v
}

#[test]
fn amtool_checks_the_config_and_every_routing_case_passes() {
    let out = generate(None);
    let cfg = out.path().join("alertmanager/alertmanager.yml");
    let am = amtool();
    let o = Command::new(am)
        .arg("check-config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(o.status.success(), "amtool check-config:\n{}", text(&o));
    assert!(
        text(&o).contains("7 receivers") && text(&o).contains("7 inhibit rules"),
        "{}",
        text(&o)
    );
    let cases = routes(out.path());
    let mut failures = Vec::new();
    for r in &cases {
        let o = Command::new(am)
            .args(["config", "routes", "test"])
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--verify.receivers={}", r.receivers))
            .args(&r.labels)
            .output()
            .unwrap();
        if !o.status.success() {
            failures.push(format!(
                "{}: expected {}, amtool said {}",
                r.case,
                r.receivers,
                String::from_utf8_lossy(&o.stdout).trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "routing cases failed:\n{}",
        failures.join("\n")
    );
    // A wrong expectation must fail, or the cases prove nothing.
    let o = Command::new(am)
        .args(["config", "routes", "test"])
        .arg(format!("--config.file={}", cfg.display()))
        .arg("--verify.receivers=slack-low")
        .args(["alertname=RegionDown", "severity=P0", "scope=region"])
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
}

#[test]
fn every_alert_has_a_routing_case_with_the_designed_receivers() {
    let out = generate(None);
    let cases = routes(out.path());
    let by_case: BTreeMap<&str, &Route> = cases.iter().map(|r| (r.case.as_str(), r)).collect();
    for a in alert_names(out.path()) {
        let r = by_case
            .get(a.as_str())
            .unwrap_or_else(|| panic!("no routing case for {a}"));
        assert!(r.labels.contains(&format!("alertname={a}")), "{a}");
    }
    let rs = |a: &str| by_case[a].receivers.as_str();
    // The design of 004: P0 pages and goes to #bitcell-critical, P1 pages and goes to
    // #bitcell-alerts, P2 to #bitcell-warnings, P3 low urgency; regional alerts also go to
    // #bitcell-regional; the heartbeat goes to the dead man's switch only.
    assert_eq!(rs("ConsensusDivergence"), "pagerduty,slack-critical");
    assert_eq!(rs("NodeDown"), "pagerduty,slack-alerts");
    assert_eq!(rs("NodeOutOfSync"), "slack-warnings");
    assert_eq!(rs("PeerChurnHigh"), "slack-low");
    assert_eq!(rs("RegionDown"), "slack-regional,pagerduty,slack-critical");
    assert_eq!(rs("RegionDegraded"), "slack-regional,slack-warnings");
    assert_eq!(rs("Watchdog"), "heartbeat");
    assert_eq!(rs("unknown-severity"), "slack-warnings");
}

#[derive(serde::Deserialize)]
struct Cases {
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    rule: String,
    inhibited: bool,
    source: BTreeMap<String, String>,
    target: BTreeMap<String, String>,
}

fn inhibition_cases(root: &Path) -> Vec<Case> {
    let t = fs::read_to_string(root.join("alertmanager/tests/inhibitions.yml")).unwrap();
    serde_norway::from_str::<Cases>(&t).unwrap().cases
}

#[test]
fn inhibition_rules_and_cases_cover_the_design() {
    let out = generate(None);
    let cfg: serde_norway::Value = serde_norway::from_str(
        &fs::read_to_string(out.path().join("alertmanager/alertmanager.yml")).unwrap(),
    )
    .unwrap();
    let rules = cfg["inhibit_rules"].as_sequence().unwrap();
    let strs = |v: &serde_norway::Value| -> Vec<String> {
        v.as_sequence()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    };
    let find = |src: &str| {
        rules
            .iter()
            .find(|r| strs(&r["source_matchers"]).contains(&src.to_string()))
            .unwrap_or_else(|| panic!("no inhibit rule with source {src}"))
    };
    let r = find(r#"alertname="RegionDown""#);
    assert_eq!(strs(&r["target_matchers"]), vec![r#"scope="node""#]);
    assert_eq!(strs(&r["equal"]), vec!["chain", "network", "region"]);
    let r = find(r#"alertname="NoActiveMiners""#);
    assert_eq!(
        strs(&r["target_matchers"]),
        vec![r#"alertname="ChainNotProgressing""#]
    );
    assert_eq!(strs(&r["equal"]), vec!["chain", "network"]);
    let r = find(r#"alertname="NodeDown""#);
    assert!(strs(&r["target_matchers"]).contains(&r#"alertname!="NodeDown""#.to_string()));
    assert_eq!(
        strs(&r["equal"]),
        vec!["chain", "network", "region", "node"]
    );
    let r = find(r#"severity="P1""#);
    assert!(strs(&r["equal"]).contains(&"alertgroup".to_string()));
    // No rule may mute the heartbeat.
    for r in rules {
        for m in strs(&r["target_matchers"]) {
            assert!(!m.contains("heartbeat") && !m.contains("Watchdog"), "{m}");
        }
    }
    let cases = inhibition_cases(out.path());
    let has = |name: &str, inhibited: bool| {
        assert!(
            cases
                .iter()
                .any(|c| c.name == name && c.inhibited == inhibited),
            "missing case {name:?} ({inhibited})"
        );
    };
    has(
        "RegionDown mutes NodeDown (same chain, network, region)",
        true,
    );
    has(
        "RegionDown mutes LowPeerCount (same chain, network, region)",
        true,
    );
    has(
        "NodeDown mutes ChainNotProgressing (same chain, network, region, node)",
        true,
    );
    has(
        "NoActiveMiners mutes ChainNotProgressing (same chain, network)",
        true,
    );
    has(
        "NoActiveMiners does not mute ChainNotProgressing of another network",
        false,
    );
    has(
        "EquilibriumDeviationRollback mutes EquilibriumDeviation (same alertgroup, chain, network, region, node)",
        true,
    );
    has(
        "EquilibriumDeviation does not mute the more urgent EquilibriumDeviationRollback",
        false,
    );
    has(
        "NoPeers mutes LowPeerCount (same alertgroup, chain, network, region, node)",
        true,
    );
    has("RegionDown does not mute Watchdog", false);
    // Every rule has a muting case and a not-muting one.
    let rule_names: BTreeSet<&str> = cases.iter().map(|c| c.rule.as_str()).collect();
    for r in &rule_names {
        if *r == "none" {
            continue;
        }
        assert!(cases.iter().any(|c| c.rule == *r && c.inhibited), "{r}");
        assert!(cases.iter().any(|c| c.rule == *r && !c.inhibited), "{r}");
    }
    assert!(rule_names.len() >= 6, "{rule_names:?}");
}

// ------------------------------------------------------------------ live Alertmanager

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.0 request (no chunked responses): (status, body).
fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

fn alertmanager_binary() -> &'static str {
    for b in ["prometheus-alertmanager", "alertmanager"] {
        if Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return b;
        }
    }
    panic!("Alertmanager not found: install Debian's `prometheus-alertmanager` package");
}

#[test]
fn a_live_alertmanager_mutes_exactly_what_the_inhibition_cases_say() {
    // The overlay points the heartbeat and PagerDuty at a closed loopback port: nothing leaves.
    let out = generate(Some("rulegen/tests/testdata/overlay.yaml"));
    let cases = inhibition_cases(out.path());
    assert!(cases.len() > 50, "{}", cases.len());
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data = out.path().join("am-data");
    let log = fs::File::create(out.path().join("alertmanager.log")).unwrap();
    let child = Command::new(alertmanager_binary())
        .arg(format!(
            "--config.file={}",
            out.path().join("alertmanager/alertmanager.yml").display()
        ))
        .arg(format!("--storage.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let _guard = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((200, _)) = http(port, "GET", "/-/ready", "") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Alertmanager did not become ready:\n{}",
            fs::read_to_string(out.path().join("alertmanager.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Each case gets its own chain/network/region/node values, so cases cannot mute each other
    // (every rule compares `chain`); within a case equal values stay equal.
    let isolate = |i: usize, l: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        let mut l = l.clone();
        for k in ["chain", "network", "region", "node"] {
            if let Some(v) = l.get_mut(k) {
                *v = format!("c{i}-{v}");
            }
        }
        l.insert("case".into(), i.to_string());
        l
    };
    let mut alerts = Vec::new();
    let mut targets = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let s = isolate(i, &c.source);
        let mut t = isolate(i, &c.target);
        t.insert("side".into(), "target".into());
        alerts.push(serde_json::json!({"labels": s, "annotations": {"summary": c.name}}));
        alerts.push(serde_json::json!({"labels": t, "annotations": {"summary": c.name}}));
        targets.push(t);
    }
    let (st, body) = http(
        port,
        "POST",
        "/api/v2/alerts",
        &serde_json::to_string(&alerts).unwrap(),
    )
    .unwrap();
    assert_eq!(st, 200, "{body}");
    // The inhibitor learns of the alerts asynchronously: poll until the answers settle.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut wrong;
    loop {
        let (st, body) = http(port, "GET", "/api/v2/alerts", "").unwrap();
        assert_eq!(st, 200, "{body}");
        let got: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
        let mut muted: BTreeMap<BTreeMap<String, String>, bool> = BTreeMap::new();
        for a in &got {
            let labels: BTreeMap<String, String> =
                serde_json::from_value(a["labels"].clone()).unwrap();
            let inhibited = a["status"]["inhibitedBy"]
                .as_array()
                .is_some_and(|v| !v.is_empty());
            muted.insert(labels, inhibited);
        }
        wrong = Vec::new();
        for (c, t) in cases.iter().zip(&targets) {
            match muted.get(t) {
                None => wrong.push(format!("{}: target not found in Alertmanager", c.name)),
                Some(m) if *m != c.inhibited => wrong.push(format!(
                    "{} (rule {}): Alertmanager says inhibited={m}",
                    c.name, c.rule
                )),
                _ => {}
            }
        }
        if wrong.is_empty() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

// ------------------------------------------------------------------ runbook

/// The anchor GitHub (and CommonMark tools) give a heading: lowercase, punctuation other than
/// `-`/`_` dropped, spaces to `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_alert_links_to_its_own_runbook_section_with_first_checks() {
    let out = generate(None);
    let runbook = fs::read_to_string(out.path().join("docs/runbook.md")).unwrap();
    let sections: BTreeMap<String, String> = runbook
        .split("\n## ")
        .skip(1)
        .map(|s| {
            let (h, body) = s.split_once('\n').unwrap();
            (slug(h), body.to_string())
        })
        .collect();
    let mut n = 0;
    for path in rule_files(out.path()) {
        let t = fs::read_to_string(path).unwrap();
        let doc: serde_norway::Value = serde_norway::from_str(&t).unwrap();
        for g in doc["groups"].as_sequence().unwrap() {
            for r in g["rules"].as_sequence().unwrap() {
                let Some(name) = r["alert"].as_str() else {
                    continue;
                };
                n += 1;
                let url = r["annotations"]["runbook_url"].as_str().unwrap();
                let (doc, anchor) = url.split_once('#').unwrap();
                // An absolute link a page can be clicked through to: where docs/runbook.md is
                // published (defaults.runbook_base_url).
                assert_eq!(
                    doc, "https://github.com/chainwatch/chainwatch/blob/main/docs/runbook.md",
                    "{name}"
                );
                let body = sections
                    .get(anchor)
                    .unwrap_or_else(|| panic!("{name}: no section with anchor #{anchor}"));
                assert!(body.starts_with(&format!("\n**{name}**")), "{name}: {body}");
                assert!(body.contains("**First checks**"), "{name}");
                assert!(
                    body.contains("| Fires when |") && body.contains("| Criteria |"),
                    "{name}"
                );
                assert!(body.contains("respond within"), "{name}");
                assert!(body.contains("| Routed to |"), "{name}");
                let sev = r["labels"]["severity"].as_str().unwrap();
                assert!(
                    body.contains(&format!(", {sev} (")),
                    "{name}: severity {sev}"
                );
            }
        }
    }
    // Besides one section per alert, one per rollout gate (linked from the rollout dashboard).
    let gates: Vec<&String> = sections.keys().filter(|a| a.starts_with("gate-")).collect();
    assert!(
        n >= 40 && n + gates.len() == sections.len(),
        "{n} alerts, {} gates, {} sections",
        gates.len(),
        sections.len()
    );
    for g in ["gate-consensus-shadow", "gate-coinjecture-stage-4"] {
        let body = &sections[g];
        assert!(
            body.contains("| Proceed when, on every node"),
            "{g}: {body}"
        );
        assert!(body.contains("chainwatch-gate check"), "{g}: {body}");
    }
}

type Strings = BTreeMap<String, String>;

/// The generated rules' alerts: name → (labels, annotations).
fn rule_alerts(root: &Path) -> BTreeMap<String, (Strings, Strings)> {
    let map = |v: &serde_norway::Value| -> BTreeMap<String, String> {
        v.as_mapping()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str().unwrap().into(), v.as_str().unwrap().into()))
            .collect()
    };
    let mut out = BTreeMap::new();
    for path in rule_files(root) {
        let doc: serde_norway::Value =
            serde_norway::from_str(&fs::read_to_string(path).unwrap()).unwrap();
        for g in doc["groups"].as_sequence().unwrap() {
            for r in g["rules"].as_sequence().unwrap() {
                if let Some(name) = r["alert"].as_str() {
                    out.insert(name.into(), (map(&r["labels"]), map(&r["annotations"])));
                }
            }
        }
    }
    out
}

/// `{{ $labels.x }}` and `{{ $value | f }}` filled in, the way Prometheus sends annotations.
fn fill(text: &str, labels: &BTreeMap<String, String>, value: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let j = rest[i..].find("}}").unwrap() + i;
        let inner = rest[i + 2..j].trim();
        match inner.strip_prefix("$labels.") {
            Some(l) => out.push_str(&labels[l]),
            None => out.push_str(value),
        }
        rest = &rest[j + 2..];
    }
    out.push_str(rest);
    out
}

fn common(maps: &[BTreeMap<String, String>]) -> BTreeMap<String, String> {
    maps[0]
        .iter()
        .filter(|(k, v)| maps.iter().all(|m| m.get(*k) == Some(v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// One receiver field rendered by the real amtool with the generated templates.
fn render(root: &Path, text: &str, data: &Path) -> String {
    let o = Command::new(amtool())
        .arg("template")
        .arg("render")
        .arg(format!(
            "--template.glob={}",
            root.join("alertmanager/templates/*.tmpl").display()
        ))
        .arg(format!("--template.text={text}"))
        .arg(format!("--template.data={}", data.display()))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "amtool template render {text}: {}",
        text_of(&o)
    );
    String::from_utf8_lossy(&o.stdout).trim_end().to_string()
}

fn text_of(o: &Output) -> String {
    text(o)
}

/// Issue 11's "pages that say what broke", for every severity's receivers: a notification of a
/// group of two alerts on two nodes of one region names the alert, its chain, network and region
/// and how many nodes, lists each node with its value, and links the runbook as an absolute URL
/// (Slack: a link in the text and the title's link; PagerDuty: a link), and PagerDuty's summary
/// is never empty. Rendered by the real amtool from the generated configuration and templates,
/// for firing and resolved groups.
#[test]
fn notifications_say_what_broke_for_every_severity() {
    let out = generate(None);
    let root = out.path();
    let cfg: serde_norway::Value = serde_norway::from_str(
        &fs::read_to_string(root.join("alertmanager/alertmanager.yml")).unwrap(),
    )
    .unwrap();
    let receivers: BTreeMap<String, serde_norway::Value> = cfg["receivers"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_string(), r.clone()))
        .collect();
    let alerts = rule_alerts(root);
    let mut checked = BTreeSet::new();
    for sev in ["P0", "P1", "P2", "P3"] {
        // A node alert of this severity, one with a value to show where there is one.
        let (name, (rule_labels, annotations)) = alerts
            .iter()
            .filter(|(_, (l, _))| l["severity"] == sev && l["scope"] == "node")
            .max_by_key(|(_, (_, a))| a.contains_key("value"))
            .unwrap_or_else(|| panic!("no node alert of severity {sev}"));
        let nodes = [("bc-us-1", "41.5%"), ("bc-us-2", "42.5%")];
        let mut alert_json = Vec::new();
        let mut label_sets = Vec::new();
        let mut annotation_sets = Vec::new();
        for (node, value) in nodes {
            let mut labels = rule_labels.clone();
            labels.insert("alertname".into(), name.clone());
            for (k, v) in [
                ("chain", "bitcell"),
                ("network", "testnet"),
                ("region", "us-east"),
                ("node", node),
                ("job", "chainwatch"),
                ("mode", "rust"),
                ("source", "health"),
                ("metric", "chain_peers"),
            ] {
                labels.insert(k.into(), v.into());
            }
            labels.insert("instance".into(), format!("{node}:19942"));
            let ann: BTreeMap<String, String> = annotations
                .iter()
                .map(|(k, t)| (k.clone(), fill(t, &labels, value)))
                .collect();
            alert_json.push((labels.clone(), ann.clone()));
            label_sets.push(labels);
            annotation_sets.push(ann);
        }
        let routed = Command::new(amtool())
            .args(["config", "routes", "test"])
            .arg(format!(
                "--config.file={}",
                root.join("alertmanager/alertmanager.yml").display()
            ))
            .args(label_sets[0].iter().map(|(k, v)| format!("{k}={v}")))
            .output()
            .unwrap();
        let routed = String::from_utf8_lossy(&routed.stdout).trim().to_string();
        assert!(!routed.is_empty(), "{name}: no receivers");
        for status in ["firing", "resolved"] {
            let data = serde_json::json!({
                "receiver": routed,
                "status": status,
                "alerts": alert_json.iter().map(|(l, a)| serde_json::json!({
                    "status": status, "labels": l, "annotations": a,
                    "startsAt": "2026-01-01T00:00:00Z",
                })).collect::<Vec<_>>(),
                "groupLabels": {"alertname": name, "chain": "bitcell", "network": "testnet", "region": "us-east"},
                "commonLabels": common(&label_sets),
                "commonAnnotations": common(&annotation_sets),
                "externalURL": "http://alertmanager.example:9093",
            });
            let file = root.join(format!("data-{sev}-{status}.json"));
            fs::write(&file, data.to_string()).unwrap();
            let url = &annotation_sets[0]["runbook_url"];
            assert!(url.starts_with("https://") && url.contains('#'), "{url}");
            for receiver in routed.split(',').map(str::trim) {
                let r = &receivers[receiver];
                let what = format!("{sev} {name} {status} at {receiver}");
                let mut must = vec![
                    name.clone(),
                    "bitcell/testnet".to_string(),
                    "us-east".to_string(),
                    "2 nodes".to_string(),
                    "bc-us-1".to_string(),
                    "bc-us-2".to_string(),
                ];
                if status == "firing" && annotations.contains_key("value") {
                    must.extend(["41.5%".to_string(), "42.5%".to_string()]);
                }
                if let Some(s) = r["slack_configs"].as_sequence() {
                    let c = &s[0];
                    let title = render(root, c["title"].as_str().unwrap(), &file);
                    let body = render(root, c["text"].as_str().unwrap(), &file);
                    let link = render(root, c["title_link"].as_str().unwrap(), &file);
                    let all = format!("{title}\n{body}");
                    for m in &must {
                        assert!(all.contains(m.as_str()), "{what}: no {m:?} in\n{all}");
                    }
                    assert!(
                        title.starts_with(&format!("[{}", status.to_uppercase())),
                        "{what}: {title}"
                    );
                    assert!(
                        body.contains(&format!("<{url}|")),
                        "{what}: runbook link in\n{body}"
                    );
                    assert_eq!(&link, url, "{what}: title link");
                    checked.insert(format!("slack {sev}"));
                } else if let Some(p) = r["pagerduty_configs"].as_sequence() {
                    let c = &p[0];
                    let summary = render(root, c["description"].as_str().unwrap(), &file);
                    for m in &must {
                        assert!(
                            summary.contains(m.as_str()),
                            "{what}: no {m:?} in {summary:?}"
                        );
                    }
                    let href = render(root, c["links"][0]["href"].as_str().unwrap(), &file);
                    assert_eq!(&href, url, "{what}: link");
                    if status == "firing" {
                        let details = render(root, c["details"]["alerts"].as_str().unwrap(), &file);
                        for n in ["bc-us-1", "bc-us-2"] {
                            assert!(details.contains(n), "{what}: {details}");
                        }
                    }
                    checked.insert(format!("pagerduty {sev}"));
                } else {
                    panic!("{what}: a receiver the test does not know");
                }
            }
        }
    }
    // Every severity reached at least one receiver, and PagerDuty was among them for P0 and P1.
    for c in [
        "pagerduty P0",
        "pagerduty P1",
        "slack P0",
        "slack P1",
        "slack P2",
        "slack P3",
    ] {
        assert!(checked.contains(c), "{c} not checked: {checked:?}");
    }
}
