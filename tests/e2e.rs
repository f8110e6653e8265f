//! End to end, the way an operator runs chainwatch: node → sidecar → Prometheus → rules →
//! Alertmanager → receiver, with the real binaries and nothing mocked but the receivers' far
//! ends (Slack, PagerDuty, the heartbeat service: a webhook inside the test).
//!
//! One fleet (tests/fixtures/e2e-fleet.yaml: every family, four regions), one real sidecar per
//! node on the configuration the simulator generated, the rules and Alertmanager configuration
//! rendered by `chainwatch-rulegen --overlay tests/fixtures/e2e-overlay.yaml` (for and windows in
//! seconds), Debian's `prometheus` scraping and evaluating every second, Debian's Alertmanager
//! with the generated configuration whose receivers the test redirects to its webhook (it
//! rewrites the URLs and secret files of the rendered file, then `amtool check-config`).
//!
//! First a healthy fleet must be quiet (nothing but the ChainwatchWatchdog pending or firing). Then the
//! scenarios run at the same time on different nodes and regions:
//! - (a) consensus divergence on cj-eu-1 pages: PagerDuty + Slack #bitcell-critical;
//! - (b) us-east's hosts die, their sidecars with them: RegionDown (one page per chain of the
//!   region) reaches #bitcell-regional and the P0 receivers, the NodeDown and SidecarDown alerts
//!   of its nodes are inhibited in Alertmanager and never delivered;
//! - (g) in eu-west a sidecar is killed and a host partitioned off: one SidecarDown page names
//!   both nodes and their targets (the exact PagerDuty summary and Slack text), no sooner than
//!   its `for`; their NodeDown alerts are muted by it; 2 of 3 unseen is RegionDegraded; half of
//!   Dilithion and of PoP down is HighNodeDownRate (above 30%). us-east and eu-west take `node`
//!   and `region` from Prometheus's target labels, the other regions from their sidecars;
//! - dil-eu-2's node process stops while its sidecar runs: its health check fails, NodeDown
//!   pages for it (and only for it);
//! - (c) no active BitCell miners: NoActiveMiners pages, ChainNotProgressing of the BitCell nodes
//!   is inhibited and never delivered;
//! - (d) equilibrium drift on cj-ap-1 (25%): the rollback alert fires after its `for` (and
//!   mutes the warning of its alertgroup);
//! - cj-eu-2 switches to the Rust engine and falls back: ConsensusModeChanged (P3) reaches the
//!   low-urgency channel, ConsensusFallback (P2) #bitcell-warnings;
//! - (e) recovery: divergence, region, sidecar, partition and drift cleared, the resolved
//!   notifications arrive and no liveness alert is left;
//! - (f) the ChainwatchWatchdog heartbeat arrives, repeatedly, at the heartbeat receiver only, with its
//!   bearer token.
//!
//! Then every Grafana panel query is run against that Prometheus (and every dashboard variable
//! must offer the fleet's chains, regions and nodes), and every delivered
//! notification is checked against the routing of 004 (priority → receivers, region scope →
//! #bitcell-regional, heartbeat alone).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use chainwatch_tests::notify::Notification;
use chainwatch_tests::stack::{root, rule_files, Stack};
use chainwatch_tests::wait;
use serde_json::Value;

const FLEET: &str = "tests/fixtures/e2e-fleet.yaml";
const OVERLAY: &str = "tests/fixtures/e2e-overlay.yaml";

/// Deadline for a notification that should follow within seconds.
const SOON: Duration = Duration::from_secs(45);
/// Alertmanager group_wait + 2 × group_interval of the overlay: an inhibited alert that stayed
/// muted this long was flushed (and muted) at least twice.
const MUTED_FOR: Duration = Duration::from_secs(5);

/// The alert rules as rendered: name → (labels, annotations with `for` and `expr` added).
struct Rules(BTreeMap<String, (Map, Map)>);

type Map = BTreeMap<String, String>;

fn yaml_map(v: &serde_norway::Value) -> Map {
    v.as_mapping()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_string(),
                v.as_str().unwrap().to_string(),
            )
        })
        .collect()
}

impl Rules {
    fn load(dir: &Path) -> Rules {
        let mut m = BTreeMap::new();
        for path in rule_files(dir) {
            let text = std::fs::read_to_string(path).unwrap();
            let y: serde_norway::Value = serde_norway::from_str(&text).unwrap();
            for g in y["groups"].as_sequence().unwrap() {
                for r in g["rules"].as_sequence().unwrap() {
                    if let Some(name) = r["alert"].as_str() {
                        let mut annotations = yaml_map(&r["annotations"]);
                        for k in ["for", "expr"] {
                            if let Some(v) = r[k].as_str() {
                                annotations.insert(k.to_string(), v.to_string());
                            }
                        }
                        m.insert(name.to_string(), (yaml_map(&r["labels"]), annotations));
                    }
                }
            }
        }
        Rules(m)
    }

    /// Annotation `field` of `alert` with `{{ $labels.x }}` filled in from `labels`.
    fn annotation(&self, alert: &str, field: &str, labels: &[(&str, &str)]) -> String {
        self.annotation_v(alert, field, labels, None)
    }

    /// The same, with `{{ $value | f }}` filled in with `value` as Prometheus renders it.
    fn annotation_v(
        &self,
        alert: &str,
        field: &str,
        labels: &[(&str, &str)],
        value: Option<&str>,
    ) -> String {
        let mut t = self
            .0
            .get(alert)
            .and_then(|(_, a)| a.get(field))
            .unwrap_or_else(|| panic!("alert {alert} has no annotation {field}"))
            .clone();
        for (k, v) in labels {
            t = t.replace(&format!("{{{{ $labels.{k} }}}}"), v);
        }
        if let Some(v) = value {
            for f in ["humanize", "humanizePercentage", "humanizeDuration"] {
                t = t.replace(&format!("{{{{ $value | {f} }}}}"), v);
            }
        }
        assert!(
            !t.contains("{{"),
            "{alert} {field}: labels missing to expand {t:?}"
        );
        t
    }

