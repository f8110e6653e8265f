//! Every name and path rulegen generates, in one place: rule groups and their files, test files,
//! the rollout gate records, Alertmanager's files and generated inhibition names, Grafana's files
//! and UIDs, the runbook and its anchors, and the label values of the generated test series.
//! Validation, the steps and the writer all ask here, so a name cannot drift between the file
//! that defines it and the file that refers to it.

/// Directories rulegen owns entirely: a file in them that it does not generate is extra.
pub const OWNED_DIRS: &[&str] = &[
    "prometheus",
    "alertmanager",
    "grafana",
    KUBERNETES_DIR,
    MIXIN_DIR,
    CANARY_DIR,
];
/// Generated files in directories shared with hand-written ones.
pub const OWNED_FILES: &[&str] = &[RUNBOOK_PATH];
/// Extensions of generated files (extra ones are removed on write).
pub const GENERATED_EXT: &[&str] = &["yml", "yaml", "json", "tsv", "md", "tmpl", "libsonnet"];

// ------------------------------------------------------------------------------- Prometheus

pub const PROMETHEUS_DIR: &str = "prometheus";

/// The Prometheus rule group of a thresholds.yaml `group`.
pub fn rule_group(group: &str) -> String {
    format!("chainwatch-{group}")
}

/// The rule file of a group, relative to `prometheus/rules/`.
pub fn rule_file_name(group: &str) -> String {
    format!("{group}.rules.yml")
}

/// Where the rule files of `tier: global` groups go, below `prometheus/rules/`: a regional
/// Prometheus loads `rules/*.rules.yml`, the global one `rules/global/*.rules.yml`, a single
/// Prometheus both.
pub const GLOBAL_RULES_DIR: &str = "global";

/// The rule file of a group, relative to `prometheus/rules/`, by the group's tier.
fn rule_file_in_tier(group: &str, global: bool) -> String {
    if global {
        format!("{GLOBAL_RULES_DIR}/{}", rule_file_name(group))
    } else {
        rule_file_name(group)
    }
}

pub fn rule_file_path(group: &str, global: bool) -> String {
    format!(
        "{PROMETHEUS_DIR}/rules/{}",
        rule_file_in_tier(group, global)
    )
}

/// A rule file as a test file (two levels below `prometheus/tests/`) names it.
pub fn rule_file_from_test(group: &str, global: bool) -> String {
    format!("../../rules/{}", rule_file_in_tier(group, global))
}

/// What a promtool test file tests: its directory under `prometheus/tests/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestKind {
    Alert,
    Record,
    Gate,
    Slo,
}

/// The test file of an alert, recording rule or gate.
pub fn test_file_path(kind: TestKind, name: &str) -> String {
    let (dir, stem) = match kind {
        TestKind::Alert => ("alerts", name.to_string()),
        TestKind::Record => ("records", name.replace(':', "_")),
        TestKind::Gate => ("gates", name.to_string()),
        TestKind::Slo => ("slos", name.to_string()),
    };
    format!("{PROMETHEUS_DIR}/tests/{dir}/{stem}.test.yml")
}

/// The group of the rollups long windows are built from (`prometheus/rules/rollups.rules.yml`).
pub const ROLLUP_GROUP: &str = "rollups";

/// A rollup of a metric: `node:<metric without _total>:<op><window>` (`node:chain_node_up:avg1h`).
pub fn rollup_record(metric: &str, op: &str, window: &str) -> String {
    let stem = metric.strip_suffix("_total").unwrap_or(metric);
    format!("node:{stem}:{op}{window}")
}

/// A recording rule over a long window, over the rollup window instead (`…:ratio_1w` →
/// `…:ratio_1h`): the rollup of a time fraction takes its reader's name.
pub fn rollup_of_record(record: &str, long: &str, rollup: &str) -> String {
    match record.strip_suffix(long) {
        Some(stem) => format!("{stem}{rollup}"),
        None => format!("{record}_{rollup}"),
    }
}

