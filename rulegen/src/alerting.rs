//! Alertmanager: receivers (secrets only from files), the route tree from the severities and
//! scopes, the heartbeat route of the dead man's switch, inhibitions (explicit ones and "the more
//! urgent alert of an alertgroup mutes the milder ones"), and the cases that test them: one routing
//! case per alert for `amtool config routes test`, and inhibition cases for a live Alertmanager.
//!
//! The expected receivers of a routing case come from the intent (severity receivers, scope
//! receivers, heartbeat), not from walking the rendered tree, so the cases test the rendering.

use std::collections::{BTreeMap, BTreeSet};

use chainwatch_catalog::CONSTANT_LABELS;
use chainwatch_yaml::SpecError;
use serde::Serialize;

use crate::build::{AlertM, Locator, Model};
use crate::model::LabelMap;
use crate::spec::Spec;
use crate::testgen::scope_of;
use chainwatch_duration::Duration;

pub const CONFIG_PATH: &str = "alertmanager/alertmanager.yml";
pub const ROUTES_PATH: &str = "alertmanager/tests/routes.tsv";
pub const INHIBITIONS_PATH: &str = "alertmanager/tests/inhibitions.yml";

/// Name of the generated "more urgent mutes milder" rules.
pub const ALERTGROUP_RULE: &str = "alertgroup-severity";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct ReceiverM {
    pub name: String,
    pub kind: String,
    pub channel: Option<String>,
    pub secret_file: Option<String>,
    pub url: Option<String>,
    pub send_resolved: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmMatcher {
    pub name: String,
    pub op: String,
    pub value: String,
}

impl AmMatcher {
    pub fn render(&self) -> String {
        format!(
            "{}{}{}",
            self.name,
            self.op,
            serde_json::to_string(&self.value).expect("string")
        )
    }

    /// Does the matcher accept `v` (a missing label is the empty string)? Regexes are anchored.
    pub fn matches(&self, v: &str) -> bool {
        match self.op.as_str() {
            "=" => v == self.value,
            "!=" => v != self.value,
            "=~" | "!~" => {
                let re = regex::Regex::new(&format!("^(?:{})$", self.value)).expect("validated");
                re.is_match(v) == (self.op == "=~")
            }
            _ => false,
        }
    }
}

fn all_match(ms: &[AmMatcher], labels: &LabelMap) -> bool {
    ms.iter()
        .all(|m| m.matches(labels.get(&m.name).map(String::as_str).unwrap_or_default()))
}

#[derive(Debug, Clone)]
pub struct InhibitionM {
    pub name: String,
    pub why: String,
    pub source: Vec<AmMatcher>,
    pub target: Vec<AmMatcher>,
    pub equal: Vec<String>,
}

impl InhibitionM {
    /// Alertmanager's semantics: the source mutes the target when both match their sides and the
    /// `equal` labels agree (missing = empty); an alert that matches both sides is not muted by one
    /// that also does.
    pub fn mutes(&self, source: &LabelMap, target: &LabelMap) -> bool {
        let get = |l: &LabelMap, k: &str| l.get(k).cloned().unwrap_or_default();
        if !all_match(&self.source, source) || !all_match(&self.target, target) {
            return false;
        }
        if self.equal.iter().any(|k| get(source, k) != get(target, k)) {
            return false;
        }
        let both = |l: &LabelMap| all_match(&self.source, l) && all_match(&self.target, l);
        !(both(target) && both(source))
    }
}

#[derive(Debug, Clone)]
pub struct HeartbeatM {
    pub receiver: String,
    pub labels: LabelMap,
    pub timings: Timings,
}

#[derive(Debug, Clone)]
pub struct Alerting {
    pub default_receiver: String,
    pub group_by: Vec<String>,
    pub resolve_timeout: Option<Duration>,
    pub root: Timings,
    pub heartbeat: Option<HeartbeatM>,
    /// Severity name → (timings, receivers), in name order (P0 first).
    pub severities: BTreeMap<String, (Timings, Vec<String>)>,
    /// Scope label value → extra receivers.
    pub scope_receivers: BTreeMap<String, Vec<String>>,
    pub receivers: BTreeMap<String, ReceiverM>,
    /// Explicit inhibitions, then the generated alertgroup rules.
    pub inhibitions: Vec<InhibitionM>,
}

/// Labels an alert has whatever its series: alertname, severity, criterion, scope, alertgroup and
/// its own `labels`.
pub fn static_labels(a: &AlertM) -> LabelMap {
    let mut l = crate::testgen::alert_labels(a, &a.variants[0]);
    l.insert("alertname".into(), a.name.clone());
    if let Some(g) = &a.alertgroup {
        l.insert("alertgroup".into(), g.clone());
    }
    l
}

/// Every label an alert of this rule can carry (static ones and its expression's result).
pub fn carried_labels(a: &AlertM) -> BTreeSet<String> {
    let mut s: BTreeSet<String> = static_labels(a).into_keys().collect();
    s.extend(a.variants[0].out_labels.iter().cloned());
    s
}

/// One concrete label set of a firing alert: static labels plus test values of what it carries.
pub fn sample_labels(a: &AlertM) -> LabelMap {
    let mut l = static_labels(a);
    l.remove("criterion");
    let out = &a.variants[0].out_labels;
    for (k, v) in [
        ("chain", a.variants[0].test_chain.as_str()),
        ("network", "testnet"),
        ("region", "eu-central"),
        ("node", "node-1"),
    ] {
        if out.contains(k) {
            l.insert(k.into(), v.into());
        }
    }
    for k in out {
        if !l.contains_key(k) && !["job", "instance", "le"].contains(&k.as_str()) {
            l.insert(k.clone(), format!("some-{k}"));
        }
    }
    l
}

fn constant_carried(a: &AlertM) -> Vec<String> {
    let out = &a.variants[0].out_labels;
    CONSTANT_LABELS
        .iter()
        .filter(|k| out.contains(**k))
        .map(|s| s.to_string())
        .collect()
}

/// The receivers an alert must reach, in the order of the route tree: the heartbeat receiver
/// alone, or the receivers of its scope and then those of its severity.
pub fn expected_receivers(al: &Alerting, labels: &LabelMap) -> Vec<String> {
    if let Some(hb) = &al.heartbeat {
        if hb.labels.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return vec![hb.receiver.clone()];
        }
    }
    let mut out = Vec::new();
    if let Some(scope) = labels.get("scope") {
        if let Some(rs) = al.scope_receivers.get(scope) {
            out.extend(rs.iter().cloned());
        }
    }
    match labels.get("severity").and_then(|s| al.severities.get(s)) {
        Some((_, rs)) => out.extend(rs.iter().cloned()),
        None => {
            if out.is_empty() {
                out.push(al.default_receiver.clone());
            }
        }
    }
    out
}