    /// The rule's `for` (seconds or minutes, as rulegen writes them).
    fn for_(&self, alert: &str) -> Duration {
        let f = self.annotation(alert, "for", &[]);
        let (n, unit) = f.split_at(f.len() - 1);
        let n: u64 = n.parse().unwrap_or_else(|_| panic!("{alert}: for {f:?}"));
        match unit {
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(60 * n),
            _ => panic!("{alert}: for {f:?}"),
        }
    }

    fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    fn label(&self, alert: &str, label: &str) -> &str {
        self.0
            .get(alert)
            .and_then(|(l, _)| l.get(label))
            .map(String::as_str)
            .unwrap_or("")
    }

    /// The receivers 004 prescribes for an alert: priority P0 → PagerDuty + #bitcell-critical,
    /// P1 → PagerDuty + #bitcell-alerts, P2 → #bitcell-warnings, P3 → the low-urgency channel;
    /// whole-region alerts also to #bitcell-regional; the heartbeat to its receiver alone.
    fn expected_receivers(&self, alert: &str) -> BTreeSet<&'static str> {
        if self.label(alert, "heartbeat") == "true" {
            return ["heartbeat"].into();
        }
        let mut r: BTreeSet<&str> = match self.label(alert, "priority") {
            "P0" => ["pagerduty", "slack-critical"].into(),
            "P1" => ["pagerduty", "slack-alerts"].into(),
            "P2" => ["slack-warnings"].into(),
            "P3" => ["slack-low"].into(),
            other => panic!("alert {alert}: priority {other:?}"),
        };
        if self.label(alert, "scope") == "region" {
            r.insert("slack-regional");
        }
        r
    }
}

/// Everything the webhook received so far, read as notifications. A request to a path no
/// receiver was redirected to fails the test.
fn delivered(stack: &Stack, rules: &Rules) -> Vec<Notification> {
    let names = rules.names();
    stack
        .webhook
        .received()
        .iter()
        .map(|r| Notification::parse(r, &stack.receivers, &names).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// Wait for a notification to `receiver` about `alert` with `status` whose text contains every
/// one of `texts`.
fn wait_notification(
    stack: &Stack,
    rules: &Rules,
    receiver: &str,
    alert: &str,
    status: &str,
    texts: &[impl AsRef<str> + std::fmt::Debug],
    timeout: Duration,
) -> Notification {
    wait::until(
        &format!("{receiver} gets {alert} {status} mentioning {texts:?}"),
        timeout,
        || {
            let all = delivered(stack, rules);
            all.iter()
                .find(|n| {
                    n.receiver == receiver
                        && n.status == status
                        && n.is(alert)
                        && texts.iter().all(|t| n.text.contains(t.as_ref()))
                })
                .cloned()
                .ok_or_else(|| {
                    let seen: Vec<String> = all.iter().map(|n| n.summary()).collect();
                    format!("{} notifications: {seen:#?}", all.len())
                })
        },
    )
}

/// The notification's subject, as every receiver's template writes it: priority, alert,
/// chain/network and region of the group (`P0 RegionDown dilithion/testnet (us-east)`).
fn subject(rules: &Rules, alert: &str, labels: &[(&str, &str)]) -> String {
    let get = |k: &str| labels.iter().find(|(l, _)| *l == k).map(|(_, v)| *v);
    let mut s = format!("{} {alert}", rules.label(alert, "priority"));
    if let (Some(c), Some(n)) = (get("chain"), get("network")) {
        s.push_str(&format!(" {c}/{n}"));
    }
    if let Some(r) = get("region") {
        s.push_str(&format!(" ({r})"));
    }
    s
}

/// Where one alert is, as the templates name it: its node, else region, else chain/network.
fn where_(labels: &[(&str, &str)]) -> String {
    let get = |k: &str| labels.iter().find(|(l, _)| *l == k).map(|(_, v)| *v);
    match (get("node"), get("region"), get("chain"), get("network")) {
        (Some(n), _, _, _) => n.to_string(),
        (None, Some(r), _, _) => r.to_string(),
        (None, None, Some(c), Some(n)) => format!("{c}/{n}"),
        _ => panic!("no node, region or chain/network in {labels:?}"),
    }
}

/// What a Slack notification about one alert (with `labels`, and `value` where it shows one)
/// says: its title (status, subject, `1 node`), the alert's line (where, value, summary), its
/// description, the threshold and response time, and the runbook as a clickable absolute link.
fn slack_texts(
    rules: &Rules,
    alert: &str,
    labels: &[(&str, &str)],
    value: Option<&str>,
) -> Vec<String> {
    let a = |f: &str| rules.annotation_v(alert, f, labels, value);
    let one = if rules.label(alert, "scope") == "node" {
        "1 node"
    } else {
        "1 alert"
    };
    let url = a("runbook_url");
    assert!(
        url.starts_with("https://") && url.contains('#'),
        "{alert}: {url}"
    );
    let mut v = vec![
        format!("] {}: {one}", subject(rules, alert, labels)),
        format!("• *{}*", where_(labels)),
        format!(": {}\n", a("summary")),
    ];
    // The value, where the test knows it exactly (a count or a rate it cannot fix is left out).
    if let Some(x) = value {
        v.push(format!("* — {x}: "));
    }
    v.extend([
        a("description"),
        format!("Threshold: {}. {}.", a("threshold"), a("response_time")),
        format!("Runbook: <{url}|{url}>"),
    ]);
    v
}

/// A PagerDuty event about `alert` carries the routing key of its key file, the severity
/// PagerDuty knows, a summary naming the alert, chain/network, region, the node and the rule's
/// summary, the runbook as a link, and the rule's severity, threshold, response time and runbook.
fn check_page(n: &Notification, rules: &Rules, alert: &str, labels: &[(&str, &str)]) {
    let j = &n.request.json;
    assert_eq!(j["routing_key"], "e2e-routing-key-pagerduty", "{j}");
    // 004: P0/P1 are critical (they page), P2 a warning; the rule's `severity` says the same.
    let priority = rules.label(alert, "priority");
    let severity = rules.label(alert, "severity");
    let pd_severity = if matches!(priority, "P0" | "P1") {
        "critical"
    } else {
        "warning"
    };
    assert_eq!(severity, pd_severity, "{alert}: severity label");
    assert_eq!(j["payload"]["severity"], pd_severity, "{j}");
    let summary = j["payload"]["summary"].as_str().unwrap();
    for want in [
        subject(rules, alert, labels),
        where_(labels),
        rules.annotation_v(alert, "summary", labels, None),
    ] {
        assert!(summary.contains(&want), "{want:?} not in {summary:?}");
    }
    let url = rules.annotation(alert, "runbook_url", labels);
    assert_eq!(j["links"][0]["href"], url.as_str(), "runbook link in {j}");
    assert!(url.starts_with("https://"), "{url}");
    let d = &j["payload"]["custom_details"];
    assert_eq!(d["alertname"], alert, "{j}");
    assert_eq!(d["severity"], severity, "{j}");
    assert_eq!(d["priority"], priority, "{j}");
    for f in ["threshold", "response_time", "runbook_url"] {
        assert_eq!(d[f], rules.annotation(alert, f, labels), "{f} in {j}");
    }
}

/// Alertmanager's alerts named `alert` with `label=value` for every pair of `labels`.
fn am_alert(alerts: &[Value], alert: &str, labels: &[(&str, &str)]) -> Option<Value> {
    alerts
        .iter()
        .find(|a| {
            a["labels"]["alertname"] == alert && labels.iter().all(|(k, v)| a["labels"][*k] == *v)
        })
        .cloned()
}

fn receivers_of(a: &Value) -> BTreeSet<String> {
    a["receivers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str().map(String::from))
        .collect()
}

/// Wait until every `(alert, labels)` target is in Alertmanager, suppressed by the alert
/// `(source, source_labels)`, and has stayed so for `MUTED_FOR` (its group was flushed, muted,
/// more than once).
fn wait_inhibited(stack: &Stack, targets: &[(&str, Vec<(&str, &str)>)], source: &str) {
    let mut since: Option<Instant> = None;
    wait::until(
        &format!("{targets:?} inhibited by {source} for {MUTED_FOR:?}"),
        SOON + MUTED_FOR,
        || {
            let alerts = stack.am_alerts();
            let check = || -> Result<(), String> {
                for (name, labels) in targets {
                    let t = am_alert(&alerts, name, labels)
                        .ok_or_else(|| format!("{name} {labels:?} not in Alertmanager"))?;
                    let src_labels: Vec<(&str, &str)> = ["chain", "network", "region", "node"]
                        .into_iter()
                        .filter(|l| t["labels"][*l].is_string())
                        .map(|l| (l, t["labels"][l].as_str().unwrap()))
                        .collect();
                    let by: Vec<&Value> = t["status"]["inhibitedBy"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .collect();
                    let sources: Vec<&Value> = alerts
                        .iter()
                        .filter(|a| a["labels"]["alertname"] == source)
                        .filter(|a| {
                            // The source shares the labels the inhibition compares.
                            src_labels
                                .iter()
                                .all(|(k, v)| a["labels"][*k].as_str().is_none_or(|x| x == *v))
                        })
                        .collect();
                    if t["status"]["state"] != "suppressed"
                        || !by
                            .iter()
                            .any(|f| sources.iter().any(|s| s["fingerprint"] == **f))
                    {
                        return Err(format!(
                            "{name} {labels:?}: status {} (sources {source}: {:?})",
                            t["status"],
                            sources
                                .iter()
                                .map(|s| &s["fingerprint"])
                                .collect::<Vec<_>>()
                        ));
                    }
                }
                Ok(())
            };
            match check() {
                Ok(()) => {
                    let s = *since.get_or_insert_with(Instant::now);
                    if s.elapsed() >= MUTED_FOR {
                        Ok(())
                    } else {
                        Err(format!("inhibited for {:?} so far", s.elapsed()))
                    }
                }
                Err(e) => {
                    since = None;
                    Err(e)
                }
            }
        },
    );
}

/// On a failure, say where the logs are and what was delivered.
struct Report<'a>(&'a Stack);

impl Drop for Report<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "e2e failed after {:?}; logs in {} (CHAINWATCH_E2E_KEEP=1 keeps them)\n{}",
                self.0.started.elapsed(),
                self.0.dir_path.join("logs").display(),
                self.0.logs()
            );
            for r in self.0.webhook.received() {
                eprintln!("delivered {} {}", r.path, r.body);
            }
        }
    }
}

