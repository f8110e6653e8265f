//! A dashboard panel of one rollout gate (`gate: NAME`): each condition over time, as the gate
//! answers it per chain and network (1 = a proceed condition held on every node, a rollback
//! condition holds on some node), with the stage's words, the seed and a link to the gate's
//! runbook section. The queries are the gate's own (`promql::gate_condition_group`), so the
//! panel cannot drift from the records, `chainwatch-gate check` or the canary templates.

use crate::model::{GateM, Model};
use crate::promql::{self, describe};
use crate::spec::v1::{Panel, Query};

use super::ctx::Ctx;

/// The gate a panel names, if it names one; an unknown name, or hand-written queries beside
/// it, are errors of the panel.
pub fn gate_of<'a>(
    m: &'a Model,
    cx: &mut Ctx,
    p: &Panel,
    field: &str,
) -> Result<Option<&'a GateM>, ()> {
    let Some(name) = &p.gate else {
        if p.title.trim().is_empty() {
            cx.err(&format!("{field}.title"), "a panel needs a title");
            return Err(());
        }
        return Ok(None);
    };
    let Some(g) = m.gates.iter().find(|g| &g.name == name) else {
        let known: Vec<&str> = m.gates.iter().map(|g| g.name.as_str()).collect();
        cx.err(
            &format!("{field}.gate"),
            format!("unknown gate `{name}` ({})", known.join(", ")),
        );
        return Err(());
    };
    if !p.queries.is_empty() {
        cx.err(
            &format!("{field}.queries"),
            "a gate panel's queries are the gate's conditions: leave `queries` out",
        );
        return Err(());
    }
    Ok(Some(g))
}

/// One query per condition: proceed conditions first, then rollback ones.
pub fn queries(g: &GateM) -> Vec<Query> {
    let one = |c: &crate::model::CondM, rollback: bool| Query {
        expr: Some(promql::gate_condition_group(g, c, rollback)),
        alert: None,
        state: None,
        legend: Some(format!(
            "{}: {} ({})",
            if rollback { "roll back" } else { "proceed" },
            c.name,
            g.by.iter()
                .map(|l| format!("{{{{{l}}}}}"))
                .collect::<Vec<_>>()
                .join("/")
        )),
    };
    g.proceed
        .iter()
        .map(|c| one(c, false))
        .chain(g.rollback.iter().map(|c| one(c, true)))
        .collect()
}

pub fn title(g: &GateM, p: &Panel) -> String {
    if p.title.trim().is_empty() {
        format!("{} ({})", g.stage, g.name)
    } else {
        p.title.clone()
    }
}

/// The stage, its seed and window, each condition in words, how to read the lines.
pub fn description(g: &GateM) -> String {
    let cond = |c: &crate::model::CondM| {
        let throughout = if c.throughout.is_zero() {
            String::new()
        } else {
            format!(", throughout {}", c.throughout)
        };
        format!(
            "{}: {} {} {}{throughout}",
            c.name,
            describe(&c.measure),
            c.op.as_str(),
            promql::num(c.threshold)
        )
    };
    let mut s = format!(
        "{} — {}; window {}; criteria {}.",
        g.stage,
        g.source,
        g.window,
        g.criteria.join(", ")
    );
    if !g.proceed.is_empty() {
        let p: Vec<String> = g.proceed.iter().map(cond).collect();
        s.push_str(&format!(" Proceed when, on every node: {}.", p.join("; ")));
    }
    if !g.rollback.is_empty() {
        let r: Vec<String> = g.rollback.iter().map(cond).collect();
        s.push_str(&format!(" Roll back when, on any node: {}.", r.join("; ")));
    }
    s.push_str(&format!(
        " 1 = the condition holds. `chainwatch-gate check --gate {}` answers with an exit code; runbook: {}",
        g.name, g.runbook_url
    ));
    s
}

pub fn links(g: &GateM) -> Vec<(String, String)> {
    vec![(format!("Runbook of gate {}", g.name), g.runbook_url.clone())]
}