// ------------------------------------------------------------------------------- validation

struct Ctx<'a> {
    loc: &'a Locator,
    errs: &'a mut Vec<SpecError>,
}

impl Ctx<'_> {
    fn err(&mut self, field: &str, msg: impl Into<String>) {
        self.errs.push(self.loc.error(field, msg));
    }
    fn dur(&mut self, text: &str, field: &str) -> Option<Duration> {
        match Duration::parse(text) {
            Ok(d) => Some(d),
            Err(m) => {
                self.err(field, m.to_string());
                None
            }
        }
    }
}

fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_')
        && s.chars().all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// Parse an Alertmanager matcher: `name="value"`, `name!="v"`, `name=~"re"`, `name!~"re"`
/// (quotes optional).
pub fn parse_matcher(s: &str) -> Result<AmMatcher, String> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    let name = &s[..end];
    if !is_label_name(name) {
        return Err(format!(
            "`{s}` is not a matcher such as alertname=\"RegionDown\""
        ));
    }
    let rest = s[end..].trim_start();
    let (op, val) = ["=~", "!~", "!=", "="]
        .iter()
        .find_map(|op| rest.strip_prefix(op).map(|v| (*op, v.trim())))
        .ok_or_else(|| format!("`{s}`: use =, !=, =~ or !~"))?;
    let value = if val.starts_with('"') {
        serde_json::from_str::<String>(val)
            .map_err(|_| format!("`{s}`: the quoted value is not a valid string"))?
    } else {
        val.to_string()
    };
    if op.contains('~') {
        regex::Regex::new(&format!("^(?:{value})$"))
            .map_err(|e| format!("`{s}`: bad regex: {e}"))?;
    }
    Ok(AmMatcher {
        name: name.into(),
        op: op.into(),
        value,
    })
}

fn check_url(ctx: &mut Ctx, url: &str, field: &str) {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        None => ctx.err(field, format!("`{url}` is not an http:// or https:// URL")),
        Some(r) => {
            let authority = r.split(['/', '?', '#']).next().unwrap_or_default();
            if authority.contains('@') {
                ctx.err(
                    field,
                    "credentials in a URL are an inline secret: put them in the file named by `secret_file`",
                );
            } else if authority.is_empty() || url.chars().any(char::is_whitespace) {
                ctx.err(field, format!("`{url}` is not a valid URL"));
            }
        }
    }
}

