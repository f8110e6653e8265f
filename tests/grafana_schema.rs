//! The generated dashboards against the schema Grafana publishes: `@grafana/schema` (the
//! TypeScript types Grafana generates from its CUE kinds, pinned in tests/schemas/package.json).
//! Each dashboard must satisfy `Dashboard` (unknown fields and wrong types are errors, required
//! fields required), each panel's `options` and `fieldConfig.defaults.custom` the `Options` and
//! `FieldConfig` of its panel plugin, and `schemaVersion` must be the one that package's default
//! dashboard carries (what Grafana 12 writes). A dashboard with one mistake each must fail, so
//! the check can fail. Then the panel links, as an operator of seed 004 would follow them.

use serde_json::{json, Value};

use chainwatch_tests::schemas::{node_modules, path, ts, typecheck};

/// Panel type → its directory and type-name prefix in @grafana/schema's composable panels.
const PANEL_TYPES: &[(&str, &str, &str)] = &[
    ("timeseries", "timeseries", "TimeSeries"),
    ("stat", "stat", "Stat"),
    ("gauge", "gauge", "Gauge"),
    ("bargauge", "bargauge", "BarGauge"),
    ("table", "table", "Table"),
    ("state-timeline", "statetimeline", "StateTimeline"),
];

fn dashboards() -> Vec<(String, Value)> {
    let dir = path("grafana/dashboards");
    let mut v: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let d = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (p.file_stem().unwrap().to_string_lossy().to_string(), d)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!v.is_empty());
    v
}

fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

/// A TypeScript module checking one dashboard and each of its panels.
fn module(d: &Value) -> String {
    let mut s = String::from(
        "import type { Dashboard } from '@grafana/schema';\n\
         import type { Json, Stored } from './schema';\n",
    );
    for (_, dir, name) in PANEL_TYPES {
        s.push_str(&format!(
            "import type * as {dir} from '@grafana/schema/dist/esm/raw/composable/{dir}/panelcfg/x/{name}PanelCfg_types.gen';\n"
        ));
    }
    s.push_str(&format!(
        "export const dashboard = {} satisfies Json<Dashboard>;\n",
        ts(d)
    ));
    for p in panels(d) {
        let kind = p["type"].as_str().unwrap();
        if kind == "row" {
            continue;
        }
        let (_, dir, _) = PANEL_TYPES
            .iter()
            .find(|(t, _, _)| *t == kind)
            .unwrap_or_else(|| panic!("no @grafana/schema types listed for panel type {kind}"));
        let id = p["id"].as_u64().unwrap();
        s.push_str(&format!(
            "export const options{id} = {} satisfies Stored<{dir}.Options>;\n",
            ts(&p["options"])
        ));
        if let Some(c) = p["fieldConfig"]["defaults"].get("custom") {
            s.push_str(&format!(
                "export const custom{id} = {} satisfies Stored<{dir}.FieldConfig>;\n",
                ts(c)
            ));
        }
    }
    s
}

