//! A measure in words, for the `threshold` annotation, the runbook and test comments
//! (`chain_peers < 3`, `p99 of chain_block_propagation_seconds over 10m`).

use crate::model::{Measure, Scope};

use super::expr::{num, selector};

/// Short words for the measured quantity.
pub fn describe(m: &Measure) -> String {
    match m {
        Measure::Value { sel, func, agg } => {
            let name = selector(sel, &Scope::All);
            let mut d = match func {
                Some((f, w)) => format!("{f}({name}[{w}])"),
                None => name,
            };
            if let Some((a, by)) = agg {
                d = format!("{a} by ({}) of {d}", by.join(", "));
            }
            d
        }
        Measure::Ratio {
            num,
            den,
            window,
            rates,
            ..
        } => {
            let d: Vec<String> = den.iter().map(|s| selector(s, &Scope::All)).collect();
            let w = if *rates {
                format!(" (rates over {window})")
            } else {
                String::new()
            };
            format!("{} / ({}){w}", selector(num, &Scope::All), d.join(" + "))
        }
        Measure::FleetFraction {
            sel,
            op,
            value,
            by,
            liveness,
            ..
        } => {
            let down = if liveness.is_some() { " or down" } else { "" };
            format!(
                "fraction of nodes per {} with {} {} {}{down}",
                by.join("/"),
                sel.name,
                op.as_str(),
                num(*value)
            )
        }
        Measure::Quantile {
            hist,
            q,
            window,
            versus,
            ..
        } => {
            let p = format!("p{} of {} over {window}", num(q * 100.0), hist.name);
            match versus {
                Some(_) => format!("{p}, rust / legacy"),
                None => p,
            }
        }
        Measure::Deviation { .. } => "largest relative deviation from target".into(),
        Measure::Lag { sel, by } => {
            format!("{} behind the max of its {}", sel.name, by.join("/"))
        }
        Measure::Trend { sel, window, .. } => {
            format!("rate of {} over {window} / the {window} before", sel.name)
        }
        Measure::TimeFraction { window, .. } => format!("fraction of {window}"),
        Measure::Inventory { sel, window, .. } => {
            format!("nodes whose {} was seen within {window}", sel.name)
        }
        Measure::Liveness { .. } => "liveness (health check, scrape, series present)".into(),
        Measure::TargetUp { .. } => "up of the node's scrape target".into(),
        Measure::BucketRate { hist, window, .. } => {
            format!("rate of {}'s buckets over {window}", hist.name)
        }
        Measure::Derived { raw, .. } => describe(raw),
        Measure::NoProgress { .. } | Measure::Absence { .. } | Measure::Raw { .. } => {
            m.kind().into()
        }
    }
}
