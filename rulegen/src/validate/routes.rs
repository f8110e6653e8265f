//! The Alertmanager routes: the default receiver, grouping, timings (the root's, each
//! severity's), and the heartbeat route of the dead man's switch. Receivers are checked in
//! `receivers`, inhibitions in `inhibitions`; `validate` puts them together.

use std::collections::BTreeMap;

use chainwatch_duration::Duration;

use crate::conventions;
use crate::model::{Alerting, HeartbeatM, Labels, Model, PriorityRoute, ReceiverM, Timings};
use crate::spec::v1::{Alertmanager, Heartbeat};
use crate::spec::Spec;

use super::ctx::Ctx;

/// Alertmanager's own defaults, for timings nobody sets.
fn alertmanager_defaults() -> Timings {
    Timings {
        group_wait: Duration::from_secs(30),
        group_interval: Duration::from_secs(300),
        repeat_interval: Duration::from_secs(14400),
    }
}

/// Everything of the `alertmanager` section but the inhibitions. `universe`: every label an
/// alert can carry.
pub fn routes(
    spec: &Spec,
    am: &Alertmanager,
    m: &Model,
    receivers: BTreeMap<String, ReceiverM>,
    universe: &Labels,
    cx: &mut Ctx,
) -> Alerting {
    let p = "alertmanager";
    if !receivers.contains_key(&am.default_receiver) {
        cx.err(
            &format!("{p}.default_receiver"),
            format!("unknown receiver `{}`", am.default_receiver),
        );
    }
    for (i, l) in am.group_by.iter().enumerate() {
        if !universe.contains(l) {
            cx.err(
                &format!("{p}.group_by[{i}]"),
                format!("no alert carries label `{l}`"),
            );
        }
    }
    let resolve_timeout = am
        .resolve_timeout
        .as_ref()
        .and_then(|r| cx.dur(r, &format!("{p}.resolve_timeout")));
    let root = timings(
        cx,
        p,
        [
            Some(&am.group_wait),
            Some(&am.group_interval),
            Some(&am.repeat_interval),
        ],
        alertmanager_defaults(),
    );
    let mut priorities = Vec::new();
    for (name, s) in &spec.severities {
        let sp = format!("severities.{name}");
        if s.receivers.is_empty() {
            cx.err(
                &sp,
                "a severity needs `receivers`: its alerts would reach nobody",
            );
        }
        let t = timings(
            cx,
            &sp,
            [
                s.group_wait.as_ref(),
                s.group_interval.as_ref(),
                s.repeat_interval.as_ref(),
            ],
            root,
        );
        priorities.push(PriorityRoute {
            name: name.clone(),
            level: s.level.clone(),
            timings: t,
            receivers: s.receivers.clone(),
        });
    }
    priorities.sort_by_key(|r| (conventions::level_rank(&r.level), r.name.clone()));
    let heartbeat = am
        .heartbeat
        .as_ref()
        .map(|h| heartbeat(h, m, &receivers, root, cx));
    Alerting {
        default_receiver: am.default_receiver.clone(),
        group_by: am.group_by.clone(),
        resolve_timeout,
        root,
        heartbeat,
        priorities,
        priority_label: conventions::PRIORITY_LABEL.into(),
        severity_label: conventions::SEVERITY_LABEL.into(),
        scope_receivers: spec.scope_receivers.clone(),
        receivers,
        inhibitions: Vec::new(),
    }
}

/// The dead man's switch: an always-firing alert carrying `labels` goes to `receiver` alone,
/// at least every 10 minutes.
fn heartbeat(
    h: &Heartbeat,
    m: &Model,
    receivers: &BTreeMap<String, ReceiverM>,
    root: Timings,
    cx: &mut Ctx,
) -> HeartbeatM {
    let hp = "alertmanager.heartbeat";
    if !receivers.contains_key(&h.receiver) {
        cx.err(
            &format!("{hp}.receiver"),
            format!("unknown receiver `{}`", h.receiver),
        );
    }
    if h.labels.is_empty() {
        cx.err(
            &format!("{hp}.labels"),
            "the heartbeat needs labels that select the always-firing alert",
        );
    }
    let hb = HeartbeatM {
        receiver: h.receiver.clone(),
        labels: h.labels.clone(),
        timings: root,
    };
    if !h.labels.is_empty() && !m.alerts.iter().any(|a| hb.fed_by(a)) {
        let want: Vec<String> = h
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        cx.err(
            &format!("{hp}.labels"),
            format!(
                "no alert carries {}: the dead man's switch would never be fed (give these labels to an always-firing alert)",
                want.join(", ")
            ),
        );
    }
    let t = timings(
        cx,
        hp,
        [
            Some(&h.group_wait),
            Some(&h.group_interval),
            Some(&h.repeat_interval),
        ],
        root,
    );
    if t.repeat_interval > Duration::from_secs(600) {
        cx.err(
            &format!("{hp}.repeat_interval"),
            format!(
                "a heartbeat every {} is too slow for a dead man's switch (at most 10m)",
                t.repeat_interval
            ),
        );
    }
    HeartbeatM { timings: t, ..hb }
}

/// group_wait, group_interval, repeat_interval under `p` (each defaulting to `default`).
fn timings(cx: &mut Ctx, p: &str, [w, i, r]: [Option<&String>; 3], default: Timings) -> Timings {
    let mut t = default;
    if let Some(d) = w.and_then(|x| cx.dur(x, &format!("{p}.group_wait"))) {
        t.group_wait = d;
    }
    if let Some(d) = i.and_then(|x| cx.dur(x, &format!("{p}.group_interval"))) {
        t.group_interval = d;
    }
    if let Some(d) = r.and_then(|x| cx.dur(x, &format!("{p}.repeat_interval"))) {
        t.repeat_interval = d;
    }
    if t.group_interval.is_zero() {
        cx.err(&format!("{p}.group_interval"), "must be more than 0s");
    }
    if t.repeat_interval < t.group_interval {
        cx.err(
            &format!("{p}.repeat_interval"),
            format!(
                "{} is shorter than group_interval {}: Alertmanager repeats only on group_interval ticks",
                t.repeat_interval, t.group_interval
            ),
        );
    }
    t
}
