//! End-to-end tests of the chainwatch-rulegen binary: real promtool on the generated files,
//! golden errors for broken thresholds files, `--check`, `coverage`, the overlay, and the promise
//! that one changed number changes one rule and its tests only.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

const BIN: &str = env!("CARGO_BIN_EXE_chainwatch-rulegen");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata")
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run chainwatch-rulegen")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn promtool() -> &'static str {
    match Command::new("promtool").arg("--version").output() {
        Ok(o) if o.status.success() => "promtool",
        _ => panic!("promtool not found: install Debian's `prometheus` package (apt-get install prometheus)"),
    }
}

fn files_under(dir: &Path, sub: &str) -> Vec<String> {
    let Ok(rd) = fs::read_dir(dir.join(sub)) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .map(|e| format!("{sub}/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|f| f.ends_with(".yml"))
        .collect();
    v.sort();
    v
}

/// promtool check rules + promtool test rules (two processes in parallel) under `root`.
fn promtool_all(root: &Path, tests: Vec<String>) {
    let p = promtool();
    let mut rules = files_under(root, "prometheus/rules");
    rules.extend(files_under(root, "prometheus/rules/global"));
    assert!(!rules.is_empty());
    let o = Command::new(p)
        .current_dir(root)
        .arg("check")
        .arg("rules")
        .args(&rules)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "promtool check rules failed:\n{}",
        text(&o)
    );
    let mid = tests.len() / 2;
    let halves = [tests[..mid].to_vec(), tests[mid..].to_vec()];
    let outs: Vec<Output> = std::thread::scope(|s| {
        let hs: Vec<_> = halves
            .iter()
            .filter(|h| !h.is_empty())
            .map(|h| {
                s.spawn(move || {
                    Command::new(p)
                        .current_dir(root)
                        .args(["test", "rules"])
                        .args(h)
                        .output()
                        .unwrap()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for o in outs {
        assert!(
            o.status.success(),
            "promtool test rules failed:\n{}",
            text(&o)
        );
    }
}

fn all_tests(root: &Path) -> Vec<String> {
    let mut t = Vec::new();
    for d in ["alerts", "records", "gates"] {
        t.extend(files_under(root, &format!("prometheus/tests/{d}")));
    }
    t
}

#[test]
fn generated_rules_pass_promtool_check_and_test() {
    let out = tempfile::tempdir().unwrap();
    let o = run(&workspace(), &["--out", out.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let tests = all_tests(out.path());
    assert!(tests.len() > 40, "only {} test files", tests.len());
    promtool_all(out.path(), tests);
}

#[test]
fn committed_output_is_up_to_date() {
    let o = run(&workspace(), &["--check"]);
    assert!(
        o.status.success(),
        "generated files are stale; run chainwatch-rulegen:\n{}",
        text(&o)
    );
}

#[test]
fn every_alert_has_a_test_with_fire_inside_and_before_for_cases() {
    let out = tempfile::tempdir().unwrap();
    assert!(run(&workspace(), &["--out", out.path().to_str().unwrap()])
        .status
        .success());
    let mut files = files_under(out.path(), "prometheus/rules");
    files.extend(files_under(out.path(), "prometheus/rules/global"));
    let rules: String = files
        .iter()
        .map(|f| fs::read_to_string(out.path().join(f)).unwrap())
        .collect();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert!(alerts.len() >= 40, "{alerts:?}");
    // An SLO's alerts and its budget and SLI records are tested in its own file, together.
    let slo_tests: Vec<String> = files_under(out.path(), "prometheus/tests/slos")
        .iter()
        .map(|f| fs::read_to_string(out.path().join(f)).unwrap())
        .collect();
    assert_eq!(slo_tests.len(), 3, "one test file per SLO");
    let slo_test_of = |name: &str, key: &str| {
        slo_tests
            .iter()
            .find(|t| {
                t.contains(&format!("{key}{name}\n")) || t.contains(&format!("{key}\"{name}{{"))
            })
            .cloned()
    };
    for a in alerts {
        if let Some(t) = slo_test_of(a, "alertname: ") {
            assert!(t.contains(": fires"), "{a}: no firing case");
            assert!(t.contains(": silent"), "{a}: no silent case");
            continue;
        }
        let t = fs::read_to_string(
            out.path()
                .join(format!("prometheus/tests/alerts/{a}.test.yml")),
        )
        .unwrap_or_else(|_| panic!("no test file for {a}"));
        if t.contains("hand-written case") {
            continue;
        }
        assert!(t.contains(": fires"), "{a}: no firing case");
        assert!(t.contains("silent"), "{a}: no silent case");
    }
    // Per-chain overrides are tested for each chain that has one.
    let t = fs::read_to_string(
        out.path()
            .join("prometheus/tests/alerts/LowPeerCount.test.yml"),
    )
    .unwrap();
    for c in [
        "(chain dilithion)",
        "(chain bitcell)",
        "(chains without an override)",
    ] {
        assert!(t.contains(c), "LowPeerCount tests lack {c}");
    }
    // Every recording rule has a promql_expr_test.
    for l in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- record: "))
    {
        if l.starts_with("chainwatch:rollout_gate") {
            continue;
        }
        let f = out.path().join(format!(
            "prometheus/tests/records/{}.test.yml",
            l.replace(':', "_")
        ));
        let t = fs::read_to_string(&f)
            .ok()
            .or_else(|| slo_test_of(l, "expr: "))
            .unwrap_or_else(|| panic!("no test for {l}"));
        assert!(t.contains("promql_expr_test:"), "{l}");
    }
}

type Snapshot = BTreeMap<PathBuf, (Vec<u8>, SystemTime)>;

fn snapshot(dir: &Path) -> Snapshot {
    let mut m = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let md = e.metadata().unwrap();
                m.insert(
                    e.path(),
                    (fs::read(e.path()).unwrap(), md.modified().unwrap()),
                );
            }
        }
    }
    m
}

#[test]
fn broken_thresholds_files_fail_with_golden_errors_and_touch_nothing() {
    let td = testdata();
    let out = tempfile::tempdir().unwrap();
    let outs = out.path().to_str().unwrap();
    let o = run(
        &td,
        &["--thresholds", "good/thresholds.yaml", "--out", outs],
    );
    assert!(o.status.success(), "{}", text(&o));
    let before = snapshot(out.path());
    assert!(before.len() > 3);
    let mut cases: Vec<PathBuf> = fs::read_dir(td.join("bad"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 7);
    for case in cases {
        let name = case.file_stem().unwrap().to_string_lossy().to_string();
        let rel = format!("bad/{name}.yaml");
        let o = run(&td, &["--thresholds", &rel, "--out", outs]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", text(&o));
        let stderr = String::from_utf8_lossy(&o.stderr);
        let first = stderr.lines().next().unwrap_or_default();
        let golden = fs::read_to_string(td.join(format!("bad/{name}.err"))).unwrap();
        assert_eq!(
            first,
            golden.trim_end(),
            "{name}: error differs from bad/{name}.err"
        );
        // file:line:col: field: message
        let parts: Vec<&str> = first.trim_start_matches("error: ").splitn(5, ':').collect();
        assert_eq!(parts[0], rel, "{name}");
        assert!(
            parts[1].parse::<usize>().unwrap() > 0 && parts[2].parse::<usize>().unwrap() > 0,
            "{name}: {first}"
        );
        assert!(!parts[3].trim().is_empty(), "{name}: no field in {first}");
        assert!(stderr.contains("nothing written"), "{name}");
        assert_eq!(snapshot(out.path()), before, "{name}: output changed");
        // --check too must refuse the input, not report stale files.
        let o = run(&td, &["--thresholds", &rel, "--out", outs, "--check"]);
        assert_eq!(o.status.code(), Some(2), "{name} --check");
    }
}

#[test]
fn overlay_shortens_for_and_windows_and_its_output_passes_promtool() {
    let out = tempfile::tempdir().unwrap();
    let overlay = testdata().join("overlay.yaml");
    let o = run(
        &workspace(),
        &[
            "--overlay",
            overlay.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let fleet = fs::read_to_string(out.path().join("prometheus/rules/fleet.rules.yml")).unwrap();
    let node_down = fleet.split("- alert: NodeDown").nth(1).unwrap();
    assert!(node_down.contains("for: 5s"), "{node_down}");
    let peers = fs::read_to_string(out.path().join("prometheus/rules/peers.rules.yml")).unwrap();
    assert!(
        peers.contains("chain_peers{chain=\"dilithion\"} < 4"),
        "{peers}"
    );
    let prop =
        fs::read_to_string(out.path().join("prometheus/rules/propagation.rules.yml")).unwrap();
    assert!(
        prop.contains("chain_blocks_received_total{chain=\"dilithion\"}[15s]"),
        "3x block_time of 5s"
    );
    // Alertmanager and Grafana: receivers on loopback, short timings, another datasource URL.
    let am = fs::read_to_string(out.path().join("alertmanager/alertmanager.yml")).unwrap();
    assert!(am.contains("url: \"http://127.0.0.1:1/heartbeat\""), "{am}");
    assert!(am.contains("url: \"http://127.0.0.1:1/pagerduty\""), "{am}");
    assert!(
        am.contains("group_wait: 1s") && !am.contains("group_wait: 10s"),
        "{am}"
    );
    let ds = fs::read_to_string(
        out.path()
            .join("grafana/provisioning/datasources/prometheus.yml"),
    )
    .unwrap();
    assert!(ds.contains("url: \"http://127.0.0.1:9090\""), "{ds}");
    // The changed alerts' tests and every gate pass with the shortened durations.
    let mut tests: Vec<String> = [
        "NodeDown",
        "LowPeerCount",
        "NoBlocksPropagated",
        "EquilibriumDeviationRollback",
    ]
    .iter()
    .map(|a| format!("prometheus/tests/alerts/{a}.test.yml"))
    .collect();
    tests.extend(files_under(out.path(), "prometheus/tests/gates"));
    tests.push("prometheus/tests/records/node_chain_node_up_avg1d.test.yml".into());
    promtool_all(out.path(), tests);
}

#[test]
fn overlay_errors_point_at_the_overlay() {
    let o = run(
        &testdata(),
        &[
            "--thresholds",
            "good/thresholds.yaml",
            "--overlay",
            "bad_overlay.yaml",
            "--out",
            "/nonexistent",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("bad_overlay.yaml:4:10: alerts[0].for: `soon` is not a duration"),
        "{e}"
    );
    assert!(
        e.contains(
            "bad_overlay.yaml:6:11: receivers.nobody: no receiver `nobody` in thresholds.yaml"
        ),
        "{e}"
    );

    let o = run(
        &testdata(),
        &[
            "--overlay",
            "overlay.yaml",
            "--thresholds",
            "good/thresholds.yaml",
            "--check",
            "--out",
            "/nonexistent",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no alert named `NodeDown`"),
        "{}",
        text(&o)
    );
}

fn render(text: &str) -> BTreeMap<String, String> {
    chainwatch_rulegen::generate_str(Path::new("thresholds.yaml"), text)
        .unwrap_or_else(|e| panic!("{e}"))
        .1
}

/// The plain files that differ. The packaged copies (kubernetes/, mixin/) must differ exactly
/// where the files they wrap do (tests/kubernetes.rs checks that they hold them unchanged).
fn changed(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let all: Vec<String> = keys
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect();
    let packaged = |f: &str| f.starts_with("kubernetes/") || f.starts_with("mixin/");
    let plain: Vec<String> = all.iter().filter(|f| !packaged(f)).cloned().collect();
    let mut want: Vec<String> = Vec::new();
    for f in &plain {
        if let Some(stem) = f
            .strip_prefix("grafana/dashboards/")
            .and_then(|n| n.strip_suffix(".json"))
        {
            want.push(format!("kubernetes/monitoring/dashboards/{stem}.yaml"));
            want.push(format!("mixin/dashboards/{stem}.json"));
        }
        if let Some(group) = f
            .strip_prefix("prometheus/rules/")
            .and_then(|n| n.strip_suffix(".rules.yml"))
        {
            want.push(format!(
                "kubernetes/monitoring/prometheusrules/{group}.yaml"
            ));
            want.push("mixin/mixin.libsonnet".into());
        }
        if f == "alertmanager/alertmanager.yml" {
            want.push("kubernetes/monitoring/alertmanager-secret.yaml".into());
        }
    }
    want.sort();
    want.dedup();
    let got: Vec<String> = all.iter().filter(|f| packaged(f)).cloned().collect();
    assert_eq!(
        got, want,
        "packaged files changed other than the plain ones they wrap"
    );
    plain
}

/// Lines of `old` and `new` that differ all lie in the block of `- alert: name`.
fn only_alert_block_changed(old: &str, new: &str, name: &str) {
    let block = |t: &str| -> (Vec<String>, Vec<String>) {
        let mut inside = false;
        let (mut inb, mut outb) = (Vec::new(), Vec::new());
        for l in t.lines() {
            let trimmed = l.trim();
            if trimmed.starts_with("- alert: ")
                || trimmed.starts_with("- record: ")
                || trimmed.starts_with("# ")
            {
                inside = trimmed == format!("- alert: {name}");
            }
            if inside {
                inb.push(l.to_string())
            } else {
                outb.push(l.to_string())
            }
        }
        (inb, outb)
    };
    let (ib, ob) = block(old);
    let (ia, oa) = block(new);
    assert_eq!(ob, oa, "lines outside {name} changed");
    assert_ne!(ib, ia, "{name} did not change");
}

/// Panels (by title) of a dashboard whose JSON differs between two renderings.
fn changed_panels(old: &str, new: &str) -> Vec<String> {
    let a: serde_json::Value = serde_json::from_str(old).unwrap();
    let b: serde_json::Value = serde_json::from_str(new).unwrap();
    let (pa, pb) = (
        a["panels"].as_array().unwrap(),
        b["panels"].as_array().unwrap(),
    );
    assert_eq!(pa.len(), pb.len());
    let mut v: Vec<String> = pa
        .iter()
        .zip(pb)
        .filter(|(x, y)| x != y)
        .map(|(x, _)| x["title"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    let strip = |mut d: serde_json::Value| {
        d["panels"] = serde_json::Value::Null;
        d
    };
    assert_eq!(strip(a), strip(b), "more than panels changed");
    v
}

#[test]
fn one_threshold_number_changes_that_rule_its_tests_its_dashboard_line_and_runbook_only() {
    let base = fs::read_to_string(workspace().join("thresholds.yaml")).unwrap();
    let a = render(&base);
    assert_eq!(a, render(&base), "rendering is not deterministic");

    let needle = "value: {metric: chain_sync_progress_ratio}\n    op: \"<\"\n    threshold: 0.95";
    assert!(base.contains(needle));
    let b = render(&base.replace(needle, &needle.replace("0.95", "0.9")));
    assert_eq!(
        changed(&a, &b),
        vec![
            "docs/runbook.md".to_string(),
            "grafana/dashboards/fleet.json".to_string(),
            "prometheus/rules/fleet.rules.yml".to_string(),
            "prometheus/tests/alerts/NodeOutOfSync.test.yml".to_string()
        ]
    );
    only_alert_block_changed(
        &a["prometheus/rules/fleet.rules.yml"],
        &b["prometheus/rules/fleet.rules.yml"],
        "NodeOutOfSync",
    );
    // The dashboard: only the panel that draws the line, and the line moved.
    let (fa, fb) = (
        &a["grafana/dashboards/fleet.json"],
        &b["grafana/dashboards/fleet.json"],
    );
    assert_eq!(changed_panels(fa, fb), vec!["Sync progress".to_string()]);
    assert!(fb.contains("\"value\": 0.9\n") && !fb.contains("\"value\": 0.95\n"));
    // The runbook: only NodeOutOfSync's section.
    let section = |t: &str| -> Vec<String> {
        t.split("\n## ")
            .filter(|s| !s.starts_with("NodeOutOfSync\n"))
            .map(String::from)
            .collect()
    };
    assert_eq!(
        section(&a["docs/runbook.md"]),
        section(&b["docs/runbook.md"])
    );

    // A per-chain override: the rule, its test, the peers panels, the runbook.
    let needle = "dilithion: {threshold: 3}";
    assert!(base.contains(needle));
    let c = render(&base.replace(needle, "dilithion: {threshold: 4}"));
    assert_eq!(
        changed(&a, &c),
        vec![
            "docs/runbook.md".to_string(),
            "grafana/dashboards/fleet.json".to_string(),
            "grafana/dashboards/propagation.json".to_string(),
            "prometheus/rules/peers.rules.yml".to_string(),
            "prometheus/tests/alerts/LowPeerCount.test.yml".to_string()
        ]
    );
    only_alert_block_changed(
        &a["prometheus/rules/peers.rules.yml"],
        &c["prometheus/rules/peers.rules.yml"],
        "LowPeerCount",
    );
    assert!(c["prometheus/rules/peers.rules.yml"].contains("chain_peers{chain=\"dilithion\"} < 4"));
    assert_eq!(
        changed_panels(
            &a["grafana/dashboards/fleet.json"],
            &c["grafana/dashboards/fleet.json"]
        ),
        vec!["Connected peers".to_string()]
    );
}

#[test]
fn coverage_maps_every_row_of_criteria_md() {
    let criteria = workspace().join("../shared/criteria.md");
    let o = run(
        &workspace(),
        &["coverage", "--criteria", criteria.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(", 0 unmapped"), "{out}");
    assert!(!out.contains("UNMAPPED"));
    if let Ok(md) = fs::read_to_string(&criteria) {
        let ids = chainwatch_rulegen::coverage::criteria_ids(&md);
        assert!(ids.len() >= 40, "{ids:?}");
        for id in &ids {
            assert!(
                out.lines().any(|l| l.split_whitespace().next() == Some(id)),
                "{id} missing from:\n{out}"
            );
        }
        assert!(
            !out.contains("not in"),
            "thresholds.yaml's criteria list differs from criteria.md:\n{out}"
        );
    }
    // Without shared/, the list embedded in thresholds.yaml is used.
    let o = run(
        &workspace(),
        &["coverage", "--criteria", "/nonexistent/criteria.md"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("46 mapped, 0 unmapped"));
}

#[test]
fn coverage_fails_on_an_unmapped_row() {
    let dir = tempfile::tempdir().unwrap();
    let good = fs::read_to_string(testdata().join("good/thresholds.yaml")).unwrap();
    fs::write(
        dir.path().join("t.yaml"),
        good.replace("criteria: [X1, X2, X3]", "criteria: [X1, X2, X3, X4]"),
    )
    .unwrap();
    fs::write(
        dir.path().join("criteria.md"),
        "| # | c |\n|---|---|\n| X1 | a |\n| X2 | b |\n| X3 | c |\n| X4 | d |\n",
    )
    .unwrap();
    let o = run(
        dir.path(),
        &[
            "--thresholds",
            "t.yaml",
            "coverage",
            "--criteria",
            "criteria.md",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("X4   UNMAPPED"),
        "{}",
        text(&o)
    );
}

#[test]
fn check_lists_stale_missing_and_extra_files_and_write_repairs_them() {
    let td = testdata();
    let out = tempfile::tempdir().unwrap();
    let outs = out.path().to_str().unwrap();
    assert!(run(
        &td,
        &["--thresholds", "good/thresholds.yaml", "--out", outs]
    )
    .status
    .success());
    let o = run(
        &td,
        &[
            "--thresholds",
            "good/thresholds.yaml",
            "--out",
            outs,
            "--check",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));

    let root = out.path().join("prometheus");
    fs::write(root.join("rules/test.rules.yml"), "edited\n").unwrap();
    fs::remove_file(root.join("tests/alerts/Stalled.test.yml")).unwrap();
    fs::write(root.join("tests/alerts/Old.test.yml"), "old\n").unwrap();
    let o = run(
        &td,
        &[
            "--thresholds",
            "good/thresholds.yaml",
            "--out",
            outs,
            "--check",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("stale: prometheus/rules/test.rules.yml"), "{s}");
    assert!(
        s.contains("missing: prometheus/tests/alerts/Stalled.test.yml"),
        "{s}"
    );
    assert!(
        s.contains("extra: prometheus/tests/alerts/Old.test.yml"),
        "{s}"
    );

    let o = run(
        &td,
        &["--thresholds", "good/thresholds.yaml", "--out", outs],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("2 written"),
        "{}",
        text(&o)
    );
    assert!(!root.join("tests/alerts/Old.test.yml").exists());
    // Nothing changes on a second run: files are written only when their content changed.
    let before = snapshot(out.path());
    let o = run(
        &td,
        &["--thresholds", "good/thresholds.yaml", "--out", outs],
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("0 written"),
        "{}",
        text(&o)
    );
    assert_eq!(snapshot(out.path()), before);
    assert!(run(
        &td,
        &[
            "--thresholds",
            "good/thresholds.yaml",
            "--out",
            outs,
            "--check"
        ]
    )
    .status
    .success());
}

#[test]
fn fixture_output_passes_promtool() {
    let out = tempfile::tempdir().unwrap();
    assert!(run(
        &testdata(),
        &[
            "--thresholds",
            "good/thresholds.yaml",
            "--out",
            out.path().to_str().unwrap()
        ]
    )
    .status
    .success());
    let tests = all_tests(out.path());
    promtool_all(out.path(), tests);
}

#[test]
fn output_has_no_timestamps_and_names_its_source() {
    let base = fs::read_to_string(workspace().join("thresholds.yaml")).unwrap();
    let files = render(&base);
    for dir in [
        "prometheus/",
        "alertmanager/",
        "grafana/",
        "docs/runbook.md",
    ] {
        assert!(
            files.keys().any(|k| k.starts_with(dir)),
            "nothing under {dir}"
        );
    }
    const MARK: &str = "Generated by chainwatch-rulegen from thresholds.yaml: do not edit.";
    for (path, content) in files {
        let first = content.lines().next().unwrap_or_default();
        let ok = if path.ends_with(".json") {
            // JSON has no comments: Grafana shows the dashboard's description.
            content.contains(&format!("\"description\": \"{MARK}"))
        } else if path.ends_with(".md") {
            first == format!("<!-- {MARK} -->")
        } else if path.ends_with(".tmpl") {
            // Go templates: a comment, which renders as nothing.
            first == format!("{{{{/* {MARK} */}}}}")
        } else if path.ends_with(".libsonnet") {
            first == format!("// {MARK}")
        } else {
            first == format!("# {MARK}")
        };
        assert!(ok, "{path} does not say it is generated");
        assert!(
            !content.contains("2026") && !content.contains("2025"),
            "{path} has a date"
        );
    }
}

/// The promtool tests written by hand, not generated from the model (tests/testdata/*.test.yml),
/// pass against the committed rules: from seed 004's words, a region whose hosts die, 3 of 7
/// nodes down, 2 of 3 of a region, a node removed from service discovery, a sidecar down with its
/// node healthy, a long outage; and a regression found end to end (no-progress alerts fired
/// right after a restart, on a window holding two equal samples).
#[test]
fn hand_written_promtool_tests_pass_against_the_committed_rules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = fs::read_dir(root.join("tests/testdata"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".test.yml"))
        .map(|n| format!("tests/testdata/{n}"))
        .collect();
    files.sort();
    for want in [
        "seed004_region_down",
        "seed004_high_node_down_rate",
        "seed004_region_degraded",
        "seed004_removed_from_discovery",
        "seed004_sidecar_down",
        "seed004_priorities",
        "no_progress_startup",
    ] {
        assert!(
            files.iter().any(|f| f.contains(want)),
            "{want}.test.yml missing: {files:?}"
        );
    }
    let o = Command::new(promtool())
        .current_dir(root)
        .arg("test")
        .arg("rules")
        .args(&files)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

/// Pages link the runbook absolutely: `runbook_base_url` is refused relative (bad/
/// relative_runbook_url), or with an anchor of its own, unless a setup says nobody is paged by
/// it; every alert's `runbook_url` is the base, `#`, its anchor.
#[test]
fn runbook_links_are_absolute_unless_allowed() {
    let base = fs::read_to_string(workspace().join("thresholds.yaml")).unwrap();
    let url = "https://github.com/chainwatch/chainwatch/blob/main/docs/runbook.md";
    assert!(base.contains(&format!("runbook_base_url: {url}\n")));
    let with = |v: &str| base.replace(&format!("runbook_base_url: {url}\n"), v);
    let err = |text: &str| {
        chainwatch_rulegen::generate_str(Path::new("thresholds.yaml"), text)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    for (v, want) in [
        ("runbook_base_url: docs/runbook.md\n", "is relative"),
        (
            "runbook_base_url: https://wiki.example.com/rb#top\n",
            "no `#",
        ),
        (
            "runbook_base_url: ftp://wiki.example.com/rb\n",
            "an http or https URL",
        ),
    ] {
        let e = err(&with(v));
        assert!(
            e.contains("defaults.runbook_base_url") && e.contains(want),
            "{v}: {e}"
        );
    }
    let relative = render(&with(
        "runbook_base_url: docs/runbook.md\n  allow_relative_urls: true\n",
    ));
    let rules = &relative["prometheus/rules/fleet.rules.yml"];
    assert!(
        rules.contains("runbook_url: \"docs/runbook.md#nodedown\""),
        "{rules}"
    );
    let absolute = render(&base);
    assert!(absolute["prometheus/rules/fleet.rules.yml"]
        .contains(&format!("runbook_url: \"{url}#nodedown\"")));
}

/// Issue 15 item 3: every link to the runbook comes from the one `runbook_base_url`: the
/// alerts' `runbook_url`, the dashboards' panel links, the notifications (they use the
/// annotation), the gates' runbook sections and the canary templates' annotation. Moved to
/// another base, no generated file may still hold the old one or a relative link.
#[test]
fn every_runbook_link_follows_the_one_base_url() {
    let base = fs::read_to_string(workspace().join("thresholds.yaml")).unwrap();
    let old = "https://github.com/chainwatch/chainwatch/blob/main/docs/runbook.md";
    let new = "https://wiki.example.com/ops/chainwatch-runbook";
    let files = render(&base.replace(
        &format!("runbook_base_url: {old}\n"),
        &format!("runbook_base_url: {new}\n"),
    ));
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (path, text) in &files {
        assert!(!text.contains(old), "{path} still links {old}");
        assert!(
            !text.contains("\"docs/runbook.md#") && !text.contains(" docs/runbook.md#"),
            "{path}: a relative runbook link"
        );
        let n = text.matches(&format!("{new}#")).count();
        let kind = path.split('/').next().unwrap_or("");
        *seen.entry(kind).or_default() += n;
        if path.starts_with("prometheus/rules/") {
            assert_eq!(
                n,
                text.matches("runbook_url:").count(),
                "{path}: every runbook_url from the base"
            );
        }
        if path.starts_with("canary/") {
            assert!(n >= 1, "{path}: no runbook annotation from the base");
        }
    }
    for kind in ["prometheus", "grafana", "canary", "kubernetes", "mixin"] {
        assert!(seen.get(kind).copied().unwrap_or(0) > 0, "{kind}: {seen:?}");
    }
}
