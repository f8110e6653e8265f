//! Rollout gates: may a stage proceed (every `proceed` condition held throughout the window on
//! every node of the group), must it roll back (any `rollback` condition holds on any node).

use chainwatch_duration::Duration;

use crate::conventions;
use crate::model::{CondM, GateM};
use crate::promql;
use crate::spec::v1::{Condition, Gate};
use crate::spec::Spec;

use super::ctx::{is_ident, Ctx};
use super::measures::measure;
use super::selectors::check_expr;

pub fn gates(spec: &Spec, cx: &mut Ctx) -> Vec<GateM> {
    let mut out = Vec::new();
    for (i, g) in spec.gates.iter().enumerate() {
        if let Some(gm) = gate(spec, cx, i, g) {
            out.push(gm);
        }
    }
    out
}

fn gate(spec: &Spec, cx: &mut Ctx, i: usize, g: &Gate) -> Option<GateM> {
    let p = format!("gates[{i}]");
    if !is_ident(&g.name.replace('-', "_"), "") {
        cx.err(
            &format!("{p}.name"),
            format!("`{}` is not a gate name (words joined by -)", g.name),
        );
        return None;
    }
    if let Some(prev) = cx.names.insert(format!("gate:{}", g.name), p.clone()) {
        cx.err(
            &format!("{p}.name"),
            format!("duplicate gate `{}` (also {prev})", g.name),
        );
        return None;
    }
    cx.check_criteria(&g.criteria, &format!("{p}.criteria"));
    let window = cx.dur(&g.window, &format!("{p}.window"))?;
    let by = cx.by(g.by.as_ref(), &format!("{p}.by"), &["chain", "network"]);
    if let Some(c) = &g.chain {
        if !cx.chains.contains_key(c) {
            let known: Vec<&str> = cx.chains.keys().map(|s| s.as_str()).collect();
            cx.err(
                &format!("{p}.chain"),
                format!("unknown chain `{c}` (chains: {})", known.join(", ")),
            );
        }
    }
    if g.proceed.is_empty() && g.rollback.is_empty() {
        cx.err(&p, "a gate needs `proceed` or `rollback` conditions");
    }
    // Inside a gate, a measure's window defaults to the gate's window.
    let saved_rate_window = cx.rate_window;
    cx.rate_window = window;
    // A proceed condition must have held throughout the window; a rollback one trips at once.
    let proceed = conditions(cx, &g.proceed, &format!("{p}.proceed"), window);
    let rollback = conditions(cx, &g.rollback, &format!("{p}.rollback"), Duration::ZERO);
    cx.rate_window = saved_rate_window;
    let gm = GateM {
        name: g.name.clone(),
        criteria: g.criteria.clone(),
        group: g.group.clone(),
        source: g.source.clone(),
        stage: g.stage.clone(),
        window,
        by,
        chain: g.chain.clone(),
        proceed,
        rollback,
        runbook_url: conventions::runbook_url(
            &spec.defaults.runbook_base_url,
            &conventions::gate_heading(&g.name),
        ),
        path: p.clone(),
    };
    for e in [promql::gate_proceed(&gm), promql::gate_rollback(&gm)]
        .into_iter()
        .flatten()
    {
        check_expr(cx, &e, &p);
    }
    Some(gm)
}

/// The valid conditions of one list; `throughout` defaults to `default_throughout`.
fn conditions(
    cx: &mut Ctx,
    list: &[Condition],
    field: &str,
    default_throughout: Duration,
) -> Vec<CondM> {
    let mut out = Vec::new();
    for (j, c) in list.iter().enumerate() {
        let cp = format!("{field}[{j}]");
        let block_time = cx.default_block_time;
        let Some(m) = measure(cx, &c.kinds(), &cp, block_time) else {
            continue;
        };
        if m.is_condition() || matches!(m, crate::model::Measure::Inventory { .. }) {
            cx.err(
                &cp,
                format!(
                    "`{}` cannot be a gate condition: use a measure with a value",
                    m.kind()
                ),
            );
            continue;
        }
        let Some(op) = cx.op(&c.op, &format!("{cp}.op")) else {
            continue;
        };
        let throughout = match &c.throughout {
            Some(t) => match cx.dur(t, &format!("{cp}.throughout")) {
                Some(d) => d,
                None => continue,
            },
            None => default_throughout,
        };
        // Held throughout a day or more: a subquery re-reading the condition at every step of
        // it, at every evaluation (see `derive`); a long window with `throughout: 0s` says it.
        if throughout >= super::derive::LONG {
            cx.err(
                &format!("{cp}.throughout"),
                format!("held throughout {throughout} would re-evaluate the condition all over {throughout} at every evaluation: give the measure the window (rollups answer windows of {} or more) and `throughout: 0s`", super::derive::LONG),
            );
            continue;
        }
        out.push(CondM {
            name: c.name.clone(),
            measure: m,
            op,
            threshold: c.threshold,
            throughout,
        });
    }
    out
}
