//! Alertmanager: `alertmanager/alertmanager.yml` (receivers with secrets from files, the route
//! tree, inhibitions), the notification templates its receivers share
//! (`alertmanager/templates/chainwatch.tmpl`), and the cases that test it: `routes.tsv` (`routes`) for
//! `amtool config routes test`, `inhibitions.yml` (`inhibitions`) for a live Alertmanager.

mod inhibitions;
mod routes;

use serde::Serialize;

use crate::conventions::{
    ALERTMANAGER_CONFIG_PATH, ALERTMANAGER_INHIBITIONS_PATH, ALERTMANAGER_NOTIFICATIONS_PATH,
    ALERTMANAGER_ROUTES_PATH, ALERTMANAGER_TEMPLATES_GLOB, LEVELS, PRIORITY_LABEL, SEVERITY_LABEL,
};
use crate::model::{Alerting, AmMatcher, Model, PriorityRoute, Timings};
use crate::write::templates::{TemplateError, Templates, ALERTMANAGER_TEMPLATE, NOTIFICATIONS};
use crate::write::text::one_line;
use crate::write::Files;

#[derive(Serialize)]
struct RouteCtx {
    comment: String,
    matchers: Vec<String>,
    receiver: String,
    #[serde(rename = "continue")]
    continue_: bool,
    timings: Option<TimingsCtx>,
    routes: Vec<RouteCtx>,
}

#[derive(Serialize)]
struct TimingsCtx {
    group_wait: String,
    group_interval: String,
    repeat_interval: String,
}

fn tctx(t: &Timings) -> TimingsCtx {
    TimingsCtx {
        group_wait: t.group_wait.to_string(),
        group_interval: t.group_interval.to_string(),
        repeat_interval: t.repeat_interval.to_string(),
    }
}

/// Routes that deliver to every receiver of `rs` (siblings with `continue`, the last without).
fn fanout(rs: &[String], comment: &str) -> Vec<RouteCtx> {
    if rs.len() < 2 {
        return Vec::new();
    }
    rs.iter()
        .enumerate()
        .map(|(i, r)| RouteCtx {
            comment: if i == 0 {
                comment.to_string()
            } else {
                String::new()
            },
            matchers: Vec::new(),
            receiver: r.clone(),
            continue_: i + 1 < rs.len(),
            timings: None,
            routes: Vec::new(),
        })
        .collect()
}

#[derive(Serialize)]
struct ReceiverCtx {
    name: String,
    kind: String,
    channel: Option<String>,
    secret_file: Option<String>,
    url: Option<String>,
    send_resolved: bool,
}

#[derive(Serialize)]
struct InhibitCtx {
    comment: String,
    source: Vec<String>,
    target: Vec<String>,
    equal: Vec<String>,
}

// The receivers' fields call the shared notification templates (templates/alertmanager/
// chainwatch.tmpl), so every receiver says the same things the same way.
const SLACK_TITLE: &str = r#"{{ template "chainwatch.title" . }}"#;
const SLACK_TEXT: &str = r#"{{ template "chainwatch.slack.text" . }}"#;
const RUNBOOK_LINK: &str = r#"{{ .CommonAnnotations.runbook_url }}"#;
const PD_DESCRIPTION: &str = r#"{{ template "chainwatch.pagerduty.summary" . }}"#;
const PD_ALERTS: &str = r#"{{ template "chainwatch.pagerduty.alerts" . }}"#;
const PD_LINK_TEXT: &str = r#"Runbook: {{ .CommonLabels.alertname }}"#;

/// PagerDuty's severity: from the priority of chainwatch's alerts, else from the `severity` of
/// another mixin's (both come down to critical, warning or info; PagerDuty has the same three).
fn pd_severity(al: &Alerting) -> String {
    let mut s = String::new();
    let mut kw = "if";
    for p in &al.priorities {
        s.push_str(&format!(
            "{{{{ {kw} eq .CommonLabels.{} \"{}\" }}}}{}",
            PRIORITY_LABEL, p.name, p.level
        ));
        kw = "else if";
    }
    for level in LEVELS {
        s.push_str(&format!(
            "{{{{ {kw} eq .CommonLabels.{SEVERITY_LABEL} \"{level}\" }}}}{level}"
        ));
        kw = "else if";
    }
    s.push_str("{{ else }}error{{ end }}");
    s
}

