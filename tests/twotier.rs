//! Beyond one Prometheus (README, "Scaling"), run for real: two regional Prometheus servers,
//! each scraping its region's sidecars (`region` and `node` as target labels) and evaluating the
//! regional rules (`prometheus/rules/*.rules.yml`), one global Prometheus federating only what
//! deploy/twotier/global-prometheus.yml asks for and evaluating the global tier
//! (`prometheus/rules/global/`), and the real Alertmanager on the generated configuration,
//! its receivers redirected to the test's webhook. The Prometheus configurations are the files
//! of deploy/twotier/ (the README shows them verbatim), with addresses, paths and intervals
//! replaced.
//!
//! - eu-central's hosts die with their sidecars while its Prometheus runs: RegionDown fires on
//!   the global Prometheus and is delivered; the region's NodeDown alerts reach Alertmanager
//!   and are inhibited, never delivered; recovery resolves RegionDown.
//! - us-east's hosts die together with its Prometheus: nothing of the region reaches the
//!   global any more, whose `up` of that server's /federate is 0; the global inventory still
//!   knows its nodes and RegionDown fires; the server and hosts come back, RegionDown resolves.
//!
//! And, without processes: every series a global rule reads is one the global Prometheus has,
//! a recording rule of the regional tier its federation `match[]` covers, a record of its own,
//! or its own `up`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chainwatch_tests::http::{self, urlencode};
use chainwatch_tests::notify::Notification;
use chainwatch_tests::process::Proc;
use chainwatch_tests::readme;
use chainwatch_tests::stack::{
    render, root, rule_files, start_alertmanager, start_on_free_port, start_sim, system_bin, Node,
    Redirect,
};
use chainwatch_tests::wait;
use chainwatch_tests::webhook::Webhook;
use serde_json::Value;
use serde_norway::Value as Yaml;

const FLEET: &str = "tests/fixtures/twotier-fleet.yaml";
const OVERLAY: &str = "tests/fixtures/twotier-overlay.yaml";
const REGIONAL: &str = "deploy/twotier/regional-prometheus.yml";
const GLOBAL: &str = "deploy/twotier/global-prometheus.yml";
const REGIONS: [&str; 2] = ["eu-central", "us-east"];

/// Deadline for what follows a change within seconds (three hops, `for`, Alertmanager).
const SOON: Duration = Duration::from_secs(60);
const START: Duration = Duration::from_secs(30);

