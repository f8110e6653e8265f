//! A panel's links: for each alert it draws, and each alert of the criteria it serves, the
//! alert's runbook section (its `runbook_url`, absolute once `defaults` names an absolute
//! runbook) and the rule in Grafana's alert list; then the other dashboards with a panel on one
//! of its criteria, keeping time range and variables.

use serde_json::{json, Value};

use crate::conventions;
use crate::model::{DashboardM, Model, PanelM};

/// The alerts of a panel: its threshold lines and alert queries (in panel order), then the
/// alerts of its criteria (in thresholds.yaml order).
pub fn alerts_on<'a>(m: &'a Model, p: &'a PanelM) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    let names = p
        .lines
        .iter()
        .map(|l| l.alert.as_str())
        .chain(
            p.queries
                .iter()
                .filter_map(|q| q.origin.strip_prefix("alert ")),
        )
        .chain(
            m.alerts
                .iter()
                .filter(|a| a.criteria.iter().any(|c| p.criteria.contains(c)))
                .map(|a| a.name.as_str()),
        );
    for n in names {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

pub fn panel_links(m: &Model, d: &DashboardM, p: &PanelM) -> Vec<Value> {
    // The panel's own (a gate's runbook section), then those of the alerts it draws.
    let mut links: Vec<Value> = p
        .links
        .iter()
        .map(|(title, url)| link(title, url, "", true))
        .collect();
    for name in alerts_on(m, p) {
        let Some(a) = m.alerts.iter().find(|a| a.name == name) else {
            continue;
        };
        links.push(link(
            &format!("Runbook: {name}"),
            &a.runbook_url,
            "What to check first, and who responds how fast",
            true,
        ));
        links.push(link(
            &format!("Alert rule: {name}"),
            &conventions::alert_rule_link(name),
            "The rule's state and firing instances (Grafana's alert list)",
            false,
        ));
    }
    for other in &m.dashboards {
        if other.id == d.id {
            continue;
        }
        let shared = other
            .panels
            .iter()
            .any(|q| q.criteria.iter().any(|c| p.criteria.contains(c)));
        if shared {
            links.push(link(
                &format!("Dashboard: {}", other.title),
                &conventions::dashboard_link(&other.uid),
                "Another view of the same criteria, same time range and filters",
                false,
            ));
        }
    }
    links
}

/// A link as Grafana's schema has it (`DashboardLink`, type `link`).
fn link(title: &str, url: &str, tooltip: &str, new_tab: bool) -> Value {
    json!({
        "title": title,
        "type": "link",
        "url": url,
        "tooltip": tooltip,
        "targetBlank": new_tab,
        "icon": "external link",
        "asDropdown": false,
        "includeVars": false,
        "keepTime": false,
        "tags": []
    })
}