fn receivers(spec: &Spec, ctx: &mut Ctx) -> BTreeMap<String, ReceiverM> {
    let mut out = BTreeMap::new();
    for (name, r) in &spec.receivers {
        let p = format!("receivers.{name}");
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            ctx.err(
                &p,
                format!("`{name}` is not a receiver name (letters, digits, - and _)"),
            );
        }
        for (field, v, what) in [
            ("api_url", &r.api_url, "Slack webhook URL"),
            ("routing_key", &r.routing_key, "PagerDuty routing key"),
            ("service_key", &r.service_key, "PagerDuty service key"),
            ("token", &r.token, "token"),
            ("password", &r.password, "password"),
        ] {
            if v.is_some() {
                ctx.err(
                    &format!("{p}.{field}"),
                    format!("secrets only from files: put the {what} in a file and name it in `secret_file`"),
                );
            }
        }
        let inline = [
            &r.api_url,
            &r.routing_key,
            &r.service_key,
            &r.token,
            &r.password,
        ]
        .iter()
        .any(|v| v.is_some());
        // With an inline secret, that is the error to fix (not the missing file).
        let secret = if inline {
            Some("")
        } else {
            r.secret_file.as_deref()
        };
        if let Some(f) = r.secret_file.as_deref() {
            if f.trim().is_empty() || f.chars().any(char::is_whitespace) {
                ctx.err(&format!("{p}.secret_file"), "not a file path");
            }
        }
        match r.kind.as_str() {
            "slack" => {
                if secret.is_none() {
                    ctx.err(
                        &p,
                        "a slack receiver needs `secret_file`: the file holding its webhook URL",
                    );
                }
                if r.url.is_some() {
                    ctx.err(
                        &format!("{p}.url"),
                        "a Slack webhook URL is a secret: put it in the file named by `secret_file`",
                    );
                }
                if let Some(c) = &r.channel {
                    if !(c.starts_with('#') || c.starts_with('@')) || c.len() < 2 {
                        ctx.err(
                            &format!("{p}.channel"),
                            format!("`{c}` is not a channel (#name)"),
                        );
                    }
                }
            }
            "pagerduty" => {
                if secret.is_none() {
                    ctx.err(&p, "a pagerduty receiver needs `secret_file`: the file holding its routing key");
                }
                if let Some(u) = &r.url {
                    check_url(ctx, u, &format!("{p}.url"));
                }
                if r.channel.is_some() {
                    ctx.err(
                        &format!("{p}.channel"),
                        "only slack receivers have a channel",
                    );
                }
            }
            "webhook" => match &r.url {
                None => ctx.err(&p, "a webhook receiver needs `url`"),
                Some(u) => check_url(ctx, u, &format!("{p}.url")),
            },
            _ => {} // reported by build
        }
        out.insert(
            name.clone(),
            ReceiverM {
                name: name.clone(),
                kind: r.kind.clone(),
                channel: r.channel.clone(),
                secret_file: r.secret_file.clone(),
                url: r.url.clone(),
                send_resolved: r.send_resolved.unwrap_or(true),
            },
        );
    }
    out
}

fn timings(
    ctx: &mut Ctx,
    p: &str,
    w: Option<&String>,
    i: Option<&String>,
    r: Option<&String>,
    default: Timings,
) -> Timings {
    let mut t = default;
    if let Some(d) = w.and_then(|x| ctx.dur(x, &format!("{p}.group_wait"))) {
        t.group_wait = d;
    }
    if let Some(d) = i.and_then(|x| ctx.dur(x, &format!("{p}.group_interval"))) {
        t.group_interval = d;
    }
    if let Some(d) = r.and_then(|x| ctx.dur(x, &format!("{p}.repeat_interval"))) {
        t.repeat_interval = d;
    }
    if t.group_interval.is_zero() {
        ctx.err(&format!("{p}.group_interval"), "must be more than 0s");
    }
    if t.repeat_interval < t.group_interval {
        ctx.err(
            &format!("{p}.repeat_interval"),
            format!(
                "{} is shorter than group_interval {}: Alertmanager repeats only on group_interval ticks",
                t.repeat_interval, t.group_interval
            ),
        );
    }
    t
}

