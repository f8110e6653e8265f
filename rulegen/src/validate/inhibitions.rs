//! Inhibitions: the explicit ones of the `alertmanager` section (Alertmanager matchers on
//! labels alerts carry, `equal` labels both sides carry, never muting the heartbeat) and the
//! generated alertgroup rules.

use std::collections::{BTreeMap, BTreeSet};

use chainwatch_catalog::CONSTANT_LABELS;

use crate::conventions::{self, ALERTGROUP_RULE};
use crate::model::{rule_matches, AlertM, AmMatcher, HeartbeatM, InhibitionM, Labels, Model};
use crate::spec::v1::Inhibition;

use super::ctx::{is_ident, Ctx};

/// Parse an Alertmanager matcher: `name="value"`, `name!="v"`, `name=~"re"`, `name!~"re"`
/// (quotes optional).
pub fn parse_matcher(s: &str) -> Result<AmMatcher, String> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    let name = &s[..end];
    if !is_ident(name, "") {
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

/// The generated rules of the alertgroups: within a group (alerts of one measure at different
/// severities, about the same node, region or network) the more urgent alert mutes the milder.
pub fn alertgroups(m: &Model, cx: &mut Ctx) -> Vec<InhibitionM> {
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
            cx.err(
                &field,
                format!("alertgroup `{g}` needs alerts of different severities (the more urgent mutes the milder)"),
            );
        }
        for a in &alerts[1..] {
            if constant_carried(a) != constant_carried(first) {
                cx.err(
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
    // One rule per priority that has a milder one: it mutes all milder priorities.
    let mut order: Vec<&crate::model::SeverityM> = m.severities.values().collect();
    order.sort_by_key(|s| (conventions::level_rank(&s.level), s.name.clone()));
    let names: Vec<&String> = order.iter().map(|s| &s.name).collect();
    let mut equal = vec!["alertgroup".to_string()];
    equal.extend(CONSTANT_LABELS.iter().map(|s| s.to_string()));
    let mut out = Vec::new();
    for (i, s) in names.iter().enumerate() {
        let milder: Vec<&str> = names[i + 1..].iter().map(|s| s.as_str()).collect();
        if milder.is_empty() {
            continue;
        }
        out.push(InhibitionM {
            name: conventions::alertgroup_rule(s),
            why: format!(
                "A {s} alert mutes the {} alerts of the same alertgroup on the same node (or region, network): one page per problem.",
                milder.join("/")
            ),
            source: vec![
                AmMatcher { name: conventions::PRIORITY_LABEL.into(), op: "=".into(), value: s.to_string() },
                AmMatcher { name: "alertgroup".into(), op: "=~".into(), value: ".+".into() },
            ],
            target: vec![
                AmMatcher {
                    name: conventions::PRIORITY_LABEL.into(),
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

fn constant_carried(a: &AlertM) -> Vec<String> {
    let out = &a.variants[0].out_labels;
    CONSTANT_LABELS
        .iter()
        .filter(|k| out.contains(**k))
        .map(|s| s.to_string())
        .collect()
}

/// The explicit inhibitions, each checked against the alerts it would apply to.
pub fn inhibitions(
    list: &[Inhibition],
    m: &Model,
    universe: &Labels,
    heartbeat: Option<&HeartbeatM>,
    cx: &mut Ctx,
) -> Vec<InhibitionM> {
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for (i, inh) in list.iter().enumerate() {
        let ip = format!("alertmanager.inhibitions[{i}]");
        if !is_ident(&inh.name.replace('-', "_"), "") {
            cx.err(
                &format!("{ip}.name"),
                format!("`{}` is not a name (words joined by -)", inh.name),
            );
        }
        if !names.insert(inh.name.clone()) || inh.name.starts_with(ALERTGROUP_RULE) {
            cx.err(
                &format!("{ip}.name"),
                format!("duplicate or reserved inhibition name `{}`", inh.name),
            );
        }
        let Some([source, target]) = sides(inh, &ip, universe, cx) else {
            continue;
        };
        if applies(inh, &ip, m, &source, &target, heartbeat, cx) {
            out.push(InhibitionM {
                name: inh.name.clone(),
                why: inh.why.clone(),
                source,
                target,
                equal: inh.equal.clone(),
            });
        }
    }
    out
}

/// The source and target matchers, and the `equal` labels, on labels some alert carries.
fn sides(
    inh: &Inhibition,
    ip: &str,
    universe: &Labels,
    cx: &mut Ctx,
) -> Option<[Vec<AmMatcher>; 2]> {
    let mut sides = [Vec::new(), Vec::new()];
    let mut ok = true;
    for (si, (key, list)) in [("source", &inh.source), ("target", &inh.target)]
        .into_iter()
        .enumerate()
    {
        if list.is_empty() {
            cx.err(&format!("{ip}.{key}"), "at least one matcher");
            ok = false;
        }
        for (j, s) in list.iter().enumerate() {
            match parse_matcher(s) {
                Ok(mm) => {
                    if !universe.contains(&mm.name) {
                        cx.err(
                            &format!("{ip}.{key}[{j}]"),
                            format!("no alert carries label `{}`", mm.name),
                        );
                        ok = false;
                    }
                    sides[si].push(mm);
                }
                Err(e) => {
                    cx.err(&format!("{ip}.{key}[{j}]"), e);
                    ok = false;
                }
            }
        }
    }
    for (j, l) in inh.equal.iter().enumerate() {
        if !universe.contains(l) {
            cx.err(
                &format!("{ip}.equal[{j}]"),
                format!("no alert carries label `{l}`"),
            );
            ok = false;
        }
    }
    ok.then_some(sides)
}

/// Does the rule apply to some alerts: sources and targets exist, the heartbeat is not a
/// target, and every alert of both sides carries the `equal` labels.
fn applies(
    inh: &Inhibition,
    ip: &str,
    m: &Model,
    source: &[AmMatcher],
    target: &[AmMatcher],
    heartbeat: Option<&HeartbeatM>,
    cx: &mut Ctx,
) -> bool {
    let srcs: Vec<&AlertM> = m
        .alerts
        .iter()
        .filter(|a| rule_matches(source, a))
        .collect();
    let tgts: Vec<&AlertM> = m
        .alerts
        .iter()
        .filter(|a| rule_matches(target, a))
        .collect();
    if srcs.is_empty() {
        cx.err(&format!("{ip}.source"), "matches no alert");
        return false;
    }
    if tgts.is_empty() {
        cx.err(&format!("{ip}.target"), "matches no alert");
        return false;
    }
    if let Some(hb) = heartbeat {
        if let Some(w) = tgts.iter().find(|a| hb.fed_by(a)) {
            cx.err(
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
            .filter(|a| !a.carried_labels().contains(l))
            .map(|a| a.name.as_str())
            .collect();
        if !missing.is_empty() {
            cx.err(
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
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LabelMap;

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
