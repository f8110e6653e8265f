//! `outputs`: the Kubernetes manifests and the mixin. Names and labels are checked as the API
//! server checks them (DNS-1123 names, label keys and values, a container port's IANA name), so
//! a manifest that renders also applies.

use crate::conventions::{self, MAX_OBJECT_NAME_LEN};
use crate::model::{KubernetesM, LabelMap, Model, OutputsM, PodMonitorM};
use crate::spec::v1::Kubernetes;
use crate::spec::Spec;

use super::ctx::Ctx;

pub fn outputs(spec: &Spec, m: &Model, cx: &mut Ctx) -> OutputsM {
    let Some(o) = &spec.outputs else {
        return OutputsM::default();
    };
    OutputsM {
        kubernetes: o.kubernetes.as_ref().map(|k| kubernetes(k, m, cx)),
        mixin: o.mixin,
    }
}

fn kubernetes(k: &Kubernetes, m: &Model, cx: &mut Ctx) -> KubernetesM {
    let p = "outputs.kubernetes";
    if !is_dns_label(&k.namespace) {
        cx.err(
            &format!("{p}.namespace"),
            format!("`{}` is not a namespace name (a DNS-1123 label: lowercase letters, digits and `-`, at most 63)", k.namespace),
        );
    }
    let labels = labels(&k.labels, &format!("{p}.labels"), cx);
    // Every generated object's name must be one the API server accepts.
    for g in m.rule_groups() {
        let name = conventions::prometheus_rule_name(g);
        if !is_dns_subdomain(&name) {
            cx.err(
                p,
                format!("rule group `{g}` would name the PrometheusRule `{name}`, which is not a Kubernetes object name (lowercase letters, digits, `-` and `.`)"),
            );
        }
    }
    for d in &m.dashboards {
        let name = conventions::dashboard_configmap_name(&d.id);
        if !is_dns_subdomain(&name) {
            cx.err(
                p,
                format!("dashboard `{}` would name the ConfigMap `{name}`, which is not a Kubernetes object name (lowercase letters, digits, `-` and `.`)", d.id),
            );
        }
    }
    let dp = format!("{p}.dashboards");
    let d = &k.dashboards;
    label_key(&d.label, &format!("{dp}.label"), cx);
    label_value(&d.label_value, &format!("{dp}.label_value"), cx);
    label_key(&d.folder_annotation, &format!("{dp}.folder_annotation"), cx);
    KubernetesM {
        namespace: k.namespace.clone(),
        labels,
        pod_monitor: pod_monitor(k, cx),
        dashboard_label: (d.label.clone(), d.label_value.clone()),
        folder_annotation: d.folder_annotation.clone(),
    }
}

fn pod_monitor(k: &Kubernetes, cx: &mut Ctx) -> PodMonitorM {
    let p = "outputs.kubernetes.pod_monitor";
    let pm = &k.pod_monitor;
    if pm.selector.is_empty() {
        cx.err(
            &format!("{p}.selector"),
            "the labels of the sidecar's pods: an empty selector would scrape every pod of the namespace",
        );
    }
    let selector = labels(&pm.selector, &format!("{p}.selector"), cx);
    if !is_port_name(&pm.port) {
        cx.err(
            &format!("{p}.port"),
            format!("`{}` is not a container port name (IANA service name: at most 15 lowercase letters, digits and `-`, with a letter, no `--`, no `-` at either end)", pm.port),
        );
    }
    let path = pm.path.clone().unwrap_or_else(|| "/metrics".into());
    if !path.starts_with('/') || path.contains(char::is_whitespace) {
        cx.err(
            &format!("{p}.path"),
            format!("`{path}` is not an HTTP path (starts with `/`, no spaces)"),
        );
    }
    let interval = match &pm.interval {
        Some(t) => {
            let field = format!("{p}.interval");
            match cx.dur(t, &field) {
                Some(d) if d.is_zero() => {
                    cx.err(&field, "must be more than 0s");
                    cx.scrape
                }
                Some(d) => d,
                None => cx.scrape,
            }
        }
        None => cx.scrape,
    };
    PodMonitorM {
        selector,
        port: pm.port.clone(),
        path,
        interval,
        honor_labels: pm.honor_labels,
    }
}

fn labels(l: &LabelMap, field: &str, cx: &mut Ctx) -> LabelMap {
    for (k, v) in l {
        label_key(k, &format!("{field}.{k}"), cx);
        label_value(v, &format!("{field}.{k}"), cx);
    }
    l.clone()
}

/// `[prefix/]name`: the prefix a DNS subdomain, the name at most 63 alphanumerics, `-`, `_`, `.`,
/// beginning and ending alphanumeric.
fn label_key(k: &str, field: &str, cx: &mut Ctx) {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if prefix.is_some_and(|p| !is_dns_subdomain(p)) || !is_label_name(name) {
        cx.err(
            field,
            format!("`{k}` is not a Kubernetes label key ([prefix/]name: name at most 63 letters, digits, `-`, `_`, `.`, alphanumeric at both ends; prefix a DNS subdomain)"),
        );
    }
}

fn label_value(v: &str, field: &str, cx: &mut Ctx) {
    if !v.is_empty() && !is_label_name(v) {
        cx.err(
            field,
            format!("`{v}` is not a Kubernetes label value (at most 63 letters, digits, `-`, `_`, `.`, alphanumeric at both ends)"),
        );
    }
}

fn is_label_name(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(alnum)
        && s.ends_with(alnum)
        && s.chars()
            .all(|c| alnum(c) || c == '-' || c == '_' || c == '.')
}

fn is_dns_label(s: &str) -> bool {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(ok)
        && s.ends_with(ok)
        && s.chars().all(|c| ok(c) || c == '-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= MAX_OBJECT_NAME_LEN && s.split('.').all(is_dns_label)
}

fn is_port_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && s.chars().any(|c| c.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_the_api_server_takes_them() {
        assert!(is_dns_label("monitoring"));
        assert!(!is_dns_label("Monitoring"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_dns_subdomain("chainwatch-cid-gossip"));
        assert!(is_dns_subdomain("example.com"));
        assert!(!is_dns_subdomain("chainwatch-cid_gossip"));
        assert!(is_label_name("kube-prometheus-stack"));
        assert!(is_label_name("A_b.c"));
        assert!(!is_label_name("a b"));
        assert!(!is_label_name("-a"));
        assert!(is_port_name("metrics"));
        assert!(is_port_name("http-19942"));
        assert!(!is_port_name("19942"));
        assert!(!is_port_name("Metrics"));
        assert!(!is_port_name("a--b"));
        assert!(!is_port_name("chainwatch-metrics"));
    }
}