/// A histogram's bucket rates shared by its quantiles: `<level>:<histogram>_bucket:rate<window>`,
/// the level named by the grouping (`network` for chain and network, `node` for every constant
/// label).
pub fn bucket_record(by: &[String], histogram: &str, window: &str) -> String {
    let constant: Vec<&str> = ["chain", "network", "region", "node"].to_vec();
    let rest: Vec<&str> = by
        .iter()
        .map(String::as_str)
        .filter(|l| !constant.contains(l))
        .collect();
    let level = if constant.iter().all(|c| by.iter().any(|l| l == c)) {
        "node".to_string()
    } else if by.iter().any(|l| l == "network") {
        "network".to_string()
    } else {
        by.join("_")
    };
    let level = if rest.is_empty() || level == "node" {
        level
    } else {
        format!("{level}_{}", rest.join("_"))
    };
    format!("{level}:{histogram}_bucket:rate{window}")
}

/// Records of the rollout gates: 1 when a stage may proceed / must roll back (label `gate`).
pub const GATE_PROCEED: &str = "chainwatch:rollout_gate_proceed:bool";
pub const GATE_ROLLBACK: &str = "chainwatch:rollout_gate_rollback:bool";
/// The label naming the gate on both records.
pub const GATE_LABEL: &str = "gate";
/// The labels of the gate records: the gate and what it groups by.
/// The label that names a node's chain (the first of the sidecar's constant labels).
pub const CHAIN_LABEL: &str = "chain";
pub const GATE_RECORD_LABELS: &[&str] = &["chain", "network", "region", GATE_LABEL];

// ------------------------------------------------------------------------------- SLOs

/// The rule group of an SLO that names none.
pub const SLO_GROUP: &str = "slo";

fn slo_stem(slo: &str) -> String {
    slo.replace('-', "_")
}

/// An SLO's error ratio over one window, Sloth's `slo:sli_error:ratio_rate<window>` with the
/// SLO in the name: `slo:<slo>_errors:ratio_rate<window>`.
pub fn slo_error_record(slo: &str, window: &str) -> String {
    format!("slo:{}_errors:ratio_rate{window}", slo_stem(slo))
}

/// The SLI over the period (1 − the error ratio): `slo:<slo>_sli:ratio_<period>`.
pub fn slo_sli_record(slo: &str, period: &str) -> String {
    format!("slo:{}_sli:ratio_{period}", slo_stem(slo))
}

/// The error budget left over the period (1 = untouched, 0 = spent, below 0 = overspent).
pub fn slo_budget_record(slo: &str, period: &str) -> String {
    format!("slo:{}_error_budget:remaining_{period}", slo_stem(slo))
}

/// The page (fast burn) and ticket (slow burn) alerts of an SLO.
pub fn slo_alerts(alert: &str) -> (String, String) {
    (
        format!("{alert}BudgetBurnFast"),
        format!("{alert}BudgetBurnSlow"),
    )
}

/// The alertgroup of an SLO's two alerts: the page mutes the ticket of the same node.
pub fn slo_alertgroup(slo: &str) -> String {
    format!("{slo}-budget-burn")
}

// ------------------------------------------------------------------------------- Alertmanager

pub const ALERTMANAGER_CONFIG_PATH: &str = "alertmanager/alertmanager.yml";
pub const ALERTMANAGER_ROUTES_PATH: &str = "alertmanager/tests/routes.tsv";
pub const ALERTMANAGER_INHIBITIONS_PATH: &str = "alertmanager/tests/inhibitions.yml";
/// The notification templates every receiver uses, and how alertmanager.yml finds them
/// (Alertmanager resolves `templates:` against the configuration file's directory).
pub const ALERTMANAGER_NOTIFICATIONS_PATH: &str = "alertmanager/templates/chainwatch.tmpl";
pub const ALERTMANAGER_TEMPLATES_GLOB: &str = "templates/*.tmpl";

/// Prefix of the generated "more urgent mutes milder" inhibitions (reserved in thresholds.yaml).
pub const ALERTGROUP_RULE: &str = "alertgroup-priority";

/// The generated inhibition by which alerts of `priority` mute the milder ones of their group.
pub fn alertgroup_rule(priority: &str) -> String {
    format!("{ALERTGROUP_RULE}-{priority}")
}