fn alertgroups(m: &Model, ctx: &mut Ctx) -> Vec<InhibitionM> {
    let mut groups: BTreeMap<&str, Vec<&AlertM>> = BTreeMap::new();
    for a in &m.alerts {
        if let Some(g) = &a.alertgroup {
            groups.entry(g.as_str()).or_default().push(a);
        }
    }
    for (g, alerts) in &groups {
        let first = alerts[0];
        let field = format!("{}.alertgroup", first.path);
        let sevs: BTreeSet<&str> = alerts.iter().map(|a| a.severity.as_str()).collect();
        if sevs.len() < 2 {
            ctx.err(
                &field,
                format!("alertgroup `{g}` needs alerts of different severities (the more urgent mutes the milder)"),
            );
        }
        for a in &alerts[1..] {
            if constant_carried(a) != constant_carried(first) {
                ctx.err(
                    &format!("{}.alertgroup", a.path),
                    format!(
                        "alertgroup `{g}`: {} carries {} but {} carries {}: both must be about the same node, region or network",
                        a.name,
                        constant_carried(a).join(", "),
                        first.name,
                        constant_carried(first).join(", ")
                    ),
                );
            }
        }
    }
    if groups.is_empty() {
        return Vec::new();
    }
    // One rule per severity that has a milder one: it mutes all milder severities.
    let names: Vec<&String> = m.severities.keys().collect();
    let mut equal = vec!["alertgroup".to_string()];
    equal.extend(CONSTANT_LABELS.iter().map(|s| s.to_string()));
    let mut out = Vec::new();
    for (i, s) in names.iter().enumerate() {
        let milder: Vec<&str> = names[i + 1..].iter().map(|s| s.as_str()).collect();
        if milder.is_empty() {
            continue;
        }
        out.push(InhibitionM {
            name: format!("{ALERTGROUP_RULE}-{s}"),
            why: format!(
                "A {s} alert mutes the {} alerts of the same alertgroup on the same node (or region, network): one page per problem.",
                milder.join("/")
            ),
            source: vec![
                AmMatcher { name: "severity".into(), op: "=".into(), value: s.to_string() },
                AmMatcher { name: "alertgroup".into(), op: "=~".into(), value: ".+".into() },
            ],
            target: vec![
                AmMatcher {
                    name: "severity".into(),
                    op: if milder.len() == 1 { "=" } else { "=~" }.into(),
                    value: milder.join("|"),
                },
                AmMatcher { name: "alertgroup".into(), op: "=~".into(), value: ".+".into() },
            ],
            equal: equal.clone(),
        });
    }
    out
}

/// Matches of `ms` against an alert rule: labels the rule sets are compared; labels of its
/// series are assumed to match when the rule carries them.
fn rule_matches(ms: &[AmMatcher], a: &AlertM) -> bool {
    let st = static_labels(a);
    let carried = carried_labels(a);
    ms.iter().all(|m| match st.get(&m.name) {
        Some(v) => m.matches(v),
        None if carried.contains(&m.name) => true,
        None => m.matches(""),
    })
}