#[test]
fn alerts_travel_from_simulated_nodes_to_receivers_routed_inhibited_and_resolved() {
    let stack = Stack::start(FLEET, OVERLAY);
    let _report = Report(&stack);
    let rules = Rules::load(&stack.rendered);

    // (f) The dead man's switch: ChainwatchWatchdog keeps arriving at the heartbeat receiver, with the
    // bearer token read from its credentials file.
    let beats = wait::until("two heartbeats", SOON, || {
        let b: Vec<Notification> = delivered(&stack, &rules)
            .into_iter()
            .filter(|n| n.receiver == "heartbeat")
            .collect();
        if b.len() >= 2 {
            Ok(b)
        } else {
            Err(format!("{} heartbeats", b.len()))
        }
    });
    let token = stack.receivers["heartbeat"].secret.clone().unwrap();
    for b in &beats {
        assert_eq!(
            b.request.header("authorization"),
            Some(&*format!("Bearer {token}"))
        );
        assert_eq!(b.alertnames, ["ChainwatchWatchdog"], "{}", b.text);
        assert_eq!(b.status, "firing");
        let labels = &b.request.json["alerts"][0]["labels"];
        assert_eq!(labels["heartbeat"], "true");
        assert_eq!(labels["priority"], "P3");
        assert_eq!(labels["severity"], "info");
        assert_eq!(labels["criterion"], "N6");
    }

    // A healthy fleet is quiet: once the rate windows hold data, nothing but the ChainwatchWatchdog is
    // pending or firing.
    wait::until("rate windows filled", SOON, || {
        let r = stack.query("node:chain_cid_success:ratio_rate5m")?;
        if r.len() >= 3 {
            Ok(())
        } else {
            Err(format!("{r:?}"))
        }
    });
    let noise = stack
        .query("max_over_time(ALERTS{alertname!=\"ChainwatchWatchdog\"}[1h])")
        .unwrap();
    let noise: Vec<String> = noise.iter().map(|s| s["metric"].to_string()).collect();
    assert!(noise.is_empty(), "alerts on a healthy fleet: {noise:#?}");

    // Inject every scenario at once, each on its own nodes.
    let t0 = Instant::now();
    stack.scenario(r#"{"scenario": "consensus_divergence", "node": "cj-eu-1"}"#);
    // us-east's hosts die, their sidecars with them.
    let down = stack.scenario(r#"{"scenario": "region_down", "region": "us-east"}"#);
    assert_eq!(
        down["nodes"],
        serde_json::json!(["cj-us-1", "dil-us-1", "pop-us-1"])
    );
    // In eu-west, one sidecar is killed (its node runs on) and one host is cut off by a partition.
    let killed = Instant::now();
    stack.scenario(r#"{"scenario": "sidecar_down", "node": "dil-euw-2"}"#);
    stack.scenario(r#"{"scenario": "partition", "node": "dil-euw-3"}"#);
    // dil-eu-2's node process stops; its host and sidecar run on and report it.
    stack.scenario(r#"{"scenario": "node_down", "node": "dil-eu-2"}"#);
    let miners = stack.scenario(r#"{"scenario": "no_active_miners", "family": "bitcell"}"#);
    assert_eq!(miners["nodes"], serde_json::json!(["bc-eu-1", "bc-ap-1"]));
    stack.scenario(r#"{"scenario": "equilibrium_drift", "node": "cj-ap-1"}"#);
    stack.control("/mode", r#"{"node": "cj-eu-2", "mode": "rust"}"#);
    stack.scenario(r#"{"scenario": "fallbacks", "node": "cj-eu-2"}"#);

    // (a) A divergence pages: PagerDuty and #bitcell-critical, with the labels and annotations
    // of the rule.
    let cj_eu_1 = [
        ("chain", "coinjecture"),
        ("network", "testnet"),
        ("region", "eu-central"),
        ("node", "cj-eu-1"),
    ];
    let pd = wait_notification(
        &stack,
        &rules,
        "pagerduty",
        "ConsensusDivergence",
        "firing",
        &[rules.annotation("ConsensusDivergence", "summary", &cj_eu_1)],
        SOON,
    );
    check_page(&pd, &rules, "ConsensusDivergence", &cj_eu_1);
    let sl = wait_notification(
        &stack,
        &rules,
        "slack-critical",
        "ConsensusDivergence",
        "firing",
        &slack_texts(&rules, "ConsensusDivergence", &cj_eu_1, None),
        SOON,
    );
    assert_eq!(sl.request.json["channel"], "#bitcell-critical");
    let a = am_alert(&stack.am_alerts(), "ConsensusDivergence", &[]).expect("in Alertmanager");
    for (k, v) in [
        ("node", "cj-eu-1"),
        ("chain", "coinjecture"),
        ("network", "testnet"),
        ("region", "eu-central"),
        ("priority", "P0"),
        ("severity", "critical"),
        ("scope", "node"),
        ("criterion", "M1"),
    ] {
        assert_eq!(a["labels"][k], v, "label {k} of {a}");
    }
    assert_eq!(
        receivers_of(&a),
        ["pagerduty", "slack-critical"].map(String::from).into()
    );
    stack.scenario(r#"{"scenario": "consensus_divergence", "node": "cj-eu-1", "on": false}"#);
    let divergence_cleared = Instant::now();
    eprintln!(
        "e2e: (a) divergence paged {:?} after the injection",
        pd.at - t0
    );

    // (b) The region is down: RegionDown for each chain of us-east reaches #bitcell-regional
    // and the P0 receivers; the NodeDown alerts of its nodes are inhibited.
    let chains = ["coinjecture", "dilithion", "pop"];
    for chain in chains {
        let labels = [
            ("chain", chain),
            ("network", "testnet"),
            ("region", "us-east"),
        ];
        for receiver in ["slack-regional", "slack-critical"] {
            let n = wait_notification(
                &stack,
                &rules,
                receiver,
                "RegionDown",
                "firing",
                &slack_texts(&rules, "RegionDown", &labels, Some("100%")),
                SOON,
            );
            assert_eq!(
                n.request.json["channel"],
                stack.receivers[receiver].channel.clone().unwrap()
            );
        }
    }
    let region_pages = wait::until("three RegionDown pages", SOON, || {
        let pages: Vec<Notification> = delivered(&stack, &rules)
            .into_iter()
            .filter(|n| n.receiver == "pagerduty" && n.is("RegionDown") && n.status == "firing")
            .collect();
        for p in &pages {
            // One page per chain; its summary names the chain.
            let summary = p.request.json["payload"]["summary"]
                .as_str()
                .unwrap_or_default();
            let chain = chains
                .iter()
                .find(|c| summary.contains(&format!("for {c}/testnet")))
                .copied()
                .unwrap_or("?");
            check_page(
                p,
                &rules,
                "RegionDown",
                &[
                    ("region", "us-east"),
                    ("chain", chain),
                    ("network", "testnet"),
                ],
            );
        }
        let keys: BTreeSet<String> = pages
            .iter()
            .map(|n| n.request.json["dedup_key"].as_str().unwrap().to_string())
            .collect();
        if keys.len() == 3 {
            Ok(keys)
        } else {
            Err(format!("{keys:?}"))
        }
    });
    // The region's node alerts are muted: NodeDown (the liveness of each node), and SidecarDown
    // (their targets do not answer).
    wait_inhibited(
        &stack,
        &[
            ("NodeDown", vec![("node", "cj-us-1")]),
            ("NodeDown", vec![("node", "dil-us-1")]),
            ("NodeDown", vec![("node", "pop-us-1")]),
            ("SidecarDown", vec![("node", "cj-us-1")]),
            ("SidecarDown", vec![("node", "dil-us-1")]),
            ("SidecarDown", vec![("node", "pop-us-1")]),
        ],
        "RegionDown",
    );
    let alerts = stack.am_alerts();
    for chain in chains {
        let a = am_alert(
            &alerts,
            "RegionDown",
            &[("chain", chain), ("region", "us-east")],
        )
        .unwrap_or_else(|| panic!("RegionDown {chain} in Alertmanager"));
        assert_eq!(a["labels"]["scope"], "region");
        assert_eq!(
            receivers_of(&a),
            ["pagerduty", "slack-critical", "slack-regional"]
                .map(String::from)
                .into()
        );
    }
    eprintln!(
        "e2e: (b) region down delivered, its node alerts inhibited (t0+{:?})",
        t0.elapsed()
    );

    sidecars_watched(&stack, &rules, killed);
    // A health check that fails, its sidecar running: NodeDown for that node alone.
    let dil_eu_2 = [
        ("chain", "dilithion"),
        ("network", "testnet"),
        ("region", "eu-central"),
        ("node", "dil-eu-2"),
    ];
    let nd = wait_notification(
        &stack,
        &rules,
        "pagerduty",
        "NodeDown",
        "firing",
        &[rules.annotation("NodeDown", "summary", &dil_eu_2)],
        SOON,
    );
    check_page(&nd, &rules, "NodeDown", &dil_eu_2);
    wait_notification(
        &stack,
        &rules,
        "slack-alerts",
        "NodeDown",
        "firing",
        &slack_texts(&rules, "NodeDown", &dil_eu_2, None),
        SOON,
    );
    stack.scenario(r#"{"scenario": "region_down", "region": "us-east", "on": false}"#);
    stack.scenario(r#"{"scenario": "all_clear", "region": "eu-west"}"#);
    stack.scenario(r#"{"scenario": "all_clear", "node": "dil-eu-2"}"#);
    // (c) No active miners pages; ChainNotProgressing of the BitCell nodes is inhibited.
    let bitcell = [("chain", "bitcell"), ("network", "testnet")];
    let page = wait_notification(
        &stack,
        &rules,
        "pagerduty",
        "NoActiveMiners",
        "firing",
        &[rules.annotation("NoActiveMiners", "summary", &bitcell)],
        SOON,
    );
    check_page(&page, &rules, "NoActiveMiners", &bitcell);
    wait_notification(
        &stack,
        &rules,
        "slack-critical",
        "NoActiveMiners",
        "firing",
        &slack_texts(&rules, "NoActiveMiners", &bitcell, None),
        SOON,
    );
    wait_inhibited(
        &stack,
        &[
            ("ChainNotProgressing", vec![("node", "bc-eu-1")]),
            ("ChainNotProgressing", vec![("node", "bc-ap-1")]),
        ],
        "NoActiveMiners",
    );
    eprintln!(
        "e2e: (c) no active miners delivered, ChainNotProgressing inhibited (t0+{:?})",
        t0.elapsed()
    );

    // The consensus migration of cj-eu-2: the mode change is information (P3 → the
    // low-urgency channel), a fallback to legacy a warning (P2 → #bitcell-warnings).
    let cj_eu_2 = [
        ("chain", "coinjecture"),
        ("network", "testnet"),
        ("region", "eu-central"),
        ("node", "cj-eu-2"),
    ];
    let mut rust = cj_eu_2.to_vec();
    rust.push(("mode", "rust"));
    let mc = wait_notification(
        &stack,
        &rules,
        "slack-low",
        "ConsensusModeChanged",
        "firing",
        &slack_texts(&rules, "ConsensusModeChanged", &rust, None),
        SOON,
    );
    assert_eq!(mc.request.json["channel"], "#bitcell-low");
    wait_notification(
        &stack,
        &rules,
        "slack-warnings",
        "ConsensusFallback",
        "firing",
        &slack_texts(&rules, "ConsensusFallback", &cj_eu_2, None),
        SOON,
    );
    eprintln!(
        "e2e: mode change and fallback delivered (t0+{:?})",
        t0.elapsed()
    );

    // (d) Equilibrium drift of 25%: the warning first, the rollback alert once its `for` has
    // passed, which then mutes the warning.
    let dev = stack
        .query("node:chain_equilibrium_deviation:max_ratio{node=\"cj-ap-1\"}")
        .unwrap();
    let v: f64 = dev[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!((0.2..0.3).contains(&v), "deviation of cj-ap-1: {v}");
    let cj_ap_1 = [
        ("chain", "coinjecture"),
        ("network", "testnet"),
        ("region", "ap-south"),
        ("node", "cj-ap-1"),
    ];
    wait_notification(
        &stack,
        &rules,
        "slack-warnings",
        "EquilibriumDeviation",
        "firing",
        &slack_texts(&rules, "EquilibriumDeviation", &cj_ap_1, None),
        SOON,
    );
    let rollback = "EquilibriumDeviationRollback";
    assert!(
        rules.annotation(rollback, "expr", &[]).ends_with("> 0.2"),
        "the rollback criterion of 000 is a deviation past 20%"
    );
    let rollback_for = rules.for_(rollback);
    let rb = wait_notification(
        &stack,
        &rules,
        "pagerduty",
        rollback,
        "firing",
        &[rules.annotation(rollback, "summary", &cj_ap_1)],
        rollback_for + SOON,
    );
    assert!(
        rb.at - t0 >= rollback_for,
        "the rollback alert arrived {:?} after the drift began, before its `for` of {rollback_for:?}",
        rb.at - t0
    );
    check_page(&rb, &rules, rollback, &cj_ap_1);
    wait_notification(
        &stack,
        &rules,
        "slack-alerts",
        rollback,
        "firing",
        &slack_texts(&rules, rollback, &cj_ap_1, None),
        SOON,
    );
    wait_inhibited(
        &stack,
        &[("EquilibriumDeviation", vec![("node", "cj-ap-1")])],
        "EquilibriumDeviationRollback",
    );
    stack.scenario(r#"{"scenario": "equilibrium_drift", "node": "cj-ap-1", "on": false}"#);
    eprintln!(
        "e2e: (d) rollback alert {:?} after the drift began (t0+{:?})",
        rb.at - t0,
        t0.elapsed()
    );

    // (e) Recovery resolves: the resolved notifications reach the receivers that got the alerts.
    for receiver in ["pagerduty", "slack-critical"] {
        wait_notification(
            &stack,
            &rules,
            receiver,
            "ConsensusDivergence",
            "resolved",
            &[] as &[&str],
            SOON,
        );
    }
    let resolved = delivered(&stack, &rules)
        .into_iter()
        .find(|n| {
            n.receiver == "pagerduty" && n.is("ConsensusDivergence") && n.status == "resolved"
        })
        .unwrap();
    assert_eq!(
        resolved.request.json["dedup_key"],
        pd.request.json["dedup_key"]
    );
    assert!(resolved.at > divergence_cleared);
    for chain in chains {
        for receiver in ["slack-regional", "slack-critical"] {
            wait_notification(
                &stack,
                &rules,
                receiver,
                "RegionDown",
                "resolved",
                &[format!(
                    "[RESOLVED] P0 RegionDown {chain}/testnet (us-east)"
                )],
                SOON,
            );
        }
    }
    wait::until("the three RegionDown pages resolved", SOON, || {
        let keys: BTreeSet<String> = delivered(&stack, &rules)
            .iter()
            .filter(|n| n.receiver == "pagerduty" && n.is("RegionDown") && n.status == "resolved")
            .map(|n| n.request.json["dedup_key"].as_str().unwrap().to_string())
            .collect();
        if keys == region_pages {
            Ok(())
        } else {
            Err(format!("{keys:?} of {region_pages:?}"))
        }
    });
    for receiver in ["pagerduty", "slack-alerts"] {
        wait_notification(
            &stack,
            &rules,
            receiver,
            "EquilibriumDeviationRollback",
            "resolved",
            &[] as &[&str],
            SOON,
        );
    }
    // The hosts boot, new sidecars start, the partition heals: every liveness alert resolves,
    // delivered where it fired, and none is left in Prometheus or Alertmanager.
    for (receiver, alert) in [
        ("pagerduty", "NodeDown"),
        ("pagerduty", "SidecarDown"),
        ("slack-alerts", "SidecarDown"),
        ("slack-regional", "RegionDegraded"),
        ("pagerduty", "HighNodeDownRate"),
    ] {
        wait_notification(
            &stack,
            &rules,
            receiver,
            alert,
            "resolved",
            &[] as &[&str],
            SOON,
        );
    }
    let liveness = "RegionDown|RegionDegraded|HighNodeDownRate|NodeDown|SidecarDown";
    wait::until("no liveness alert left", SOON, || {
        let left = stack.query(&format!("ALERTS{{alertname=~\"{liveness}\"}}"))?;
        let am: Vec<String> = stack
            .am_alerts()
            .iter()
            .filter(|a| {
                a["labels"]["alertname"]
                    .as_str()
                    .is_some_and(|n| liveness.split('|').any(|x| x == n))
            })
            .map(|a| a["labels"].to_string())
            .collect();
        if left.is_empty() && am.is_empty() {
            Ok(())
        } else {
            Err(format!("Prometheus: {left:?}; Alertmanager: {am:?}"))
        }
    });
    eprintln!("e2e: (e) resolved (t0+{:?})", t0.elapsed());

    // Every Grafana panel query runs against this Prometheus.
    dashboards_have_data(&stack);

    // What was delivered, all of it: routed as 004 says, secrets presented, nothing inhibited.
    let all = delivered(&stack, &rules);
    let region_nodes = ["cj-us-1", "dil-us-1", "pop-us-1"];
    for n in &all {
        assert!(!n.alertnames.is_empty(), "no alert name in {}", n.summary());
        for a in &n.alertnames {
            let expected = rules.expected_receivers(a);
            assert!(
                expected.contains(n.receiver.as_str()),
                "{a} delivered to {} (004 routes it to {expected:?})",
                n.receiver
            );
            // NodeDown only where the node itself fails its health check: the others are
            // muted by RegionDown or SidecarDown.
            assert!(
                a != "NodeDown" || (n.text.contains("dil-eu-2") && !n.text.contains("dil-eu-1")),
                "NodeDown delivered: {}",
                n.summary()
            );
            assert_ne!(
                a,
                "ChainNotProgressing",
                "inhibited alert delivered: {}",
                n.summary()
            );
            if rules.label(a, "scope") == "node" {
                for node in region_nodes {
                    assert!(
                        !n.text.contains(node),
                        "node alert of the downed region delivered: {}",
                        n.summary()
                    );
                }
            }
        }
        let red = &stack.receivers[&n.receiver];
        match n.kind.as_str() {
            "pagerduty" => assert_eq!(
                n.request.json["routing_key"].as_str(),
                red.secret.as_deref(),
                "routing key"
            ),
            "slack" => assert_eq!(n.request.json["channel"].as_str(), red.channel.as_deref()),
            _ => assert_eq!(
                n.request.header("authorization"),
                red.secret
                    .as_ref()
                    .map(|s| format!("Bearer {s}"))
                    .as_deref()
            ),
        }
    }
    let mut counts: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for n in &all {
        *counts
            .entry((n.receiver.clone(), n.alertnames.join(","), n.status.clone()))
            .or_default() += 1;
    }
    eprintln!("e2e: delivered {counts:#?}");
    eprintln!("e2e: done in {:?}", stack.started.elapsed());
}

/// (g) dil-euw-2's sidecar was killed (its node runs on) and dil-euw-3 cut off by a partition,
/// at `killed`. SidecarDown pages for both in one notification of their region's group, no
/// sooner than its `for` after the kill, naming each node and its target; Alertmanager holds
/// their NodeDown alerts, muted by it; 2 of 3 of eu-west unseen is RegionDegraded (66.67%); and
/// with us-east (and dil-eu-2) down too, half of the Dilithion and of the PoP nodes or more are
/// down: HighNodeDownRate above 30%. Here `node` and `region` come from Prometheus's target labels, not the sidecars.
fn sidecars_watched(stack: &Stack, rules: &Rules, killed: Instant) {
    let group = [
        ("chain", "dilithion"),
        ("network", "testnet"),
        ("region", "eu-west"),
    ];
    let instance = |n: &str| {
        stack
            .node(n)
            .sidecar_url
            .trim_start_matches("http://")
            .to_string()
    };
    // Alertmanager orders a group's alerts by job, then instance.
    let mut down = [
        ("dil-euw-2", instance("dil-euw-2")),
        ("dil-euw-3", instance("dil-euw-3")),
    ];
    down.sort_by(|a, b| a.1.cmp(&b.1));
    let labels = |n: &str, i: &str| -> Vec<(String, String)> {
        let mut l: Vec<(String, String)> = group
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        l.push(("node".into(), n.into()));
        l.push(("job".into(), "chainwatch".into()));
        l.push(("instance".into(), i.into()));
        l
    };
    let alert = "SidecarDown";
    let exact_summary = format!(
        "{}: 2 nodes: {}",
        subject(rules, alert, &group),
        down.iter()
            .map(|(n, i)| format!("{n} instance={i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut exact_text = String::new();
    for (n, i) in &down {
        let owned = labels(n, i);
        let l = borrowed(&owned);
        exact_text.push_str(&format!(
            "• *{n}* instance={i}: {}\n{}\n",
            rules.annotation(alert, "summary", &l),
            rules.annotation(alert, "description", &l)
        ));
    }
    let url = rules.annotation(alert, "runbook_url", &group);
    exact_text.push_str(&format!(
        "Threshold: {}. {}.\nRunbook: <{url}|{url}>",
        rules.annotation(alert, "threshold", &group),
        rules.annotation(alert, "response_time", &group),
    ));
    let for_ = rules.for_(alert);
    let page = wait::until(
        "one SidecarDown page naming both eu-west nodes",
        for_ + SOON,
        || {
            let all = delivered(stack, rules);
            all.iter()
                .find(|n| {
                    n.receiver == "pagerduty"
                        && n.status == "firing"
                        && n.request.json["payload"]["summary"] == exact_summary.as_str()
                })
                .cloned()
                .ok_or_else(|| {
                    let seen: Vec<String> = all
                        .iter()
                        .filter(|n| n.is(alert))
                        .map(|n| n.request.json["payload"]["summary"].to_string())
                        .collect();
                    format!("want {exact_summary:?}; SidecarDown pages so far: {seen:#?}")
                })
        },
    );
    assert!(
        page.at - killed >= for_,
        "SidecarDown paged {:?} after the kill, before its `for` of {for_:?}",
        page.at - killed
    );
    assert_eq!(page.request.json["links"][0]["href"], url.as_str());
    let slack = wait::until("the same group in #bitcell-alerts", SOON, || {
        let all = delivered(stack, rules);
        all.iter()
            .find(|n| {
                n.receiver == "slack-alerts"
                    && n.status == "firing"
                    && n.request.json["attachments"][0]["text"] == exact_text.as_str()
            })
            .cloned()
            .ok_or_else(|| {
                let seen: Vec<String> = all
                    .iter()
                    .filter(|n| n.receiver == "slack-alerts" && n.is(alert))
                    .map(|n| n.text.clone())
                    .collect();
                format!("want {exact_text:?}; got {seen:#?}")
            })
    });
    assert_eq!(
        slack.request.json["attachments"][0]["title_link"],
        url.as_str()
    );
    // The alerts carry the identity Prometheus's target labels gave the sidecars, and their
    // NodeDown alerts are muted by them.
    let alerts = stack.am_alerts();
    for (n, i) in &down {
        let a = am_alert(&alerts, alert, &[("node", n)])
            .unwrap_or_else(|| panic!("SidecarDown {n} in Alertmanager"));
        for (k, v) in labels(n, i) {
            assert_eq!(a["labels"][k.as_str()], v.as_str(), "{k} of {a}");
        }
    }
    wait_inhibited(
        stack,
        &[
            ("NodeDown", vec![("node", "dil-euw-2")]),
            ("NodeDown", vec![("node", "dil-euw-3")]),
        ],
        alert,
    );
    // 2 of the 3 nodes of eu-west cannot be seen.
    for receiver in ["slack-warnings", "slack-regional"] {
        wait_notification(
            stack,
            rules,
            receiver,
            "RegionDegraded",
            "firing",
            &slack_texts(rules, "RegionDegraded", &group, Some("66.67%")),
            SOON,
        );
    }
    // More than half of Dilithion (us-east, two of eu-west, dil-eu-2, of seven) and half of PoP
    // (us-east, of two).
    for chain in ["dilithion", "pop"] {
        let net = [("chain", chain), ("network", "testnet")];
        let page = wait_notification(
            stack,
            rules,
            "pagerduty",
            "HighNodeDownRate",
            "firing",
            &[subject(rules, "HighNodeDownRate", &net)],
            SOON,
        );
        check_page(&page, rules, "HighNodeDownRate", &net);
        let summary = page.request.json["payload"]["summary"].as_str().unwrap();
        let pct: f64 = summary
            .split_once(&format!("{chain}/testnet ("))
            .and_then(|(_, r)| r.split_once("%)"))
            .and_then(|(v, _)| v.parse().ok())
            .unwrap_or_else(|| panic!("no value in {summary:?}"));
        assert!(pct > 30.0, "{summary}");
        wait_notification(
            stack,
            rules,
            "slack-critical",
            "HighNodeDownRate",
            "firing",
            &[subject(rules, "HighNodeDownRate", &net)],
            SOON,
        );
    }
    eprintln!(
        "e2e: (g) SidecarDown paged {:?} after the kill; RegionDegraded, HighNodeDownRate delivered",
        page.at - killed
    );
}

fn borrowed(l: &[(String, String)]) -> Vec<(&str, &str)> {
    l.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Every query of every panel of the committed dashboards (and of the ones rendered with the
/// overlay) runs without error, and returns data unless the panel is listed here with why.
fn dashboards_have_data(stack: &Stack) {
    // (dashboard file, panel title, metric in the query) → why it may be empty.
    let may_be_empty: &[(&str, &str, &str, &str)] = &[
        (
            "equilibrium-gossip.json",
            "Peer churn, connection failures, timeout rate, stale peers",
            "chain_stale_peers",
            "the simulated COINjecture nodes never log a stale-peer count (their `📊 Network:` \
             line has peers and queue only); the profile reads it where a node logs one",
        ),
        (
            "propagation.json",
            "Socket error rate, last 30m / the 30m before",
            "chain_socket_errors_total",
            "a trend against the half hour before (offset 30m) that shows only above one error \
             a minute: a run of minutes has neither the history nor the errors",
        ),
        (
            "rollout.json",
            "Stage 2: 3 bootstrap nodes (coinjecture-stage-2)",
            "node:chain_equilibrium_deviation:max_ratio",
            "the gate's `[6h:5m]` subquery is evaluated at instants aligned to 5 minutes: a run \
             of a few minutes may hold none since the record's first sample",
        ),
    ];
    let mut seen = BTreeSet::new();
    let mut listed = BTreeSet::new();
    let mut empty = Vec::new();
    let mut errors = Vec::new();
    let mut queries = 0;
    for dir in [
        root().join("grafana/dashboards"),
        stack.rendered.join("grafana/dashboards"),
    ] {
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no dashboards in {}", dir.display());
        for f in files {
            let d: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
            let file = f.file_name().unwrap().to_string_lossy().to_string();
            let mut panels: Vec<&Value> = Vec::new();
            for p in d["panels"].as_array().unwrap() {
                panels.push(p);
                panels.extend(p["panels"].as_array().into_iter().flatten());
            }
            variables_list_the_fleet(stack, &file, &d);
            for p in panels {
                let title = p["title"].as_str().unwrap_or("");
                for t in p["targets"].as_array().into_iter().flatten() {
                    let Some(expr) = t["expr"].as_str() else {
                        continue;
                    };
                    let q = grafana_to_promql(expr);
                    let allowed = may_be_empty
                        .iter()
                        .position(|(f, t, m, _)| *f == file && *t == title && expr.contains(m));
                    if let Some(i) = allowed {
                        listed.insert(i);
                    }
                    if !seen.insert(q.clone()) {
                        continue; // the same query in the committed and the rendered dashboards
                    }
                    queries += 1;
                    if let Err(e) = stack.query(&q) {
                        errors.push(format!("{file} / {title}: {q}: {e}"));
                        continue;
                    }
                    match stack.query_range(&q, stack.started.elapsed(), "2s") {
                        Err(e) => errors.push(format!("{file} / {title}: {q}: {e}")),
                        Ok(r) if r.is_empty() => match allowed {
                            Some(i) => eprintln!(
                                "e2e: empty as listed: {file} / {title}: {}",
                                may_be_empty[i].3
                            ),
                            None => empty.push((format!("{file} / {title}"), q.clone())),
                        },
                        Ok(_) => {}
                    }
                }
            }
        }
    }
    assert!(
        errors.is_empty(),
        "panel queries failed:\n{}",
        errors.join("\n")
    );
    // A subquery (`[1h:1m]`: the stage-1 gate, the time-fraction rollups of the SLOs) has
    // points only at instants aligned to its step: a run that has not yet crossed a minute
    // boundary since the records' first samples has none. Such panels get theirs once one
    // passes: ask again for up to 75 s (a minute boundary, and the groups' next evaluations).
    let deadline = Instant::now() + Duration::from_secs(75);
    while !empty.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(2));
        empty.retain(|(_, q)| {
            !matches!(stack.query_range(q, stack.started.elapsed(), "2s"), Ok(r) if !r.is_empty())
        });
    }
    let empty: Vec<String> = empty
        .into_iter()
        .map(|(p, q)| format!("{p}: {q}"))
        .collect();
    assert!(
        empty.is_empty(),
        "panels without data:\n{}",
        empty.join("\n")
    );
    for (i, (f, t, m, _)) in may_be_empty.iter().enumerate() {
        assert!(
            listed.contains(&i),
            "listed as allowed to be empty, but no such panel query: {f} / {t} / {m}"
        );
    }
    eprintln!("e2e: {queries} panel queries ran, all with data or listed");
}

/// The dashboard's variables (`label_values(metric{…}, label)`, every other variable on "All")
/// offer every chain, region and node of the fleet.
fn variables_list_the_fleet(stack: &Stack, file: &str, d: &Value) {
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] != "query" {
            continue;
        }
        let name = v["name"].as_str().unwrap();
        let q = v["query"]
            .as_str()
            .unwrap_or_else(|| v["query"]["query"].as_str().unwrap());
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{file}: variable {name}: {q}"));
        let (selector, label) = inner.rsplit_once(',').unwrap();
        let selector = grafana_to_promql(selector.trim());
        let url = format!(
            "{}/api/v1/label/{}/values?match[]={}",
            stack.prometheus_url,
            label.trim(),
            chainwatch_tests::http::urlencode(&selector)
        );
        let got: BTreeSet<String> = chainwatch_tests::http::get_json(&url)["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect();
        let want: BTreeSet<String> = match label.trim() {
            "chain" => stack.nodes.iter().map(|n| n.chain.clone()).collect(),
            "region" => stack.nodes.iter().map(|n| n.region.clone()).collect(),
            "node" => stack.nodes.iter().map(|n| n.name.clone()).collect(),
            "network" => ["testnet".to_string()].into(),
            other => panic!("{file}: variable {name} over an unexpected label {other}"),
        };
        assert_eq!(got, want, "{file}: variable {name} ({q})");
    }
}

/// A panel query as Grafana sends it with every variable on "All": `$__rate_interval` and
/// `$__interval` become durations, `$chain`/`$network`/`$region`/`$node` the "All" value `.*`.
fn grafana_to_promql(expr: &str) -> String {
    let mut q = expr
        .replace("$__rate_interval", "5s")
        .replace("${__rate_interval}", "5s")
        .replace("$__interval", "2s")
        .replace("${__interval}", "2s");
    for v in ["chain", "network", "region", "node"] {
        q = q
            .replace(&format!("${{{v}}}"), ".*")
            .replace(&format!("${v}"), ".*");
    }
    assert!(
        !q.contains('$'),
        "a variable the test does not know in {expr}"
    );
    q
}
