//! One event, one count, across every loaded profile: two rules that would update the same series
//! with the same fact — from the same line, or a line per event beside the node's running total of
//! those events, or two writers of one current value — are refused at load, naming both rules,
//! unless a profile says how they combine (`combine:`). Declarations are turned into what the
//! engine enforces: `only` drops the other rules' actions, `prefer` puts an arbiter on the series.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chainwatch_catalog::{Catalog, Kind, Metric};
use chainwatch_yaml::SpecError;

use super::rule::{Pending, PendingRule, Write};
use super::spec::CombineSpec;
use super::{LabelSrc, Loaded};
use crate::arbiter::{Arbiter, UNRANKED};

/// A `combine:` entry with its rule names resolved to `profile/rule`.
struct Decl {
    prefer: Vec<String>,
    only: Vec<String>,
    latest: bool,
    /// `file:line` of the declaration.
    at: String,
}

/// Check the `combine:` declarations, apply them to `rules`, and refuse the overlaps left.
/// `aliases` maps rules dropped as exact duplicates to the copy that runs.
pub(super) fn resolve(
    profiles: &[Loaded],
    rules: &mut [PendingRule],
    aliases: &HashMap<String, String>,
    catalog: &Catalog,
    errs: &mut Vec<SpecError>,
) {
    let decls = declarations(profiles, rules, aliases, catalog, errs);
    for (metric, d) in &decls {
        if !d.only.is_empty() {
            for r in rules.iter_mut().filter(|r| !d.only.contains(&r.name)) {
                r.actions.retain(|a| a.metric.name != metric);
            }
        }
        if !d.prefer.is_empty() {
            let arbiter = Arc::new(Arbiter::default());
            for r in rules.iter_mut() {
                let rank = d
                    .prefer
                    .iter()
                    .position(|n| *n == r.name)
                    .unwrap_or(UNRANKED);
                for a in r.actions.iter_mut().filter(|a| a.metric.name == metric) {
                    a.arbiter = Some(arbiter.clone());
                    a.rank = rank;
                }
            }
        }
    }
    overlaps(profiles, rules, &decls, errs);
}

