//! The priorities (keys of `severities:`, P0..P3 in the seeds; any label-value-safe name): their
//! level (critical, warning or info: the `severity` label), response time and the receivers
//! every alert of them reaches.
//! (Their Alertmanager timings are part of the routes: `routes`.)

use std::collections::BTreeMap;

use crate::conventions::LEVELS;
use crate::model::SeverityM;
use crate::spec::Spec;

use super::ctx::Ctx;

pub fn severities(spec: &Spec, cx: &mut Ctx) -> BTreeMap<String, SeverityM> {
    let mut severities = BTreeMap::new();
    for (name, s) in &spec.severities {
        let p = format!("severities.{name}");
        // Safe in a label value, a route matcher (`priority="…"`), a regex alternative of an
        // inhibition (`priority=~"P2|P3"`) and an anchor of the runbook.
        let safe = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !safe {
            cx.err(
                &p,
                format!("priority `{name}` may only hold letters, digits, `_` and `-`"),
            );
        }
        if let Some(other) = spec
            .severities
            .keys()
            .find(|o| *o != name && o.eq_ignore_ascii_case(name))
        {
            cx.err(
                &p,
                format!("priority `{name}` differs from `{other}` only in case: give them distinct names"),
            );
        }
        if !LEVELS.contains(&s.level.as_str()) {
            cx.err(
                &format!("{p}.level"),
                format!("unknown level `{}` (critical, warning or info)", s.level),
            );
        }
        for (i, r) in s.receivers.iter().enumerate() {
            if !spec.receivers.contains_key(r) {
                cx.err(
                    &format!("{p}.receivers[{i}]"),
                    format!("unknown receiver `{r}`"),
                );
            }
        }
        severities.insert(
            name.clone(),
            SeverityM {
                name: name.clone(),
                level: s.level.clone(),
                response_time: s.response_time.clone(),
                description: s.description.clone(),
                receivers: s.receivers.clone(),
            },
        );
    }
    severities
}