/// The `schemaVersion` of @grafana/schema's default dashboard.
fn published_schema_version() -> u64 {
    let f = node_modules().join("@grafana/schema/dist/esm/raw/dashboard/x/types.gen.mjs");
    let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    let at = text
        .find("schemaVersion:")
        .expect("defaultDashboard's schemaVersion");
    text[at + "schemaVersion:".len()..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn dashboards_satisfy_the_schema_grafana_publishes() {
    let ds = dashboards();
    let version = published_schema_version();
    assert!(version >= 41, "@grafana/schema's schemaVersion {version}");
    let mut files = Vec::new();
    for (name, d) in &ds {
        assert_eq!(d["schemaVersion"], json!(version), "{name}");
        files.push((format!("{}.ts", name.replace('-', "_")), module(d)));
    }
    // One mistake each, in a copy of a generated dashboard: each must be refused.
    let (_, base) = ds.iter().find(|(n, _)| n == "fleet").unwrap();
    let first_of = |kind: &str| {
        panels(base)
            .iter()
            .position(|p| p["type"] == kind)
            .unwrap_or_else(|| panic!("fleet has no {kind} panel"))
    };
    let mut mistakes: Vec<(&str, Value, &str)> = Vec::new();
    let mut m = base.clone();
    m["panels"][1]["gridPos"]["w"] = json!("8");
    mistakes.push(("gridpos_string", m, "not assignable to type 'number'"));
    let mut m = base.clone();
    m["panels"][1]["datasourse"] = m["panels"][1]["datasource"].clone();
    mistakes.push(("panel_unknown_field", m, "'\"datasourse\"' does not exist"));
    let mut m = base.clone();
    m.as_object_mut().unwrap().remove("schemaVersion");
    mistakes.push(("no_schema_version", m, "schemaVersion"));
    let mut m = base.clone();
    m["panels"][first_of("timeseries")]["fieldConfig"]["defaults"]["custom"]["drawStyle"] =
        json!("curve");
    mistakes.push(("draw_style", m, "'\"curve\"' is not assignable"));
    let mut m = base.clone();
    m["panels"][first_of("table")]["options"]["footer"] = json!({"show": false});
    mistakes.push(("table_footer_option", m, "'\"footer\"' does not exist"));
    let mut m = base.clone();
    m["panels"][1]["links"] = json!([{"title": "x", "url": "https://example.com"}]);
    mistakes.push(("link_without_type", m, "missing the following properties"));
    for (n, d, _) in &mistakes {
        files.push((format!("bad_{n}.ts"), module(d)));
    }
    let diags = typecheck(&files);
    for (name, _) in &ds {
        let f = format!("{}.ts", name.replace('-', "_"));
        assert_eq!(
            diags[&f],
            Vec::<String>::new(),
            "{name}.json against @grafana/schema"
        );
    }
    for (n, _, expect) in &mistakes {
        let d = diags[&format!("bad_{n}.ts")].join("\n");
        assert!(d.contains(expect), "{n}: expected {expect:?} in\n{d}");
    }
    assert!(!diags.contains_key("(tsc)"), "{:?}", diags.get("(tsc)"));
}

/// Written from seed 004: NodeDown (N1, unresponsive > 2m) is what the fleet dashboard's panels of
/// N1 are about; from each, one click reaches its runbook section and the rule in Grafana's
/// alert list.
#[test]
fn a_panel_links_to_the_runbook_and_the_rule_of_each_alert_it_draws() {
    let ds = dashboards();
    // Each alert's runbook_url annotation, as Prometheus sends it to Alertmanager: a panel's
    // runbook link is the same URL (absolute once thresholds.yaml's runbook base is).
    let mut runbook_urls = std::collections::BTreeMap::new();
    for p in chainwatch_tests::stack::rule_files(&chainwatch_tests::stack::root()) {
        let doc: Value = serde_norway::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        for g in doc["groups"].as_array().unwrap() {
            for r in g["rules"].as_array().unwrap() {
                if let Some(a) = r["alert"].as_str() {
                    runbook_urls.insert(a.to_string(), r["annotations"]["runbook_url"].clone());
                }
            }
        }
    }
    let mut found = false;
    for (name, d) in &ds {
        for p in panels(d) {
            let links = p["links"].as_array().cloned().unwrap_or_default();
            for l in &links {
                // Every link is a complete DashboardLink of type `link` with a URL.
                assert_eq!(l["type"], "link", "{name}/{}", p["title"]);
                assert!(!l["url"].as_str().unwrap().is_empty());
                if let Some(alert) = l["title"].as_str().unwrap().strip_prefix("Runbook: ") {
                    assert_eq!(l["url"], runbook_urls[alert], "{name}/{}", p["title"]);
                }
            }
            let desc = p["description"].as_str().unwrap_or("");
            if !desc.contains("Criteria N1,") && !desc.contains("Criteria N1.") {
                continue;
            }
            found = true;
            let url = |prefix: &str| {
                links
                    .iter()
                    .find(|l| l["title"] == format!("{prefix}NodeDown"))
                    .and_then(|l| l["url"].as_str())
                    .unwrap_or_else(|| panic!("{name}/{}: no {prefix}NodeDown link", p["title"]))
                    .to_string()
            };
            let runbook = url("Runbook: ");
            assert!(runbook.ends_with("#nodedown"), "{runbook}");
            let doc = std::fs::read_to_string(path("docs/runbook.md")).unwrap();
            assert!(
                doc.contains("\n## NodeDown\n"),
                "the runbook has the section"
            );
            assert_eq!(url("Alert rule: "), "/alerting/list?search=rule%3ANodeDown");
        }
    }
    assert!(found, "no panel draws NodeDown");
    // Panels of one criterion on two dashboards link to each other, keeping time and filters.
    let any_related = ds.iter().any(|(_, d)| {
        panels(d).iter().any(|p| {
            p["links"].as_array().into_iter().flatten().any(|l| {
                l["url"].as_str().is_some_and(|u| {
                    u.starts_with("/d/chainwatch-") && u.contains("${__url_time_range}")
                })
            })
        })
    });
    assert!(any_related, "no related-dashboard link");
}
