//! Stage 2, validation: the spec → the model, every error collected by one `Ctx` and reported
//! as `file:line:col: field.path: message`; nothing is rendered from an input with an error.
//!
//! The order below is the order of the checks. The metrics declared for this file come first
//! (`declared`: its `metrics:` and the files of `catalogs:`), then the rules, each kind in its own
//! file: the defaults and criteria (`defaults`), severities and receivers' types, recording rules
//! (each may use the ones above it), alerts, gates, the documentation fields. Only when they hold
//! are the derived recording rules made (`derive`: rollups of long windows, shared bucket rates)
//! and the groups' own intervals checked (`groups`); then the second half runs, which reads the
//! alerts and rules built: Alertmanager's receivers, routes and inhibitions, then Grafana's
//! dashboards and panels, then the outputs (Kubernetes names and labels, the mixin).

mod alerts;
mod ctx;
mod declared;
mod defaults;
mod derive;
mod docs;
mod gate_panels;
mod gates;
mod groups;
mod inhibitions;
mod measures;
mod outputs;
mod panels;
mod receivers;
mod records;
mod routes;
mod selectors;
mod severities;
mod slos;
mod tiers;

use std::collections::BTreeMap;

use chainwatch_catalog::CONSTANT_LABELS;
use chainwatch_yaml::SpecError;

use crate::model::{Alerting, Labels, Model};
use crate::spec::{Input, Locator, Spec};

use ctx::Ctx;

/// The model of a loaded input, or every error of it (the overlay's with the spec's).
pub fn model(input: &Input) -> Result<Model, Vec<SpecError>> {
    let mut errs = input.overlay_errors.clone();
    match check(&input.spec, &input.locator) {
        Ok(m) if errs.is_empty() => Ok(m),
        Ok(_) => Err(errs),
        Err(e) => {
            errs.extend(e);
            ctx::sort_errors(&mut errs);
            Err(errs)
        }
    }
}

fn check(spec: &Spec, loc: &Locator) -> Result<Model, Vec<SpecError>> {
    let mut cx = Ctx::new(loc);
    if !defaults::version(spec, &mut cx) {
        return Err(cx.into_errors());
    }
    declared::catalog(spec, loc, &mut cx);
    let evaluation_interval = defaults::defaults(spec, &mut cx);
    defaults::criteria(spec, &mut cx);
    let severities = severities::severities(spec, &mut cx);
    receivers::types(spec, &mut cx);
    receivers::scope_receivers(spec, &mut cx);
    defaults::chains(spec, &mut cx);
    records::records(spec, &mut cx);
    let slos = slos::records(spec, &mut cx);
    let mut alerts = alerts::alerts(spec, &mut cx, &severities);
    alerts.extend(slos::alerts(spec, &mut cx, &severities, &slos));
    let mut gates = gates::gates(spec, &mut cx);
    let criteria_text = docs::criteria_text(spec, &mut cx);
    let not_measurable = docs::not_measurable(spec, &mut cx);
    cx.stop()?;
    // What makes the rules affordable: rollups of long windows, shared bucket rates; then the
    // intervals of the slow groups.
    let declared_in: Vec<String> = cx.records.iter().map(|r| r.group.clone()).collect();
    let rolled = derive::derive(&mut cx, &mut alerts, &mut gates);
    // Records derive moved into `rollups`, by the group thresholds.yaml gave them: a group left
    // empty by the move is reported as such, not as a group nobody put a rule in.
    let mut moved: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (r, was) in cx.records.iter().zip(&declared_in) {
        if r.group != *was {
            moved.entry(was.clone()).or_default().push(r.name.clone());
        }
    }
    let used = cx
        .records
        .iter()
        .map(|r| r.group.clone())
        .chain(alerts.iter().map(|a| a.group.clone()))
        .chain(gates.iter().map(|g| g.group.clone()))
        .collect();
    let groups = groups::groups(spec, &mut cx, evaluation_interval, &used, &moved, rolled);
    cx.stop()?;
    let mut model = Model {
        scrape_interval: cx.scrape,
        evaluation_interval,
        criteria: spec.criteria.clone(),
        criteria_text,
        severities,
        alerts,
        records: std::mem::take(&mut cx.records),
        gates,
        slos,
        groups,
        not_measurable,
        chains: cx.chains.clone(),
        runbooks: docs::runbooks(spec),
        alerting: None,
        grafana: None,
        dashboards: Vec::new(),
        outputs: Default::default(),
    };
    tiers::tiers(&model, &mut cx);
    cx.stop()?;
    model.alerting = alerting(spec, &model, &mut cx);
    (model.grafana, model.dashboards) = panels::grafana(spec, &model, &mut cx);
    model.outputs = outputs::outputs(spec, &model, &mut cx);
    cx.stop()?;
    Ok(model)
}

/// Alertmanager: receivers, the alertgroup rules, then (with an `alertmanager` section) the
/// routes and the explicit inhibitions, the generated ones last.
fn alerting(spec: &Spec, m: &Model, cx: &mut Ctx) -> Option<Alerting> {
    let receivers = receivers::receivers(spec, cx);
    let group_rules = inhibitions::alertgroups(m, cx);
    let am = spec.alertmanager.as_ref()?;
    // Every label any alert can carry: what grouping, matchers and `equal` may name.
    let mut universe: Labels = m.alerts.iter().flat_map(|a| a.carried_labels()).collect();
    universe.extend(CONSTANT_LABELS.iter().map(|s| s.to_string()));
    universe.insert("alertname".into());
    let mut al = routes::routes(spec, am, m, receivers, &universe, cx);
    al.inhibitions =
        inhibitions::inhibitions(&am.inhibitions, m, &universe, al.heartbeat.as_ref(), cx);
    al.inhibitions.extend(group_rules);
    Some(al)
}
