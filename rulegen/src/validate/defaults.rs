//! The version, `defaults`, the criteria list and the chains: what every later check reads.

use chainwatch_duration::Duration;

use crate::spec::Spec;

use super::ctx::Ctx;

/// Only version 1 is read; another version stops validation at once.
pub fn version(spec: &Spec, cx: &mut Ctx) -> bool {
    if spec.version != 1 {
        cx.err(
            "version",
            format!(
                "unsupported version {} (this rulegen reads version 1)",
                spec.version
            ),
        );
        return false;
    }
    true
}

/// Scrape and evaluation intervals, the default rate window and block time. Returns the
/// evaluation interval (15s when it does not parse: that is an error already).
pub fn defaults(spec: &Spec, cx: &mut Ctx) -> Duration {
    let d = &spec.defaults;
    let scrape = cx.dur(&d.scrape_interval, "defaults.scrape_interval");
    let eval = cx.dur(&d.evaluation_interval, "defaults.evaluation_interval");
    if let Some(s) = scrape {
        if s.is_zero() {
            cx.err("defaults.scrape_interval", "must be more than 0s");
        }
        cx.scrape = s;
    }
    if let Some(w) = cx.dur(&d.rate_window, "defaults.rate_window") {
        cx.rate_window = w;
    }
    if let Some(b) = cx.dur(&d.block_time, "defaults.block_time") {
        cx.default_block_time = b;
    }
    eval.unwrap_or(Duration::from_secs(15))
}

/// Criterion ids such as E1 or N14, each listed once.
pub fn criteria(spec: &Spec, cx: &mut Ctx) {
    for (i, c) in spec.criteria.iter().enumerate() {
        if !c.chars().next().is_some_and(|x| x.is_ascii_uppercase())
            || !c.chars().all(|x| x.is_ascii_alphanumeric())
        {
            cx.err(
                &format!("criteria[{i}]"),
                format!("`{c}` is not a criterion id such as E1 or N14"),
            );
        }
        if !cx.criteria.insert(c.clone()) {
            cx.err(
                &format!("criteria[{i}]"),
                format!("criterion `{c}` listed twice"),
            );
        }
    }
}

/// Each chain's expected block time (`2x block_time` windows use it).
pub fn chains(spec: &Spec, cx: &mut Ctx) {
    for (name, c) in &spec.chains {
        if let Some(d) = cx.dur(&c.block_time, &format!("chains.{name}.block_time")) {
            cx.chains.insert(name.clone(), d);
        }
    }
}