pub fn build(spec: &Spec, m: &Model, loc: &Locator, errs: &mut Vec<SpecError>) -> Option<Alerting> {
    let mut ctx = Ctx { loc, errs };
    let receivers = receivers(spec, &mut ctx);
    let group_rules = alertgroups(m, &mut ctx);
    let am = spec.alertmanager.as_ref()?;
    let p = "alertmanager";
    if !receivers.contains_key(&am.default_receiver) {
        ctx.err(
            &format!("{p}.default_receiver"),
            format!("unknown receiver `{}`", am.default_receiver),
        );
    }
    // Every label any alert can carry.
    let mut universe: BTreeSet<String> = m.alerts.iter().flat_map(carried_labels).collect();
    universe.extend(CONSTANT_LABELS.iter().map(|s| s.to_string()));
    universe.insert("alertname".into());
    for (i, l) in am.group_by.iter().enumerate() {
        if !universe.contains(l) {
            ctx.err(
                &format!("{p}.group_by[{i}]"),
                format!("no alert carries label `{l}`"),
            );
        }
    }
    let resolve_timeout = am
        .resolve_timeout
        .as_ref()
        .and_then(|r| ctx.dur(r, &format!("{p}.resolve_timeout")));
    let zero = Timings {
        group_wait: Duration::from_secs(30),
        group_interval: Duration::from_secs(300),
        repeat_interval: Duration::from_secs(14400),
    };
    let root = timings(
        &mut ctx,
        p,
        Some(&am.group_wait),
        Some(&am.group_interval),
        Some(&am.repeat_interval),
        zero,
    );
    let mut severities = BTreeMap::new();
    for (name, s) in &spec.severities {
        let sp = format!("severities.{name}");
        if s.receivers.is_empty() {
            ctx.err(
                &sp,
                "a severity needs `receivers`: its alerts would reach nobody",
            );
        }
        let t = timings(
            &mut ctx,
            &sp,
            s.group_wait.as_ref(),
            s.group_interval.as_ref(),
            s.repeat_interval.as_ref(),
            root,
        );
        severities.insert(name.clone(), (t, s.receivers.clone()));
    }
    let heartbeat = am.heartbeat.as_ref().map(|h| {
        let hp = format!("{p}.heartbeat");
        if !receivers.contains_key(&h.receiver) {
            ctx.err(
                &format!("{hp}.receiver"),
                format!("unknown receiver `{}`", h.receiver),
            );
        }
        if h.labels.is_empty() {
            ctx.err(&format!("{hp}.labels"), "the heartbeat needs labels that select the always-firing alert");
        }
        let fed: Vec<&AlertM> = m
            .alerts
            .iter()
            .filter(|a| {
                let st = static_labels(a);
                h.labels.iter().all(|(k, v)| st.get(k) == Some(v))
            })
            .collect();
        if fed.is_empty() && !h.labels.is_empty() {
            let want: Vec<String> = h.labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            ctx.err(
                &format!("{hp}.labels"),
                format!(
                    "no alert carries {}: the dead man's switch would never be fed (give these labels to an always-firing alert)",
                    want.join(", ")
                ),
            );
        }
        let t = timings(
            &mut ctx,
            &hp,
            Some(&h.group_wait),
            Some(&h.group_interval),
            Some(&h.repeat_interval),
            root,
        );
        if t.repeat_interval > Duration::from_secs(600) {
            ctx.err(
                &format!("{hp}.repeat_interval"),
                format!("a heartbeat every {} is too slow for a dead man's switch (at most 10m)", t.repeat_interval),
            );
        }
        HeartbeatM {
            receiver: h.receiver.clone(),
            labels: h.labels.clone(),
            timings: t,
        }
    });
    let mut inhibitions = Vec::new();
    let mut names = BTreeSet::new();
    for (i, inh) in am.inhibitions.iter().enumerate() {
        let ip = format!("{p}.inhibitions[{i}]");
        if !is_label_name(&inh.name.replace('-', "_")) {
            ctx.err(
                &format!("{ip}.name"),
                format!("`{}` is not a name (words joined by -)", inh.name),
            );
        }
        if !names.insert(inh.name.clone()) || inh.name.starts_with(ALERTGROUP_RULE) {
            ctx.err(
                &format!("{ip}.name"),
                format!("duplicate or reserved inhibition name `{}`", inh.name),
            );
        }
        let mut sides = [Vec::new(), Vec::new()];
        let mut ok = true;
        for (si, (key, list)) in [("source", &inh.source), ("target", &inh.target)]
            .into_iter()
            .enumerate()
        {
            if list.is_empty() {
                ctx.err(&format!("{ip}.{key}"), "at least one matcher");
                ok = false;
            }
            for (j, s) in list.iter().enumerate() {
                match parse_matcher(s) {
                    Ok(mm) => {
                        if !universe.contains(&mm.name) {
                            ctx.err(
                                &format!("{ip}.{key}[{j}]"),
                                format!("no alert carries label `{}`", mm.name),
                            );
                            ok = false;
                        }
                        sides[si].push(mm);
                    }
                    Err(e) => {
                        ctx.err(&format!("{ip}.{key}[{j}]"), e);
                        ok = false;
                    }
                }
            }
        }
        for (j, l) in inh.equal.iter().enumerate() {
            if !universe.contains(l) {
                ctx.err(
                    &format!("{ip}.equal[{j}]"),
                    format!("no alert carries label `{l}`"),
                );
                ok = false;
            }
        }
        if !ok {
            continue;
        }
        let [source, target] = sides;
        let srcs: Vec<&AlertM> = m
            .alerts
            .iter()
            .filter(|a| rule_matches(&source, a))
            .collect();
        let tgts: Vec<&AlertM> = m
            .alerts
            .iter()
            .filter(|a| rule_matches(&target, a))
            .collect();
        if srcs.is_empty() {
            ctx.err(&format!("{ip}.source"), "matches no alert");
            continue;
        }
        if tgts.is_empty() {
            ctx.err(&format!("{ip}.target"), "matches no alert");
            continue;
        }
        if let Some(hb) = &heartbeat {
            if let Some(w) = tgts.iter().find(|a| {
                let st = static_labels(a);
                hb.labels.iter().all(|(k, v)| st.get(k) == Some(v))
            }) {
                ctx.err(
                    &format!("{ip}.target"),
                    format!(
                        "would mute {}, the heartbeat of the dead man's switch",
                        w.name
                    ),
                );
            }
        }
        for (j, l) in inh.equal.iter().enumerate() {
            let missing: Vec<&str> = srcs
                .iter()
                .chain(tgts.iter())
                .filter(|a| !carried_labels(a).contains(l))
                .map(|a| a.name.as_str())
                .collect();
            if !missing.is_empty() {
                ctx.err(
                    &format!("{ip}.equal[{j}]"),
                    format!(
                        "{} {} not carry `{l}`: the inhibition would never apply to {}",
                        missing.join(", "),
                        if missing.len() == 1 { "does" } else { "do" },
                        if missing.len() == 1 { "it" } else { "them" }
                    ),
                );
            }
        }
        inhibitions.push(InhibitionM {
            name: inh.name.clone(),
            why: inh.why.clone(),
            source,
            target,
            equal: inh.equal.clone(),
        });
    }
    inhibitions.extend(group_rules);
    let scope_receivers = spec.scope_receivers.clone();
    Some(Alerting {
        default_receiver: am.default_receiver.clone(),
        group_by: am.group_by.clone(),
        resolve_timeout,
        root,
        heartbeat,
        severities,
        scope_receivers,
        receivers,
        inhibitions,
    })
}

