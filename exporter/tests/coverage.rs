//! Every metric a criteria.md row needs is produced by at least one built-in profile, from log
//! lines or from a stats API.

use std::collections::BTreeSet;

use chainwatch_exporter::profile::{self, spec::JsonMetricSpec};

fn json_metrics(specs: &[JsonMetricSpec], out: &mut BTreeSet<String>) {
    for s in specs {
        out.extend(
            [&s.gauge, &s.counter, &s.state]
                .into_iter()
                .flatten()
                .cloned(),
        );
        json_metrics(&s.metrics, out);
    }
}

pub fn produced() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for b in profile::BUILTINS {
        let l = profile::load(b.name).unwrap();
        for r in &l.spec.rules {
            for a in &r.actions {
                out.extend(
                    [&a.counter, &a.gauge, &a.histogram, &a.state]
                        .into_iter()
                        .flatten()
                        .cloned(),
                );
            }
        }
        for api in l.spec.apis.values() {
            json_metrics(&api.metrics, &mut out);
            for c in &api.calls {
                json_metrics(&c.metrics, &mut out);
            }
            for s in &api.series {
                out.extend([&s.gauge, &s.counter].into_iter().flatten().cloned());
            }
        }
    }
    out
}

/// Metrics the sidecar writes itself rather than through a profile.
const BY_SOURCES: &[&str] = &["chain_node_up", "chain_node_health_probe_duration_seconds"];

#[test]
fn every_criterion_metric_has_a_producer() {
    let produced = produced();
    let missing: Vec<&str> = chainwatch_catalog::CATALOG
        .iter()
        .filter(|m| m.is_node_metric() && !m.criteria.is_empty())
        .map(|m| m.name)
        .filter(|n| !produced.contains(*n) && !BY_SOURCES.contains(n))
        .collect();
    assert!(
        missing.is_empty(),
        "no built-in profile produces: {missing:?}"
    );
}