pub fn render(m: &Model, al: &Alerting, t: &Templates) -> Result<Files, TemplateError> {
    let routes = routes(m, al);
    let receivers: Vec<ReceiverCtx> = al
        .receivers
        .values()
        .map(|r| ReceiverCtx {
            name: r.name.clone(),
            kind: r.kind.clone(),
            channel: r.channel.clone(),
            secret_file: r.secret_file.clone(),
            url: r.url.clone(),
            send_resolved: r.send_resolved,
        })
        .collect();
    let inhibits: Vec<InhibitCtx> = al
        .inhibitions
        .iter()
        .map(|i| InhibitCtx {
            comment: format!("{}: {}", i.name, one_line(&i.why)),
            source: i.source.iter().map(AmMatcher::render).collect(),
            target: i.target.iter().map(AmMatcher::render).collect(),
            equal: i.equal.clone(),
        })
        .collect();
    let mut c = tera::Context::new();
    c.insert(
        "resolve_timeout",
        &al.resolve_timeout.map(|d| d.to_string()),
    );
    c.insert("default_receiver", &al.default_receiver);
    c.insert("group_by", &al.group_by);
    c.insert("root", &tctx(&al.root));
    c.insert("routes", &routes);
    c.insert("receivers", &receivers);
    c.insert("inhibits", &inhibits);
    c.insert("templates", ALERTMANAGER_TEMPLATES_GLOB);
    c.insert("slack_title", SLACK_TITLE);
    c.insert("slack_text", SLACK_TEXT);
    c.insert("runbook_link", RUNBOOK_LINK);
    c.insert("pd_description", PD_DESCRIPTION);
    c.insert("pd_alerts", PD_ALERTS);
    c.insert("pd_link_text", PD_LINK_TEXT);
    c.insert("pd_severity", &pd_severity(al));
    let mut files = Files::new();
    files.insert(
        ALERTMANAGER_CONFIG_PATH.into(),
        t.render(ALERTMANAGER_TEMPLATE, &c)?,
    );
    files.insert(
        ALERTMANAGER_NOTIFICATIONS_PATH.into(),
        NOTIFICATIONS.to_string(),
    );
    files.insert(ALERTMANAGER_ROUTES_PATH.into(), routes::routes_tsv(m, al));
    files.insert(
        ALERTMANAGER_INHIBITIONS_PATH.into(),
        inhibitions::inhibition_cases(m, al),
    );
    Ok(files)
}

/// The route tree under the root: the heartbeat alone, then each scope's receivers (continuing
/// to the priorities), then each priority's receivers, then other mixins' alerts by level.
fn routes(m: &Model, al: &Alerting) -> Vec<RouteCtx> {
    let mut routes = Vec::new();
    if let Some(hb) = &al.heartbeat {
        routes.push(RouteCtx {
            comment: "Dead man's switch: the always-firing heartbeat goes to its receiver alone, often; an external service raises PrometheusDown when it stops.".into(),
            matchers: hb
                .labels
                .iter()
                .map(|(k, v)| AmMatcher { name: k.clone(), op: "=".into(), value: v.clone() }.render())
                .collect(),
            receiver: hb.receiver.clone(),
            continue_: false,
            timings: Some(tctx(&hb.timings)),
            routes: Vec::new(),
        });
    }
    for (scope, rs) in &al.scope_receivers {
        let Some(first) = rs.first() else { continue };
        let children = keyed(al)
            .into_iter()
            .map(|(matchers, p)| RouteCtx {
                comment: String::new(),
                matchers,
                receiver: first.clone(),
                continue_: false,
                timings: Some(tctx(&p.timings)),
                routes: fanout(rs, ""),
            })
            .collect();
        routes.push(RouteCtx {
            comment: format!(
                "Alerts about a whole {scope} also go to {} (with their priority's timings), then on to their priority's receivers.",
                rs.join(", ")
            ),
            matchers: vec![AmMatcher { name: "scope".into(), op: "=".into(), value: scope.clone() }.render()],
            receiver: first.clone(),
            continue_: true,
            timings: None,
            routes: children,
        });
    }
    for (matchers, p) in keyed(al) {
        let sev = &m.severities[&p.name];
        let comment = if matchers[0].starts_with(PRIORITY_LABEL) {
            format!(
                "{} ({}, respond within {}): {}",
                p.name,
                p.level,
                sev.response_time,
                p.receivers.join(" + ")
            )
        } else {
            format!(
                "Alerts of other mixins (kube-prometheus, node-mixin) with severity {} and no priority: as {}, {}",
                p.level,
                p.name,
                p.receivers.join(" + ")
            )
        };
        routes.push(RouteCtx {
            comment,
            matchers,
            receiver: p
                .receivers
                .first()
                .cloned()
                .unwrap_or_else(|| al.default_receiver.clone()),
            continue_: false,
            timings: Some(tctx(&p.timings)),
            routes: fanout(&p.receivers, ""),
        });
    }
    routes
}

/// The matchers of each priority's route (`priority="P0"`), then those of other mixins' alerts
/// of each level (`severity="critical"`, `priority=""`), with the priority whose route they take.
fn keyed(al: &Alerting) -> Vec<(Vec<String>, &PriorityRoute)> {
    let mut out: Vec<(Vec<String>, &PriorityRoute)> = al
        .priorities
        .iter()
        .map(|p| {
            let m = AmMatcher {
                name: PRIORITY_LABEL.into(),
                op: "=".into(),
                value: p.name.clone(),
            };
            (vec![m.render()], p)
        })
        .collect();
    for level in LEVELS {
        if let Some(p) = al.foreign(level) {
            let sev = AmMatcher {
                name: SEVERITY_LABEL.into(),
                op: "=".into(),
                value: level.to_string(),
            };
            let none = AmMatcher {
                name: PRIORITY_LABEL.into(),
                op: "=".into(),
                value: String::new(),
            };
            out.push((vec![sev.render(), none.render()], p));
        }
    }
    out
}