// ------------------------------------------------------------------------------- rendering

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

pub fn render(m: &Model, al: &Alerting, t: &tera::Tera) -> Result<crate::Files, tera::Error> {
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
            comment: format!("{}: {}", i.name, crate::render::one_line(&i.why)),
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
    let mut files = crate::Files::new();
    files.insert(CONFIG_PATH.into(), t.render("alertmanager.yml", &c)? + "\n");
    files.insert(ROUTES_PATH.into(), routes_tsv(m, al));
    files.insert(INHIBITIONS_PATH.into(), inhibition_cases(m, al));
    Ok(files)
}

/// One line per alert (plus an alert of no known severity): name, receivers, labels.
fn routes_tsv(m: &Model, al: &Alerting) -> String {
    let mut s = String::from(
        "# Generated by chainwatch-rulegen from thresholds.yaml: do not edit.\n\
         # Routing cases: the receivers each alert must reach, in route order. Run each line as\n\
         #   amtool config routes test --config.file=alertmanager/alertmanager.yml \\\n\
         #     --verify.receivers=<receivers> <labels>\n\
         # case\treceivers\tlabels\n",
    );
    let mut line = |name: &str, labels: &LabelMap| {
        let rs = expected_receivers(al, labels);
        let ls: Vec<String> = labels
            .iter()
            .filter(|(k, _)| *k != "criterion")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        s.push_str(&format!("{name}\t{}\t{}\n", rs.join(","), ls.join(" ")));
    };
    for a in &m.alerts {
        line(&a.name, &sample_labels(a));
    }
    let mut stray = LabelMap::new();
    stray.insert("alertname".into(), "NotFromChainwatch".into());
    stray.insert("severity".into(), "page".into());
    line("unknown-severity", &stray);
    s
}

#[derive(Serialize)]
struct Case {
    name: String,
    rule: String,
    source: LabelMap,
    target: LabelMap,
    inhibited: bool,
}

/// Which rule mutes `target` when `source` fires (Alertmanager's semantics over all rules).
pub fn muted_by<'a>(al: &'a Alerting, source: &LabelMap, target: &LabelMap) -> Option<&'a str> {
    al.inhibitions
        .iter()
        .find(|r| r.mutes(source, target))
        .map(|r| r.name.as_str())
}

