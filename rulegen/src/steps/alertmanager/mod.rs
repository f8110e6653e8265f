//! Alertmanager: `alertmanager/alertmanager.yml` (receivers with secrets from files, the route
//! tree, inhibitions) and the cases that test it: `routes.tsv` (`routes`) for
//! `amtool config routes test`, `inhibitions.yml` (`inhibitions`) for a live Alertmanager.

mod inhibitions;
mod routes;

use serde::Serialize;

use crate::conventions::{
    ALERTMANAGER_CONFIG_PATH, ALERTMANAGER_INHIBITIONS_PATH, ALERTMANAGER_ROUTES_PATH,
};
use crate::model::{Alerting, AmMatcher, Model, Timings};
use crate::write::templates::{TemplateError, Templates, ALERTMANAGER_TEMPLATE};
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

const SLACK_TITLE: &str = r#"[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] {{ .CommonLabels.severity }} {{ .CommonLabels.alertname }}{{ if .CommonLabels.network }} {{ .CommonLabels.chain }}/{{ .CommonLabels.network }}{{ end }}{{ if .CommonLabels.region }} ({{ .CommonLabels.region }}){{ end }}"#;
const SLACK_TEXT: &str = r#"{{ range .Alerts }}*{{ .Annotations.summary }}*
{{ .Annotations.description }}
Threshold: {{ .Annotations.threshold }}. {{ .Annotations.response_time }}.
Runbook: {{ .Annotations.runbook_url }}
{{ end }}"#;
const PD_DESCRIPTION: &str = r#"{{ .CommonLabels.alertname }}: {{ .CommonAnnotations.summary }}"#;

fn pd_severity(m: &Model) -> String {
    let mut s = String::new();
    for (i, (name, sev)) in m.severities.iter().enumerate() {
        let pd = match sev.level.as_str() {
            "critical" => "critical",
            "warning" => "warning",
            _ => "info",
        };
        let kw = if i == 0 { "if" } else { "else if" };
        s.push_str(&format!(
            "{{{{ {kw} eq .CommonLabels.severity \"{name}\" }}}}{pd}"
        ));
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
    c.insert("slack_title", SLACK_TITLE);
    c.insert("slack_text", SLACK_TEXT);
    c.insert("pd_description", PD_DESCRIPTION);
    c.insert("pd_severity", &pd_severity(m));
    let mut files = Files::new();
    files.insert(
        ALERTMANAGER_CONFIG_PATH.into(),
        t.render(ALERTMANAGER_TEMPLATE, &c)?,
    );
    files.insert(ALERTMANAGER_ROUTES_PATH.into(), routes::routes_tsv(m, al));
    files.insert(
        ALERTMANAGER_INHIBITIONS_PATH.into(),
        inhibitions::inhibition_cases(m, al),
    );
    Ok(files)
}

/// The route tree under the root: the heartbeat alone, then each scope's receivers (continuing
/// to the severities), then each severity's receivers.
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
        let children = al
            .severities
            .iter()
            .map(|(name, (tm, _))| RouteCtx {
                comment: String::new(),
                matchers: vec![AmMatcher {
                    name: "severity".into(),
                    op: "=".into(),
                    value: name.clone(),
                }
                .render()],
                receiver: first.clone(),
                continue_: false,
                timings: Some(tctx(tm)),
                routes: fanout(rs, ""),
            })
            .collect();
        routes.push(RouteCtx {
            comment: format!(
                "Alerts about a whole {scope} also go to {} (with their severity's timings), then on to their severity's receivers.",
                rs.join(", ")
            ),
            matchers: vec![AmMatcher { name: "scope".into(), op: "=".into(), value: scope.clone() }.render()],
            receiver: first.clone(),
            continue_: true,
            timings: None,
            routes: children,
        });
    }
    for (name, (tm, rs)) in &al.severities {
        let sev = &m.severities[name];
        routes.push(RouteCtx {
            comment: format!(
                "{name} ({}, respond within {}): {}",
                sev.level,
                sev.response_time,
                rs.join(" + ")
            ),
            matchers: vec![AmMatcher {
                name: "severity".into(),
                op: "=".into(),
                value: name.clone(),
            }
            .render()],
            receiver: rs
                .first()
                .cloned()
                .unwrap_or_else(|| al.default_receiver.clone()),
            continue_: false,
            timings: Some(tctx(tm)),
            routes: fanout(rs, ""),
        });
    }
    routes
}
