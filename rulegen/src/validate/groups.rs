//! Rule groups with an evaluation interval of their own (`groups:`): the slow ones — rollups, the
//! SLO windows and day averages, the rollout gates — whose answers change over minutes, not
//! seconds. Each says why its interval; the interval stays under Prometheus's 5m lookback, so a
//! rule of another group (or a dashboard) reading their records at an instant always finds one.

use std::collections::{BTreeMap, BTreeSet};

use chainwatch_duration::Duration;

use crate::conventions::ROLLUP_GROUP;
use crate::model::{GroupM, Tier};
use crate::spec::Spec;

use super::ctx::{is_ident, Ctx};

/// Prometheus's default `--query.lookback-delta`.
pub const LOOKBACK: Duration = Duration(300_000);

/// The groups' intervals; `used` are the groups rules are in, `moved` the records of each group
/// that were moved into `rollups`, `rolled` whether rollups were made.
pub fn groups(
    spec: &Spec,
    cx: &mut Ctx,
    evaluation: Duration,
    used: &BTreeSet<String>,
    moved: &BTreeMap<String, Vec<String>>,
    rolled: bool,
) -> BTreeMap<String, GroupM> {
    let mut out = BTreeMap::new();
    for (name, g) in &spec.groups {
        let p = format!("groups.{name}");
        if !is_ident(name, "-") {
            cx.err(&p, format!("`{name}` is not a group name"));
            continue;
        }
        if !used.contains(name) && name != ROLLUP_GROUP {
            let msg = match moved.get(name) {
                Some(records) => format!(
                    "no recording rule, alert or gate is left in group `{name}`: its records over a day or more ({}) are recorded in `{ROLLUP_GROUP}`, with the rollups they read; remove the group or put other rules in it",
                    records.join(", ")
                ),
                None => format!("no recording rule, alert or gate is in group `{name}`"),
            };
            cx.err(&p, msg);
            continue;
        }
        let interval = match &g.interval {
            None => None,
            Some(text) => {
                let Some(interval) = cx.dur(text, &format!("{p}.interval")) else {
                    continue;
                };
                if interval < evaluation || interval >= LOOKBACK {
                    cx.err(
                        &format!("{p}.interval"),
                        format!("{interval} must be at least the evaluation interval ({evaluation}) and under Prometheus's {LOOKBACK} lookback, or rules and dashboards reading the group's records at an instant miss samples"),
                    );
                    continue;
                }
                Some(interval)
            }
        };
        if g.why.trim().is_empty() {
            cx.err(
                &format!("{p}.why"),
                "say why this group has its own interval or tier",
            );
            continue;
        }
        let tier = match g.tier.as_deref() {
            None | Some("regional") => Tier::Regional,
            Some("global") => Tier::Global,
            Some(other) => {
                cx.err(
                    &format!("{p}.tier"),
                    format!("`{other}`: a group's tier is `regional` (the default) or `global`"),
                );
                continue;
            }
        };
        if interval.is_none() && tier == Tier::Regional {
            cx.err(
                &p,
                "give the group an `interval` of its own, or `tier: global`",
            );
            continue;
        }
        if tier == Tier::Global && name == ROLLUP_GROUP {
            cx.err(
                &format!("{p}.tier"),
                "rollups read scraped series: they run where the sidecars are scraped",
            );
            continue;
        }
        out.insert(
            name.clone(),
            GroupM {
                interval,
                why: g.why.trim().to_string(),
                tier,
            },
        );
    }
    if rolled && !spec.groups.contains_key(ROLLUP_GROUP) {
        cx.err(
            "groups",
            format!("windows of a day or more are answered from rollups recorded in group `{ROLLUP_GROUP}`: give it an interval (`groups: {{{ROLLUP_GROUP}: {{interval: 3m, why: …}}}}`)"),
        );
    }
    out
}