fn declarations(
    profiles: &[Loaded],
    rules: &[PendingRule],
    aliases: &HashMap<String, String>,
    catalog: &Catalog,
    errs: &mut Vec<SpecError>,
) -> BTreeMap<String, Decl> {
    let mut decls: BTreeMap<String, Decl> = BTreeMap::new();
    for p in profiles {
        for (metric_name, c) in &p.spec.combine {
            let field = format!("combine.{metric_name}");
            let err = |f: &str, m: String| p.positions.error(format!("{field}{f}"), m);
            let Some(metric) = catalog.lookup(metric_name) else {
                errs.push(err("", format!("unknown metric `{metric_name}`")));
                continue;
            };
            let CombineSpec {
                prefer,
                only,
                latest,
            } = c;
            let modes = [!prefer.is_empty(), !only.is_empty(), *latest];
            if modes.iter().filter(|m| **m).count() != 1 {
                errs.push(err(
                    "",
                    "give exactly one of `prefer: [rules]`, `only: [rules]` or `latest: true`"
                        .into(),
                ));
                continue;
            }
            if *latest && !matches!(metric.kind, Kind::Gauge | Kind::State { .. }) {
                errs.push(err(".latest", format!(
                    "`latest` is for gauges and states; the events of the {} `{metric_name}` must count once: `prefer` or `only` the rule that is the truth",
                    metric.kind.name()
                )));
                continue;
            }
            let mut resolved = |list: &[String], key: &str| -> Option<Vec<String>> {
                let mut out = Vec::new();
                let mut ok = true;
                for (k, n) in list.iter().enumerate() {
                    let full = if n.contains('/') {
                        n.clone()
                    } else {
                        format!("{}/{n}", p.spec.name)
                    };
                    let full = aliases.get(&full).cloned().unwrap_or(full);
                    let f = format!(".{key}[{k}]");
                    match rules.iter().find(|r| r.name == full) {
                        None => {
                            errs.push(err(
                                &f,
                                format!("no rule `{full}` among the loaded profiles"),
                            ));
                            ok = false;
                        }
                        Some(r) if !r.actions.iter().any(|a| a.metric.name == metric.name) => {
                            errs.push(err(&f, format!("`{full}` does not update `{metric_name}`")));
                            ok = false;
                        }
                        Some(_) if out.contains(&full) => {}
                        Some(_) => out.push(full),
                    }
                }
                ok.then_some(out)
            };
            let (Some(prefer), Some(only)) = (resolved(prefer, "prefer"), resolved(only, "only"))
            else {
                continue;
            };
            let pos = p.positions.pos(&field);
            let d = Decl {
                prefer,
                only,
                latest: *latest,
                at: format!("{}:{}", p.positions.file().display(), pos.line),
            };
            match decls.get(metric_name) {
                Some(prev)
                    if (&prev.prefer, &prev.only, prev.latest)
                        != (&d.prefer, &d.only, d.latest) =>
                {
                    errs.push(err(
                        "",
                        format!(
                            "how `{metric_name}` combines is already declared differently at {}",
                            prev.at
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    decls.insert(metric_name.clone(), d);
                }
            }
        }
    }
    decls
}

/// Lines to look for overlaps on: every rule's examples and near misses, and every test's lines,
/// of every loaded profile.
fn sample_lines(profiles: &[Loaded]) -> Vec<&str> {
    let mut out: BTreeSet<&str> = BTreeSet::new();
    for p in profiles {
        for r in &p.spec.rules {
            out.extend(r.examples.iter().map(String::as_str));
            out.extend(r.not_examples.iter().map(String::as_str));
        }
        for t in &p.spec.tests {
            out.extend(t.lines.iter().map(String::as_str));
        }
    }
    out.into_iter().collect()
}

/// Whether two actions can write the same series: not when some label has different fixed values.
fn labels_overlap(a: &Pending, b: &Pending) -> bool {
    fn fixed(l: Option<&LabelSrc>) -> Option<&str> {
        match l {
            None => Some(""),
            Some(LabelSrc::Literal(s)) => Some(s.as_str()),
            Some(LabelSrc::Capture { .. }) => None,
        }
    }
    a.labels.keys().chain(b.labels.keys()).all(|n| {
        match (fixed(a.labels.get(n)), fixed(b.labels.get(n))) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        }
    })
}

fn overlaps(
    profiles: &[Loaded],
    rules: &[PendingRule],
    decls: &BTreeMap<String, Decl>,
    errs: &mut Vec<SpecError>,
) {
    let samples = sample_lines(profiles);
    let mut writers: BTreeMap<&str, Vec<(usize, &Pending)>> = BTreeMap::new();
    for (i, r) in rules.iter().enumerate() {
        for a in &r.actions {
            writers.entry(a.metric.name).or_default().push((i, a));
        }
    }
    let at = |r: &PendingRule| {
        let p = &profiles[r.profile];
        let pos = p.positions.pos(&format!("rules[{}]", r.index));
        format!("{}:{}", p.positions.file().display(), pos.line)
    };
    for (metric, ws) in writers {
        if decls.contains_key(metric) {
            continue;
        }
        let mut reported = BTreeSet::new();
        for (k, (x, a)) in ws.iter().enumerate() {
            for (y, b) in &ws[k + 1..] {
                if x == y || reported.contains(&(*x, *y)) || !labels_overlap(a, b) {
                    continue;
                }
                let (rx, ry) = (&rules[*x], &rules[*y]);
                let Some(why) = conflict(a, b, rx, ry, &samples, a.metric) else {
                    continue;
                };
                reported.insert((*x, *y));
                errs.push(profiles[ry.profile].positions.error(
                    format!("rules[{}]", ry.index),
                    format!("`{}` and `{}` ({}) {why}", ry.name, rx.name, at(rx)),
                ));
            }
        }
    }
}

/// Why two writers of `m` in rules `rx` and `ry` are the same fact twice, with what to write.
fn conflict(
    a: &Pending,
    b: &Pending,
    rx: &PendingRule,
    ry: &PendingRule,
    samples: &[&str],
    m: &Metric,
) -> Option<String> {
    let name = m.name;
    let either = format!("R is `{}` or `{}`", ry.name, rx.name);
    match (a.write(), b.write()) {
        (Write::Set, _) | (_, Write::Set) => Some(format!(
            "both set `{name}`, and whichever line came last would win. Say in a profile how they combine, under `combine: {{{name}: …}}`: `{{prefer: [R]}}` (R is the truth once it has spoken), `{{only: [R]}}` (no other rule writes it) or `{{latest: true}}` (both report the current value); {either}"
        )),
        (Write::Total, _) | (_, Write::Total) => {
            let (total, other) = if a.write() == Write::Total { (rx, ry) } else { (ry, rx) };
            Some(format!(
                "both advance `{name}`: `{}` follows the node's running total of the events `{}` counts line by line, so each event would count twice. Say which is the truth, under `combine: {{{name}: …}}`: `{{prefer: [{}]}}` (the node's total, once it has written one) or `{{only: [R]}}`; {either}",
                total.name, other.name, total.name
            ))
        }
        (Write::Event, Write::Event) => {
            let line = samples
                .iter()
                .find(|l| rx.matches(l.as_bytes()) && ry.matches(l.as_bytes()))?;
            Some(format!(
                "both count `{name}` from the line {line:?}: one event would count twice. Say which rule is the truth, under `combine: {{{name}: …}}`: `{{prefer: [R]}}` or `{{only: [R]}}`; {either}"
            ))
        }
    }
}