/// Cases for a live Alertmanager: for every rule, every source alert against every target alert
/// with the `equal` labels agreeing (muted) and with one of them different (not muted).
fn inhibition_cases(m: &Model, al: &Alerting) -> String {
    let mut cases: Vec<Case> = Vec::new();
    for r in &al.inhibitions {
        let group_rule = r.name.starts_with(ALERTGROUP_RULE);
        for s in m.alerts.iter().filter(|a| rule_matches(&r.source, a)) {
            let mut negated = false;
            for t in m.alerts.iter().filter(|a| rule_matches(&r.target, a)) {
                if s.name == t.name {
                    continue;
                }
                let src = sample_labels(s);
                let mut tgt = sample_labels(t);
                // Same node/region/network: the constant labels of the source.
                for k in r
                    .equal
                    .iter()
                    .filter(|k| CONSTANT_LABELS.contains(&k.as_str()))
                {
                    match src.get(k) {
                        Some(v) => {
                            tgt.insert(k.clone(), v.clone());
                        }
                        None => {
                            tgt.remove(k);
                        }
                    }
                }
                if !r.mutes(&src, &tgt) {
                    continue;
                }
                let eq = r.equal.join(", ");
                cases.push(Case {
                    name: format!("{} mutes {} (same {eq})", s.name, t.name),
                    rule: r.name.clone(),
                    inhibited: true,
                    source: src.clone(),
                    target: tgt.clone(),
                });
                // The same pair with the most specific equal label different: not muted.
                if !negated || group_rule {
                    negated = true;
                    if let Some(k) = r
                        .equal
                        .iter()
                        .rev()
                        .find(|k| src.contains_key(*k) && *k != "alertgroup")
                    {
                        let mut other = tgt.clone();
                        other.insert(k.clone(), format!("other-{k}"));
                        cases.push(Case {
                            name: format!("{} does not mute {} of another {k}", s.name, t.name),
                            rule: r.name.clone(),
                            inhibited: muted_by(al, &src, &other).is_some(),
                            source: src.clone(),
                            target: other,
                        });
                    }
                }
                // The milder alert of a group never mutes the more urgent one.
                if group_rule && muted_by(al, &tgt, &src).is_none() {
                    cases.push(Case {
                        name: format!("{} does not mute the more urgent {}", t.name, s.name),
                        rule: r.name.clone(),
                        inhibited: false,
                        source: tgt,
                        target: src,
                    });
                }
            }
        }
    }
    // What no rule covers stays loud: each source alert against a few alerts it must not mute,
    // always including the heartbeat.
    let sources: BTreeSet<&str> = al
        .inhibitions
        .iter()
        .flat_map(|r| m.alerts.iter().filter(|a| rule_matches(&r.source, a)))
        .map(|a| a.name.as_str())
        .collect();
    for s in m
        .alerts
        .iter()
        .filter(|a| sources.contains(a.name.as_str()))
    {
        let src = sample_labels(s);
        let mut n = 0;
        for t in &m.alerts {
            let is_hb = al.heartbeat.as_ref().is_some_and(|hb| {
                hb.labels
                    .iter()
                    .all(|(k, v)| static_labels(t).get(k) == Some(v))
            });
            if s.name == t.name || (n >= 3 && !is_hb) {
                continue;
            }
            let tgt = sample_labels(t);
            if muted_by(al, &src, &tgt).is_none() {
                n += 1;
                cases.push(Case {
                    name: format!("{} does not mute {}", s.name, t.name),
                    rule: "none".into(),
                    inhibited: false,
                    source: src.clone(),
                    target: tgt,
                });
            }
        }
    }
    let mut s = String::from(
        "# Generated by chainwatch-rulegen from thresholds.yaml: do not edit.\n\
         # Inhibition cases for a live Alertmanager loaded with alertmanager/alertmanager.yml: fire\n\
         # `source` and `target` together (nothing else with the same labels) and the target must be\n\
         # muted exactly when `inhibited` is true. `rule` names the inhibition under test.\n\
         cases:\n",
    );
    let map = |l: &LabelMap| {
        let parts: Vec<String> = l.iter().map(|(k, v)| format!("{k}: {}", q(v))).collect();
        format!("{{{}}}", parts.join(", "))
    };
    for c in &cases {
        s.push_str(&format!(
            "  - {{name: {}, rule: {}, inhibited: {},\n     source: {},\n     target: {}}}\n",
            q(&c.name),
            q(&c.rule),
            c.inhibited,
            map(&c.source),
            map(&c.target)
        ));
    }
    s
}

fn q(s: &str) -> String {
    serde_json::to_string(s).expect("string")
}

/// The route a matcher list selects, for the runbook: where an alert goes, in words.
pub fn describe_routing(al: &Alerting, a: &AlertM) -> String {
    expected_receivers(al, &sample_labels(a)).join(", ")
}

