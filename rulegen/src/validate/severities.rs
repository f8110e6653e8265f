//! Severities P0..P9: their level, response time and the receivers every alert of them reaches.
//! (Their Alertmanager timings are part of the routes: `routes`.)

use std::collections::BTreeMap;

use crate::model::SeverityM;
use crate::spec::Spec;

use super::ctx::Ctx;

pub fn severities(spec: &Spec, cx: &mut Ctx) -> BTreeMap<String, SeverityM> {
    let mut severities = BTreeMap::new();
    for (name, s) in &spec.severities {
        let p = format!("severities.{name}");
        if !(name.len() == 2 && name.starts_with('P') && name.as_bytes()[1].is_ascii_digit()) {
            cx.err(&p, format!("severity `{name}` is not P0..P9"));
        }
        if !["critical", "warning", "info"].contains(&s.level.as_str()) {
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
