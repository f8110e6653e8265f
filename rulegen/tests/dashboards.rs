//! The generated Grafana dashboards and provisioning, read back as Grafana would: every panel
//! query parses (Grafana variables replaced by valid stand-ins) and names only catalog metrics or
//! generated recording rules; uids, panel ids, layout, variables and datasources are sound; the
//! panels coverage names exist; thresholds are drawn.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_chainwatch-rulegen");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn generate() -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .current_dir(workspace())
        .args(["--out", out.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

fn dashboards(root: &Path) -> Vec<(String, Value)> {
    let mut v: Vec<(String, Value)> = fs::read_dir(root.join("grafana/dashboards"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let j: Value = serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap();
            (p.file_name().unwrap().to_string_lossy().to_string(), j)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn recording_rules(root: &Path) -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    let global = fs::read_dir(root.join("prometheus/rules/global"))
        .into_iter()
        .flatten();
    for e in fs::read_dir(root.join("prometheus/rules"))
        .unwrap()
        .chain(global)
    {
        let p = e.unwrap().path();
        if p.is_dir() {
            continue;
        }
        let t = fs::read_to_string(p).unwrap();
        s.extend(
            t.lines()
                .filter_map(|l| l.trim().strip_prefix("- record: "))
                .map(String::from),
        );
    }
    s
}

/// Grafana's variables replaced by values valid where each may stand.
fn substitute(expr: &str) -> String {
    let mut out = expr.to_string();
    for (k, v) in [
        ("$__rate_interval", "1m"),
        ("${__rate_interval}", "1m"),
        ("$__interval", "1m"),
        ("$__range", "1h"),
    ] {
        out = out.replace(k, v);
    }
    for var in ["chain", "network", "region", "node"] {
        out = out
            .replace(&format!("${{{var}}}"), "x")
            .replace(&format!("${var}"), "x");
    }
    assert!(!out.contains('$'), "unknown variable left in {expr}");
    out
}

fn panels(d: &Value) -> Vec<&Value> {
    d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] != "row")
        .collect()
}

#[test]
fn every_panel_query_parses_and_names_only_catalog_metrics_or_recording_rules() {
    let out = generate();
    let records = recording_rules(out.path());
    // The gates (one canary template each): a gate's panel may select the one chain it is about.
    let gates: Vec<String> = std::fs::read_dir(out.path().join("canary/argo-rollouts"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(!gates.is_empty());
    let mut queries = 0;
    let mut rate_interval = 0;
    for (file, d) in dashboards(out.path()) {
        for p in panels(&d) {
            let title = p["title"].as_str().unwrap();
            let targets = p["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{file}: {title}: no query");
            for t in targets {
                let expr = t["expr"].as_str().unwrap();
                queries += 1;
                if expr.contains("$__rate_interval") {
                    rate_interval += 1;
                }
                let e = promql_parser::parser::parse(&substitute(expr)).unwrap_or_else(|err| {
                    panic!("{file}: {title}: `{expr}` does not parse: {err}")
                });
                let sels = chainwatch_rulegen::promql::selectors(&e);
                assert!(
                    !sels.is_empty(),
                    "{file}: {title}: `{expr}` selects nothing"
                );
                for vs in sels {
                    let name = vs.name.clone().expect("named selector");
                    assert!(
                        chainwatch_catalog::resolve_series(&name).is_some() || records.contains(&name),
                        "{file}: {title}: `{name}` is neither a catalog metric nor a recording rule"
                    );
                    // The dashboard's chain filter reaches every selector (all panels filter by it),
                    // but for a gate about one chain, whose conditions select that chain.
                    assert!(
                        vs.matchers.matchers.iter().any(|m| m.name == "chain"
                            && (m.value == "x"
                                || gates.iter().any(|g| title.ends_with(&format!("({g})"))))),
                        "{file}: {title}: `{name}` in `{expr}` is not filtered by $chain"
                    );
                }
                assert_eq!(t["datasource"]["uid"], "${datasource}", "{file}: {title}");
            }
        }
    }
    assert!(queries > 80, "{queries}");
    assert!(
        rate_interval > 10,
        "{rate_interval} queries use $__rate_interval"
    );
}

#[test]
fn dashboards_have_stable_unique_uids_variables_and_a_sound_layout() {
    let out = generate();
    let mut uids = BTreeSet::new();
    let ds = dashboards(out.path());
    let files: BTreeSet<&str> = ds.iter().map(|(f, _)| f.as_str()).collect();
    for f in [
        "fleet.json",
        "propagation.json",
        "equilibrium-gossip.json",
        "consensus-migration.json",
        "validators.json",
        "sidecar.json",
        "rollout.json",
    ] {
        assert!(files.contains(f), "missing dashboard {f}");
    }
    for (file, d) in &ds {
        let uid = d["uid"].as_str().unwrap();
        assert!(
            uid.len() <= 40 && uid.starts_with("chainwatch-"),
            "{file}: {uid}"
        );
        assert!(uids.insert(uid.to_string()), "duplicate uid {uid}");
        assert!(
            d.get("id").is_none(),
            "{file}: provisioned dashboards carry no id"
        );
        assert!(
            d["description"]
                .as_str()
                .unwrap()
                .starts_with("Generated by chainwatch-rulegen from thresholds.yaml: do not edit."),
            "{file}"
        );
        let vars: Vec<&str> = d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            vars,
            ["datasource", "chain", "network", "region", "node"],
            "{file}"
        );
        let mut ids = BTreeSet::new();
        let mut cells: BTreeSet<(u64, u64)> = BTreeSet::new();
        for p in d["panels"].as_array().unwrap() {
            assert!(
                ids.insert(p["id"].as_u64().unwrap()),
                "{file}: duplicate panel id"
            );
            let g = &p["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_u64().unwrap(),
                g["y"].as_u64().unwrap(),
                g["w"].as_u64().unwrap(),
                g["h"].as_u64().unwrap(),
            );
            assert!(x + w <= 24, "{file}: {} overflows the grid", p["title"]);
            for cx in x..x + w {
                for cy in y..y + h {
                    assert!(
                        cells.insert((cx, cy)),
                        "{file}: {} overlaps another panel",
                        p["title"]
                    );
                }
            }
        }
    }
}

#[test]
fn alert_thresholds_are_drawn_on_the_panels_that_plot_them() {
    let out = generate();
    let ds = dashboards(out.path());
    let fleet = &ds.iter().find(|(f, _)| f == "fleet.json").unwrap().1;
    let panel = |d: &Value, title: &str| -> Value {
        panels(d)
            .into_iter()
            .find(|p| p["title"] == title)
            .unwrap_or_else(|| panic!("no panel {title}"))
            .clone()
    };
    let steps = |p: &Value| -> Vec<(Option<f64>, String)> {
        p["fieldConfig"]["defaults"]["thresholds"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["value"].as_f64(),
                    s["color"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    // NodeOutOfSync: sync progress < 0.95 is a warning.
    let p = panel(fleet, "Sync progress");
    assert_eq!(
        steps(&p),
        vec![
            (None, "orange".to_string()),
            (Some(0.95), "green".to_string())
        ]
    );
    assert_eq!(
        p["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"],
        "line"
    );
    // LowPeerCount (< 2, dilithion < 3) and NoPeers (== 0, critical) on one panel.
    let p = panel(fleet, "Connected peers");
    let values: Vec<Option<f64>> = steps(&p).into_iter().map(|s| s.0).collect();
    assert_eq!(
        values,
        vec![None, Some(0.0), Some(1.0), Some(2.0), Some(3.0)]
    );
    assert_eq!(steps(&p)[1].1, "red");
    assert_eq!(steps(&p)[4].1, "green");
    assert!(p["description"]
        .as_str()
        .unwrap()
        .contains("LowPeerCount (P2)"));
    // Panels drawing an alert's measure carry its expression.
    let p = panel(fleet, "Proof generation time, p95");
    assert!(p["targets"][0]["expr"]
        .as_str()
        .unwrap()
        .starts_with("histogram_quantile(0.95"));
    assert_eq!(steps(&p)[1], (Some(30.0), "orange".to_string()));
}

#[test]
fn every_panel_coverage_names_exists_and_provisioning_points_at_the_dashboards() {
    let out = generate();
    let o = Command::new(BIN)
        .current_dir(workspace())
        .args(["coverage", "--criteria", "/nonexistent/criteria.md"])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&o.stdout).to_string();
    let all: String = dashboards(out.path())
        .iter()
        .map(|(_, d)| d.to_string())
        .collect();
    let mut named = 0;
    for part in report.split("panel ").skip(1) {
        let id: String = part
            .chars()
            .take_while(|c| !matches!(c, ';' | '\n'))
            .collect();
        named += 1;
        assert!(
            all.contains(&format!("(chainwatch panel {id})")),
            "coverage names panel {id} that no dashboard has"
        );
    }
    assert!(named >= 30, "{named} panels in coverage");
    for id in [
        "equilibrium-gossip/cid-propagation-time",
        "equilibrium-gossip/network-health",
        "consensus-migration/mode",
        "propagation/targets",
        "validators/leaderboard",
        "rollout/gates",
    ] {
        assert!(report.contains(&format!("panel {id}")), "{id}");
    }
    let ds: serde_norway::Value = serde_norway::from_str(
        &fs::read_to_string(
            out.path()
                .join("grafana/provisioning/datasources/prometheus.yml"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(ds["datasources"][0]["type"], "prometheus");
    assert_eq!(ds["datasources"][0]["jsonData"]["timeInterval"], "15s");
    let pv: serde_norway::Value = serde_norway::from_str(
        &fs::read_to_string(
            out.path()
                .join("grafana/provisioning/dashboards/chainwatch.yml"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(pv["providers"][0]["type"], "file");
    assert!(pv["providers"][0]["options"]["path"]
        .as_str()
        .unwrap()
        .starts_with('/'));
}