fn load(rel: &str) -> Yaml {
    let text = std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn s(v: &str) -> Yaml {
    Yaml::String(v.to_string())
}

/// A deploy/twotier file made runnable here: every second instead of 15s, the rule files where
/// the test rendered them, its Alertmanager, and `targets` (address, target labels) as the one
/// static target list of its one scrape job. Everything else is the file's.
fn localize(
    rel: &str,
    rendered: &Path,
    am: &str,
    targets: &[(String, BTreeMap<String, String>)],
) -> String {
    let mut cfg = load(rel);
    let g = cfg["global"].as_mapping_mut().expect("a global section");
    g.insert(s("scrape_interval"), s("1s"));
    g.insert(s("scrape_timeout"), s("900ms"));
    g.insert(s("evaluation_interval"), s("1s"));
    let rules = rendered.join("prometheus/rules");
    for f in cfg["rule_files"].as_sequence_mut().expect("rule_files") {
        let p = f.as_str().unwrap().to_string();
        assert!(p.starts_with("/etc/prometheus/rules/"), "{rel}: {p}");
        *f = s(&p.replace("/etc/prometheus/rules", rules.to_str().unwrap()));
    }
    let ams = cfg["alerting"]["alertmanagers"].as_sequence_mut().unwrap();
    assert_eq!(ams.len(), 1, "{rel}: one Alertmanager list");
    ams[0]["static_configs"] = serde_norway::from_str(&format!(
        "[{{targets: ['{}']}}]",
        am.trim_start_matches("http://")
    ))
    .unwrap();
    let jobs = cfg["scrape_configs"].as_sequence_mut().unwrap();
    assert_eq!(jobs.len(), 1, "{rel}: one scrape job");
    let list: Vec<Yaml> = targets
        .iter()
        .map(|(addr, labels)| {
            let mut m = serde_norway::Mapping::new();
            m.insert(s("targets"), Yaml::Sequence(vec![s(addr)]));
            let l: serde_norway::Mapping = labels.iter().map(|(k, v)| (s(k), s(v))).collect();
            if !l.is_empty() {
                m.insert(s("labels"), Yaml::Mapping(l));
            }
            Yaml::Mapping(m)
        })
        .collect();
    jobs[0]["static_configs"] = Yaml::Sequence(list);
    serde_norway::to_string(&cfg).unwrap()
}

/// One Prometheus on `config`: on a free port, or on `port` again (a restarted server keeps
/// the address the global federates from, and its TSDB).
fn prometheus(name: &str, config: &Path, d: &Path, port: Option<u16>) -> (Proc, String) {
    let bin = system_bin("PROMETHEUS", &["prometheus"], "prometheus");
    let logs = d.join("logs");
    let cmd = |port: u16| {
        let mut cmd = Command::new(&bin);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                d.join(format!("tsdb-{name}")).display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // As tests/e2e.rs: resend firing alerts within seconds, not the default minute.
            .arg("--rules.alert.resend-delay=5s");
        cmd
    };
    let Some(port) = port else {
        return start_on_free_port(&format!("prometheus-{name}"), &logs, cmd);
    };
    let mut p = Proc::spawn(&format!("prometheus-{name}-again"), cmd(port), &logs);
    let url = format!("http://127.0.0.1:{port}");
    wait::until(&format!("{name} ready again"), START, || {
        if let Some(st) = p.exited() {
            panic!("prometheus {name} exited ({st}):\n{}", p.logs());
        }
        match http::get(&format!("{url}/-/ready")) {
            Ok((200, _)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    (p, url)
}

fn query(url: &str, expr: &str) -> Vec<Value> {
    let v = http::get_json(&format!("{url}/api/v1/query?query={}", urlencode(expr)));
    assert_eq!(v["status"], "success", "{expr}: {v}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// Alert rule names a server evaluates (`/api/v1/rules`).
fn alert_rules(url: &str) -> BTreeSet<String> {
    let v = http::get_json(&format!("{url}/api/v1/rules?type=alert"));
    v["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r["name"].as_str().map(String::from))
        .collect()
}

struct Delivered<'a> {
    webhook: &'a Webhook,
    receivers: &'a BTreeMap<String, Redirect>,
    names: Vec<String>,
}

impl Delivered<'_> {
    fn all(&self) -> Vec<Notification> {
        self.webhook
            .received()
            .iter()
            .map(|r| {
                Notification::parse(r, self.receivers, &self.names)
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect()
    }

    /// Wait for a notification to `receiver` about `alert` with `status` mentioning `text`.
    fn wait(&self, receiver: &str, alert: &str, status: &str, text: &str) -> Notification {
        wait::until(
            &format!("{receiver} gets {alert} {status} mentioning {text:?}"),
            SOON,
            || {
                let all = self.all();
                all.iter()
                    .find(|n| {
                        n.receiver == receiver
                            && n.status == status
                            && n.is(alert)
                            && n.text.contains(text)
                    })
                    .cloned()
                    .ok_or_else(|| {
                        let seen: Vec<String> = all.iter().map(|n| n.summary()).collect();
                        format!("{seen:#?}")
                    })
            },
        )
    }
}

fn alert_names(rendered: &Path) -> Vec<String> {
    let mut v = Vec::new();
    for p in rule_files(rendered) {
        let y: Yaml = serde_norway::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        for g in y["groups"].as_sequence().unwrap() {
            for r in g["rules"].as_sequence().unwrap() {
                if let Some(a) = r["alert"].as_str() {
                    v.push(a.to_string());
                }
            }
        }
    }
    v
}

/// Wait until Alertmanager holds `alert` of every node of `nodes`, inhibited.
fn wait_inhibited(am: &str, alert: &str, nodes: &[&Node]) {
    wait::until(
        &format!("{alert} of {} inhibited in Alertmanager", nodes.len()),
        SOON,
        || {
            let all = http::get_json(&format!("{am}/api/v2/alerts"));
            let mut missing = Vec::new();
            for n in nodes {
                let a = all.as_array().into_iter().flatten().find(|a| {
                    a["labels"]["alertname"] == alert && a["labels"]["node"] == n.name.as_str()
                });
                match a {
                    Some(a)
                        if a["status"]["state"] == "suppressed"
                            && !a["status"]["inhibitedBy"].as_array().unwrap().is_empty() => {}
                    other => missing.push(format!("{}: {other:?}", n.name)),
                }
            }
            if missing.is_empty() {
                Ok(())
            } else {
                Err(missing.join("\n"))
            }
        },
    );
}

#[test]
fn region_down_fires_at_the_global_tier_also_when_the_regional_prometheus_dies() {
    let dir = tempfile::Builder::new()
        .prefix("chainwatch-twotier.")
        .tempdir()
        .unwrap();
    let d = dir.path();
    let logs = d.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let webhook = Webhook::start();
    let (_sim, control_url, nodes) = start_sim(FLEET, d, &logs);
    let rendered = render(OVERLAY, d);
    let (_am, am_url, receivers) = start_alertmanager(&rendered, d, &logs, &webhook);
    let control = |body: &str| {
        let (st, text) = http::post(&format!("{control_url}/scenario"), body).unwrap();
        assert_eq!(st, 200, "{body}: {text}");
    };

    // The regional servers, each on its region's sidecars.
    let mut regional: BTreeMap<&str, (Proc, String, PathBuf)> = BTreeMap::new();
    for region in REGIONS {
        let targets: Vec<(String, BTreeMap<String, String>)> = nodes
            .iter()
            .filter(|n| n.region == region)
            .map(|n| {
                assert_eq!(
                    n.target_labels["region"], region,
                    "{}: region label",
                    n.name
                );
                (
                    n.sidecar_url.trim_start_matches("http://").to_string(),
                    n.target_labels.clone(),
                )
            })
            .collect();
        assert!(!targets.is_empty(), "no node in {region}");
        let cfg = d.join(format!("prometheus-{region}.yml"));
        std::fs::write(&cfg, localize(REGIONAL, &rendered, &am_url, &targets)).unwrap();
        let (p, url) = prometheus(region, &cfg, d, None);
        regional.insert(region, (p, url, cfg));
    }
    // The global one, federating from both.
    let fed: Vec<(String, BTreeMap<String, String>)> = regional
        .values()
        .map(|(_, url, _)| {
            (
                url.trim_start_matches("http://").to_string(),
                BTreeMap::new(),
            )
        })
        .collect();
    let gcfg = d.join("prometheus-global.yml");
    std::fs::write(&gcfg, localize(GLOBAL, &rendered, &am_url, &fed)).unwrap();
    let (_global, global) = prometheus("global", &gcfg, d, None);

    // The split: node alerts only regional, region and fleet alerts only global.
    let g_rules = alert_rules(&global);
    for (region, (_, url, _)) in &regional {
        let r = alert_rules(url);
        for a in [
            "RegionDown",
            "RegionDegraded",
            "HighNodeDownRate",
            "FleetErrors",
        ] {
            assert!(g_rules.contains(a), "global evaluates no {a}: {g_rules:?}");
            assert!(!r.contains(a), "{region}'s Prometheus evaluates {a}");
        }
        for a in ["NodeDown", "SidecarDown"] {
            assert!(r.contains(a), "{region}'s Prometheus evaluates no {a}");
            assert!(!g_rules.contains(a), "the global Prometheus evaluates {a}");
        }
    }
    // Every node reaches the global tier through federation, up.
    wait::until("the global tier sees every node up", START, || {
        let up = query(&global, "global:chain_node_up:liveness == 1");
        if up.len() == nodes.len() {
            Ok(())
        } else {
            Err(format!("{} of {}: {up:?}", up.len(), nodes.len()))
        }
    });

    let delivered = Delivered {
        webhook: &webhook,
        receivers: &receivers,
        names: alert_names(&rendered),
    };
    let in_region = |r: &str| -> Vec<&Node> { nodes.iter().filter(|n| n.region == r).collect() };

    // 1. eu-central's hosts die (their sidecars with them); its Prometheus runs on.
    control(r#"{"scenario": "region_down", "region": "eu-central"}"#);
    let subject = "RegionDown dilithion/testnet (eu-central)";
    delivered.wait("slack-regional", "RegionDown", "firing", subject);
    delivered.wait("pagerduty", "RegionDown", "firing", subject);
    let firing = query(
        &global,
        r#"ALERTS{alertname="RegionDown", alertstate="firing", region="eu-central"}"#,
    );
    assert_eq!(
        firing.len(),
        1,
        "RegionDown on the global Prometheus: {firing:?}"
    );
    wait_inhibited(&am_url, "NodeDown", &in_region("eu-central"));
    control(r#"{"scenario": "region_down", "region": "eu-central", "on": false}"#);
    delivered.wait("slack-regional", "RegionDown", "resolved", subject);

    // 2. us-east's hosts die together with its Prometheus.
    let (us_url, us_cfg) = {
        let (p, url, cfg) = regional.get_mut("us-east").unwrap();
        p.kill();
        (url.clone(), cfg.clone())
    };
    control(r#"{"scenario": "region_down", "region": "us-east"}"#);
    let instance = us_url.trim_start_matches("http://").to_string();
    wait::until(
        "the global Prometheus sees us-east's server down",
        SOON,
        || {
            let up = query(
                &global,
                &format!(r#"up{{job="federate", instance="{instance}"}}"#),
            );
            match up.first() {
                Some(u) if u["value"][1] == "0" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    );
    let subject = "RegionDown dilithion/testnet (us-east)";
    delivered.wait("slack-regional", "RegionDown", "firing", subject);
    delivered.wait("pagerduty", "RegionDown", "firing", subject);
    control(r#"{"scenario": "region_down", "region": "us-east", "on": false}"#);
    let port: u16 = instance.rsplit(':').next().unwrap().parse().unwrap();
    let (again, _) = prometheus("us-east", &us_cfg, d, Some(port));
    regional.get_mut("us-east").unwrap().0 = again;
    delivered.wait("slack-regional", "RegionDown", "resolved", subject);

    // The region's node alerts were muted, never delivered.
    let node_alerts: Vec<String> = delivered
        .all()
        .iter()
        .filter(|n| n.is("NodeDown") || n.is("SidecarDown"))
        .map(|n| n.summary())
        .collect();
    assert!(
        node_alerts.is_empty(),
        "node alerts delivered: {node_alerts:#?}"
    );
}

// ----------------------------------------------------------------------------- what is read

/// The `__name__` patterns of the federation job's `match[]` (`{__name__=~"a:.*|b"}`): each
/// alternative a literal name or a literal prefix followed by `.*`.
fn federated_patterns(global: &Yaml) -> Vec<String> {
    let jobs = global["scrape_configs"].as_sequence().unwrap();
    let fed = jobs
        .iter()
        .find(|j| j["metrics_path"] == "/federate")
        .expect("a job scraping /federate");
    assert_eq!(
        fed["honor_labels"],
        Yaml::Bool(true),
        "federation keeps the regional labels"
    );
    assert_eq!(
        fed["honor_timestamps"],
        Yaml::Bool(false),
        "a dead regional server's series go stale"
    );
    let mut out = Vec::new();
    for m in fed["params"]["match[]"]
        .as_sequence()
        .expect("match[] params")
    {
        let m = m.as_str().unwrap();
        let re = m
            .strip_prefix(r#"{__name__=~""#)
            .and_then(|r| r.strip_suffix(r#""}"#))
            .unwrap_or_else(|| panic!("match[] {m}: only {{__name__=~\"…\"}} is read here"));
        for alt in re.split('|') {
            let lit = alt.strip_suffix(".*").unwrap_or(alt);
            assert!(
                lit.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "match[] alternative {alt}: only names and name prefixes are read here"
            );
            out.push(alt.to_string());
        }
    }
    out
}

fn federated(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix(".*") {
        Some(prefix) => name.starts_with(prefix),
        None => name == p,
    })
}

/// The rule files a deploy/twotier configuration loads, in the committed output.
fn loaded(cfg: &Yaml) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for f in cfg["rule_files"].as_sequence().unwrap() {
        let rel = f
            .as_str()
            .unwrap()
            .strip_prefix("/etc/prometheus/rules/")
            .expect("rule files under /etc/prometheus/rules/");
        let p = root().join("prometheus/rules").join(rel);
        match rel.strip_suffix("*.rules.yml") {
            Some(dir) => {
                let d = root().join("prometheus/rules").join(dir);
                for e in std::fs::read_dir(&d).unwrap() {
                    let p = e.unwrap().path();
                    if p.to_string_lossy().ends_with(".rules.yml") {
                        out.push(p);
                    }
                }
            }
            None => {
                assert!(p.is_file(), "{}", p.display());
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// (records, alerts, every rule's expression) of rule files.
fn rules_of(files: &[PathBuf]) -> (BTreeSet<String>, BTreeSet<String>, Vec<String>) {
    let (mut records, mut alerts, mut exprs) = (BTreeSet::new(), BTreeSet::new(), Vec::new());
    for f in files {
        let y: Yaml = serde_norway::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        for g in y["groups"].as_sequence().unwrap() {
            for r in g["rules"].as_sequence().unwrap() {
                if let Some(n) = r["record"].as_str() {
                    records.insert(n.to_string());
                }
                if let Some(n) = r["alert"].as_str() {
                    alerts.insert(n.to_string());
                }
                exprs.push(r["expr"].as_str().unwrap().to_string());
            }
        }
    }
    (records, alerts, exprs)
}

fn names(e: &promql_parser::parser::Expr, out: &mut Vec<Option<String>>) {
    use promql_parser::parser::Expr;
    match e {
        Expr::Aggregate(a) => {
            names(&a.expr, out);
            if let Some(p) = &a.param {
                names(p, out);
            }
        }
        Expr::Unary(u) => names(&u.expr, out),
        Expr::Binary(b) => {
            names(&b.lhs, out);
            names(&b.rhs, out);
        }
        Expr::Paren(p) => names(&p.expr, out),
        Expr::Subquery(s) => names(&s.expr, out),
        Expr::VectorSelector(v) => out.push(v.name.clone()),
        Expr::MatrixSelector(m) => out.push(m.vs.name.clone()),
        Expr::Call(c) => c.args.args.iter().for_each(|a| names(a, out)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// What of `expr` the global Prometheus would not have: names neither its own records, nor
/// `up`, nor regional records its federation covers.
fn unseen(
    expr: &str,
    own: &BTreeSet<String>,
    regional: &BTreeSet<String>,
    patterns: &[String],
) -> Vec<String> {
    let e = promql_parser::parser::parse(expr).unwrap_or_else(|err| panic!("{expr}: {err}"));
    let mut v = Vec::new();
    names(&e, &mut v);
    v.into_iter()
        .filter_map(|n| match n {
            None => Some(format!("a selector without a metric name in {expr}")),
            Some(n) if own.contains(&n) || n == "up" => None,
            Some(n) if regional.contains(&n) && federated(patterns, &n) => None,
            Some(n) => Some(n),
        })
        .collect()
}

#[test]
fn the_global_rules_read_only_what_the_regional_servers_federate() {
    let global = load(GLOBAL);
    let patterns = federated_patterns(&global);
    let (own, global_alerts, exprs) = rules_of(&loaded(&global));
    let (regional, regional_alerts, _) = rules_of(&loaded(&load(REGIONAL)));
    // The checker sees a scraped series, an unfederated record and a record nobody makes.
    assert_eq!(
        unseen("chain_node_up == 0", &own, &regional, &patterns),
        ["chain_node_up"]
    );
    assert_eq!(
        unseen(
            "target:chainwatch_build_info:max1h",
            &own,
            &regional,
            &patterns
        ),
        ["target:chainwatch_build_info:max1h"]
    );
    assert_eq!(
        unseen("node:nobody_records:this", &own, &regional, &patterns),
        ["node:nobody_records:this"]
    );
    let bad: Vec<String> = exprs
        .iter()
        .flat_map(|e| unseen(e, &own, &regional, &patterns))
        .collect();
    assert!(
        bad.is_empty(),
        "the global rules read what is not sent: {bad:?}"
    );
    // The fleet and region alerts of the README are the global tier's, and only its.
    for a in [
        "RegionDown",
        "RegionDegraded",
        "HighNodeDownRate",
        "FleetErrors",
        "NoActiveMiners",
    ] {
        assert!(global_alerts.contains(a), "{a} is not in the global rules");
        assert!(
            !regional_alerts.contains(a),
            "{a} is in the regional rules too"
        );
    }
    for a in ["NodeDown", "SidecarDown"] {
        assert!(
            regional_alerts.contains(a) && !global_alerts.contains(a),
            "{a}"
        );
    }
    // The README shows exactly these files.
    for (name, rel) in [("twotier-regional", REGIONAL), ("twotier-global", GLOBAL)] {
        assert_eq!(
            readme::block(&root(), name),
            std::fs::read_to_string(root().join(rel)).unwrap(),
            "README block {name} is not {rel}"
        );
    }
}