/// `source` and `target` firing on the same node/region/network (the source's constant labels).
fn aligned(r: &InhibitionM, s: &AlertM, t: &AlertM) -> (LabelMap, LabelMap) {
    let src = sample_labels(s);
    let mut tgt = sample_labels(t);
    for k in r
        .equal
        .iter()
        .filter(|k| CONSTANT_LABELS.contains(&k.as_str()))
    {
        match src.get(k) {
            Some(v) => {
                tgt.insert(k.clone(), v.clone());
            }
            None => {
                tgt.remove(k);
            }
        }
    }
    (src, tgt)
}

/// Inhibitions that mute this alert, and those in which it mutes others (for the runbook).
pub fn describe_inhibitions(m: &Model, al: &Alerting, a: &AlertM) -> (Vec<String>, Vec<String>) {
    let mut muted_by_rules = Vec::new();
    let mut mutes = Vec::new();
    let scope = scope_label(a);
    for r in &al.inhibitions {
        let srcs: Vec<&str> = m
            .alerts
            .iter()
            .filter(|s| s.name != a.name)
            .filter(|s| {
                let (x, y) = aligned(r, s, a);
                r.mutes(&x, &y)
            })
            .map(|s| s.name.as_str())
            .collect();
        if !srcs.is_empty() {
            muted_by_rules.push(format!(
                "{} (same {}; `{}`)",
                srcs.join(", "),
                r.equal.join(", "),
                r.name
            ));
        }
        let tgts: Vec<&AlertM> = m
            .alerts
            .iter()
            .filter(|t| t.name != a.name)
            .filter(|t| {
                let (x, y) = aligned(r, a, t);
                r.mutes(&x, &y)
            })
            .collect();
        if tgts.is_empty() {
            continue;
        }
        let same_scope = m
            .alerts
            .iter()
            .filter(|t| t.name != a.name && scope_label(t) == "node")
            .count();
        let what = if tgts.len() > 5
            && tgts.len() == same_scope
            && tgts.iter().all(|t| scope_label(t) == "node")
        {
            if scope == "node" {
                "every other node-scope alert".to_string()
            } else {
                "every node-scope alert".to_string()
            }
        } else {
            tgts.iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        mutes.push(format!(
            "{what} (same {}; `{}`)",
            r.equal.join(", "),
            r.name
        ));
    }
    (muted_by_rules, mutes)
}

pub fn scope_label(a: &AlertM) -> &'static str {
    scope_of(&a.variants[0].out_labels)
}

/// Timings an alert's notifications follow, for the runbook.
pub fn timings_of(al: &Alerting, severity: &str) -> Option<Timings> {
    al.severities.get(severity).map(|(t, _)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(v: &[(&str, &str)]) -> LabelMap {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn matchers_parse_like_alertmanager() {
        let m = parse_matcher(r#"alertname="RegionDown""#).unwrap();
        assert_eq!(
            (m.name.as_str(), m.op.as_str(), m.value.as_str()),
            ("alertname", "=", "RegionDown")
        );
        let m = parse_matcher(r#"severity=~"P2|P3""#).unwrap();
        assert!(m.matches("P3") && !m.matches("P1") && !m.matches("P33"));
        assert_eq!(parse_matcher("scope!=node").unwrap().op, "!=");
        assert!(parse_matcher("=x").is_err());
        assert!(parse_matcher(r#"a=~"(""#).is_err());
        assert_eq!(m.render(), r#"severity=~"P2|P3""#);
    }

    #[test]
    fn inhibition_semantics() {
        let r = InhibitionM {
            name: "r".into(),
            why: String::new(),
            source: vec![parse_matcher(r#"alertname="RegionDown""#).unwrap()],
            target: vec![parse_matcher(r#"scope="node""#).unwrap()],
            equal: vec!["region".into()],
        };
        let s = labels(&[("alertname", "RegionDown"), ("region", "eu")]);
        assert!(r.mutes(&s, &labels(&[("scope", "node"), ("region", "eu")])));
        assert!(!r.mutes(&s, &labels(&[("scope", "node"), ("region", "us")])));
        assert!(!r.mutes(&s, &labels(&[("scope", "region"), ("region", "eu")])));
        // A missing equal label is the empty string on both sides.
        let r2 = InhibitionM {
            equal: vec!["node".into()],
            ..r.clone()
        };
        assert!(r2.mutes(&s, &labels(&[("scope", "node")])));
        assert!(!r2.mutes(&s, &labels(&[("scope", "node"), ("node", "n1")])));
    }
}