/// The label every alert carries with its level (the monitoring-mixins convention, so routes
/// and silences written for kube-prometheus or node-mixin alerts also apply to chainwatch's).
pub const SEVERITY_LABEL: &str = "severity";
/// The label every alert carries with its priority (a key of `severities:`, P0..P3 in the seeds):
/// chainwatch's routes and inhibitions key on it.
pub const PRIORITY_LABEL: &str = "priority";
/// The levels a priority maps to, most urgent first (also PagerDuty's severities).
pub const LEVELS: &[&str] = &["critical", "warning", "info"];

/// Rank of a level in `LEVELS` (unknown levels last): priorities are ordered by (rank, name).
pub fn level_rank(level: &str) -> usize {
    LEVELS
        .iter()
        .position(|l| *l == level)
        .unwrap_or(LEVELS.len())
}

// ------------------------------------------------------------------------------- Grafana

pub const DASHBOARD_DIR: &str = "grafana/dashboards";
pub const DATASOURCE_PATH: &str = "grafana/provisioning/datasources/prometheus.yml";
pub const PROVIDER_PATH: &str = "grafana/provisioning/dashboards/chainwatch.yml";
pub const DATASOURCE_UID: &str = "chainwatch-prometheus";
/// Grafana refuses longer UIDs.
pub const MAX_UID_LEN: usize = 40;

/// The tag of every generated dashboard (and of the link between them).
pub const DASHBOARD_TAG: &str = "chainwatch";

pub fn dashboard_uid(id: &str) -> String {
    format!("chainwatch-{id}")
}

pub fn dashboard_file_name(id: &str) -> String {
    format!("{id}.json")
}

pub fn dashboard_path(id: &str) -> String {
    format!("{DASHBOARD_DIR}/{}", dashboard_file_name(id))
}

/// A link, relative to Grafana's root, to another dashboard with the same time range and
/// variables (Grafana interpolates both in panel links).
pub fn dashboard_link(uid: &str) -> String {
    format!("/d/{uid}?${{__url_time_range}}&${{__all_variables}}")
}

/// A link, relative to Grafana's root, to Grafana's alert rule list filtered to one rule: it
/// lists the rules of a Prometheus datasource (`manageAlerts`), with their state and instances.
pub fn alert_rule_link(alert: &str) -> String {
    format!("/alerting/list?search=rule%3A{}", url_escape(alert))
}

/// Percent-encoding of everything but RFC 3986's unreserved characters.
fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What coverage and the panel's description call a panel.
pub fn panel_id(dashboard: &str, panel: &str) -> String {
    format!("{dashboard}/{panel}")
}

// ------------------------------------------------------------------------------- Kubernetes

pub const KUBERNETES_DIR: &str = "kubernetes";
/// The Kustomize base of what runs beside Prometheus, Alertmanager and Grafana.
pub const KUBERNETES_MONITORING_DIR: &str = "kubernetes/monitoring";
/// The Kustomize base that goes with the sidecar (its PodMonitor), in the node's namespace.
pub const KUBERNETES_SIDECAR_DIR: &str = "kubernetes/sidecar";
pub const KUSTOMIZATION_FILE: &str = "kustomization.yaml";
/// On every generated object, besides thresholds.yaml's `outputs.kubernetes.labels`.
pub const PART_OF_LABEL: (&str, &str) = ("app.kubernetes.io/part-of", "chainwatch");

/// The PrometheusRule of a rule group: named as the group in the plain file.
pub fn prometheus_rule_name(group: &str) -> String {
    rule_group(group)
}

/// Relative to `KUBERNETES_MONITORING_DIR`.
pub fn prometheus_rule_file(group: &str) -> String {
    format!("prometheusrules/{group}.yaml")
}

pub const ALERTMANAGER_SECRET_NAME: &str = "chainwatch-alertmanager";
/// The key prometheus-operator reads an Alertmanager's `configSecret` from.
pub const ALERTMANAGER_SECRET_KEY: &str = "alertmanager.yaml";
/// Relative to `KUBERNETES_MONITORING_DIR`.
pub const ALERTMANAGER_SECRET_FILE: &str = "alertmanager-secret.yaml";
/// Where prometheus-operator mounts every key of an Alertmanager's `configSecret` (keys cannot
/// hold a `/`, so the notification templates sit beside the configuration and are named by an
/// absolute glob: the operator runs Alertmanager on a copy of the configuration in another
/// directory, against which a relative glob finds nothing).
pub const ALERTMANAGER_OPERATOR_CONFIG_DIR: &str = "/etc/alertmanager/config";

