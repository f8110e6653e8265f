//! Two tiers (README, "Scaling"): each regional Prometheus scrapes its sidecars and evaluates
//! the regional groups; a global Prometheus receives only the recording rules they federate and
//! evaluates the `tier: global` groups. So a rule of a global group may read recording rules
//! (the regional ones arrive federated, the global ones it records itself) and `up` (its own
//! scrape of each regional server's /federate), never a scraped series; and a regional rule
//! never reads a global record, which no regional server has.

use crate::model::{Measure, Model, Source, Tier};
use crate::promql;

use super::ctx::Ctx;

/// Names a measure reads, with whether each is a recording rule (index) or `up`.
fn reads(m: &Measure, model: &Model) -> Vec<(String, Option<usize>, bool)> {
    let mut out: Vec<(String, Option<usize>, bool)> = m
        .selectors()
        .into_iter()
        .map(|s| match s.source {
            Source::Record(i) => (s.name.clone(), Some(i), false),
            Source::Up => (s.name.clone(), None, true),
            Source::Catalog { .. } => (s.name.clone(), None, false),
        })
        .collect();
    if let Measure::Raw { expr, .. } = m {
        if let Ok(e) = promql::parse(expr) {
            for vs in promql::selectors(&e) {
                let Some(name) = vs.name.clone() else {
                    continue;
                };
                let rec = model.records.iter().position(|r| r.name == name);
                let up = name == "up";
                out.push((name, rec, up));
            }
        }
    }
    out
}

fn check(model: &Model, cx: &mut Ctx, group: &str, path: &str, measures: &[&Measure]) {
    let tier = model.tier(group);
    for m in measures {
        for (name, rec, up) in reads(m, model) {
            match (tier, rec) {
                (Tier::Global, None) if !up => cx.err(
                    &format!("{path}.group"),
                    format!("group `{group}` is global: it reads only recording rules the regional Prometheus servers federate (or its own `up`), and `{name}` is a scraped series; record it in a regional group and read the record"),
                ),
                (Tier::Regional, Some(i)) if model.tier(&model.records[i].group) == Tier::Global => cx.err(
                    &format!("{path}.group"),
                    format!("`{name}` is recorded in global group `{}`, which no regional Prometheus evaluates; group `{group}` is regional", model.records[i].group),
                ),
                _ => {}
            }
        }
    }
}

pub fn tiers(model: &Model, cx: &mut Ctx) {
    for r in &model.records {
        check(model, cx, &r.group, &r.path, &[&r.measure]);
    }
    for a in &model.alerts {
        let ms: Vec<&Measure> = a.variants.iter().map(|v| &v.measure).collect();
        check(model, cx, &a.group, &a.path, &ms);
    }
    for g in &model.gates {
        let ms: Vec<&Measure> = g
            .proceed
            .iter()
            .chain(&g.rollback)
            .map(|c| &c.measure)
            .collect();
        check(model, cx, &g.group, &g.path, &ms);
    }
}