pub fn dashboard_configmap_name(id: &str) -> String {
    format!("chainwatch-dashboard-{id}")
}

/// Relative to `KUBERNETES_MONITORING_DIR`.
pub fn dashboard_configmap_file(id: &str) -> String {
    format!("dashboards/{id}.yaml")
}

pub const POD_MONITOR_NAME: &str = "chainwatch";
/// Relative to `KUBERNETES_SIDECAR_DIR`.
pub const POD_MONITOR_FILE: &str = "podmonitor.yaml";

/// Kubernetes object names (DNS-1123 subdomains) hold at most this many characters.
pub const MAX_OBJECT_NAME_LEN: usize = 253;

// ------------------------------------------------------------------------------- mixin

pub const MIXIN_DIR: &str = "mixin";
pub const MIXIN_PATH: &str = "mixin/mixin.libsonnet";
/// Relative to `MIXIN_DIR`, as mixin.libsonnet imports it.
pub fn mixin_dashboard_file(id: &str) -> String {
    format!("dashboards/{}", dashboard_file_name(id))
}

// ------------------------------------------------------------------------------- canary analysis

/// Progressive-delivery templates of the rollout gates (Argo Rollouts, Flagger).
pub const CANARY_DIR: &str = "canary";

/// The Argo Rollouts `AnalysisTemplate` of a gate.
pub fn argo_template_path(gate: &str) -> String {
    format!("{CANARY_DIR}/argo-rollouts/{gate}.yaml")
}

pub fn argo_template_name(gate: &str) -> String {
    format!("chainwatch-gate-{gate}")
}

/// The Flagger `MetricTemplate` of a gate.
pub fn flagger_template_path(gate: &str) -> String {
    format!("{CANARY_DIR}/flagger/{gate}.yaml")
}

pub fn flagger_template_name(gate: &str) -> String {
    format!("chainwatch-gate-{gate}")
}

// ------------------------------------------------------------------------------- runbook

pub const RUNBOOK_PATH: &str = "docs/runbook.md";

/// The anchor a Markdown renderer (GitHub, CommonMark tools) gives the heading `## <alert name>`:
/// lowercase, punctuation other than `-` and `_` dropped, spaces as `-`.
pub fn runbook_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                Some(c)
            } else if c == ' ' {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// The runbook's heading of a rollout gate's section.
pub fn gate_heading(gate: &str) -> String {
    format!("Gate {gate}")
}

/// An alert's `runbook_url` annotation: the runbook (`defaults.runbook_url`) at its section.
pub fn runbook_url(base: &str, alert: &str) -> String {
    format!("{base}#{}", runbook_anchor(alert))
}

// ------------------------------------------------------------------------------- test series

/// Label values of the series the generated tests and routing cases invent.
pub const TEST_NETWORK: &str = "testnet";
pub const TEST_REGION: &str = "eu-central";
pub const TEST_NODE: &str = "node-1";
/// The chain of a test when thresholds.yaml lists none, and of "every other chain".
pub const TEST_CHAIN: &str = "testchain";
pub const OTHER_CHAIN: &str = "otherchain";
/// The scrape job of the test series, and the instance (the sidecar's address) of a test node.
pub const TEST_JOB: &str = "chainwatch";

pub fn test_instance(node: &str) -> String {
    format!("{node}.example:19942")
}
/// The chain of recording rule and gate tests.
pub const RECORD_TEST_CHAIN: &str = "coinjecture";

/// The constant labels of one test node of `chain`.
pub fn test_node_labels(chain: &str) -> [(&'static str, String); 4] {
    [
        ("chain", chain.to_string()),
        ("network", TEST_NETWORK.to_string()),
        ("region", TEST_REGION.to_string()),
        ("node", TEST_NODE.to_string()),
    ]
}
