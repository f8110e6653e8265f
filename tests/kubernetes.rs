//! The Kubernetes output (kubernetes/, from thresholds.yaml's `outputs.kubernetes`), the mixin
//! (mixin/) and the sidecar's Kustomize base (deploy/kubernetes/), checked with the tools an
//! operator runs and against the schemas the operator publishes:
//! - every PrometheusRule and the PodMonitor validate against prometheus-operator's CRDs
//!   (tests/schemas/crds, strict: an unknown field is an error), the Secret and ConfigMaps
//!   type-check as `kubernetes-types`' Secret and ConfigMap;
//! - a PrometheusRule's spec is its plain rule file, the Secret holds alertmanager.yml (which
//!   amtool accepts, with no secret in it), a ConfigMap its dashboard, with the chart's label;
//! - `kubectl kustomize` builds both generated bases and deploy/kubernetes, whose PodMonitor
//!   selects the sidecar's pods by labels they carry, on a port they declare;
//! - `jsonnet` evaluates mixin/mixin.libsonnet to exactly the plain rule groups and dashboards,
//!   and promtool accepts its rules.
//!
//! (The files are the committed ones; `chainwatch-rulegen --check` keeps them fresh.)

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::{json, Value};

use chainwatch_tests::schemas::{path, ts, typecheck, validate_crds, yaml_docs};
use chainwatch_tests::stack::system_bin;

fn read(rel: &str) -> String {
    std::fs::read_to_string(path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn files_under(rel: &str, ext: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(path(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(ext))
        .map(|n| format!("{rel}/{n}"))
        .collect();
    v.sort();
    v
}

/// The regional and the global tier's rule files, by file name (as their manifests sort).
fn plain_rule_files() -> Vec<String> {
    let mut v = files_under("prometheus/rules", ".rules.yml");
    v.extend(files_under("prometheus/rules/global", ".rules.yml"));
    v.sort_by_key(|f| f.rsplit('/').next().unwrap().to_string());
    v
}

fn doc(rel: &str) -> Value {
    let mut d = yaml_docs(&read(rel));
    assert_eq!(d.len(), 1, "{rel}: one object");
    d.remove(0)
}

fn kubectl() -> std::path::PathBuf {
    system_bin("KUBECTL", &["kubectl"], "kubernetes-client")
}

/// `kubectl kustomize DIR`, as objects.
fn kustomize(rel: &str) -> Vec<Value> {
    let out = Command::new(kubectl())
        .arg("kustomize")
        .arg(path(rel))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl kustomize {rel}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    yaml_docs(&String::from_utf8_lossy(&out.stdout))
}

/// The thresholds.yaml section the output follows.
fn outputs() -> Value {
    let t: Value = serde_norway::from_str(&read("thresholds.yaml")).unwrap();
    t["outputs"]["kubernetes"].clone()
}

#[test]
fn each_prometheus_rule_is_its_plain_rule_file_and_valid_for_the_operator() {
    let rule_files = plain_rule_files();
    let manifests = files_under("kubernetes/monitoring/prometheusrules", ".yaml");
    assert_eq!(
        rule_files.len(),
        manifests.len(),
        "one PrometheusRule per rule file"
    );
    let ns = outputs()["namespace"].as_str().unwrap().to_string();
    let mut docs = Vec::new();
    for (rules, manifest) in rule_files.iter().zip(&manifests) {
        let plain = doc(rules);
        let pr = doc(manifest);
        assert_eq!(pr["apiVersion"], "monitoring.coreos.com/v1");
        assert_eq!(pr["kind"], "PrometheusRule");
        assert_eq!(pr["metadata"]["namespace"], json!(ns));
        assert_eq!(pr["spec"], plain, "{manifest}: spec is not {rules}");
        assert_eq!(
            pr["metadata"]["name"], plain["groups"][0]["name"],
            "{manifest} is named as its group"
        );
        for (k, v) in outputs()["labels"].as_object().unwrap() {
            assert_eq!(&pr["metadata"]["labels"][k], v, "{manifest}: label {k}");
        }
        docs.push((manifest.clone(), pr));
    }
    let errors = validate_crds(&docs);
    let bad: Vec<String> = errors
        .iter()
        .filter(|(_, e)| !e.is_empty())
        .map(|(n, e)| format!("{n}: {}", e.join("; ")))
        .collect();
    assert!(
        bad.is_empty(),
        "against the PrometheusRule CRD:\n{}",
        bad.join("\n")
    );

    // Written from seed 004 (NodeDown: unresponsive for more than 2m, critical): the rule an
    // operator's Prometheus loads from the PrometheusRule is that one.
    let fleet = doc("kubernetes/monitoring/prometheusrules/fleet.yaml");
    let node_down = fleet["spec"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["alert"] == "NodeDown")
        .expect("NodeDown in the fleet PrometheusRule");
    assert_eq!(node_down["for"], "2m");
    // Liveness: the health check, the scrape and the series present (docs/rules.md "Liveness").
    assert_eq!(node_down["expr"], "node:chain_node_up:liveness == 0");
}

#[test]
fn the_crd_validation_refuses_what_the_api_server_refuses() {
    // Each a generated object with one mistake; the validator must name it.
    let pm = doc("kubernetes/sidecar/podmonitor.yaml");
    let pr = doc("kubernetes/monitoring/prometheusrules/fleet.yaml");
    let mut cases: Vec<(&str, Value, &str)> = Vec::new();
    let mut misspelt = pm.clone();
    let ep = misspelt["spec"]["podMetricsEndpoints"][0]
        .as_object_mut()
        .unwrap();
    let v = ep.remove("honorLabels").unwrap();
    ep.insert("honorLabel".into(), v);
    cases.push(("misspelt field", misspelt, "honorLabel"));
    let mut interval = pm.clone();
    interval["spec"]["podMetricsEndpoints"][0]["interval"] = json!("15 s");
    cases.push((
        "interval with a space",
        interval,
        "/spec/podMetricsEndpoints/0/interval",
    ));
    let mut no_expr = pr.clone();
    no_expr["spec"]["groups"][0]["rules"][0]
        .as_object_mut()
        .unwrap()
        .remove("expr");
    cases.push(("rule without expr", no_expr, "expr"));
    let mut for_number = pr.clone();
    for_number["spec"]["groups"][0]["rules"][1]["for"] = json!(120);
    cases.push(("`for` as a number", for_number, "/for"));
    let mut wrong_group = pm.clone();
    wrong_group["apiVersion"] = json!("monitoring.coreos.com/v2");
    cases.push(("unknown version", wrong_group, "no CRD"));
    let docs: Vec<(String, Value)> = cases
        .iter()
        .map(|(n, d, _)| (n.to_string(), d.clone()))
        .collect();
    let errors = validate_crds(&docs);
    for (name, _, expect) in &cases {
        let e = &errors[*name];
        assert!(
            e.iter().any(|m| m.contains(expect)),
            "{name}: expected an error about {expect}, got {e:?}"
        );
    }
}

#[test]
fn the_pod_monitor_scrapes_the_sidecar_as_thresholds_yaml_says() {
    let pm = doc("kubernetes/sidecar/podmonitor.yaml");
    let o = outputs()["pod_monitor"].clone();
    let ep = &pm["spec"]["podMetricsEndpoints"][0];
    assert_eq!(ep["port"], o["port"]);
    assert_eq!(ep["path"], o["path"]);
    assert_eq!(ep["interval"], o["interval"]);
    assert_eq!(ep["honorLabels"], o["honor_labels"]);
    assert_eq!(pm["spec"]["selector"]["matchLabels"], o["selector"]);
    // It goes with the sidecar into the node's namespace.
    assert!(pm["metadata"].get("namespace").is_none());
    let errors = validate_crds(&[("podmonitor".into(), pm)]);
    assert_eq!(errors["podmonitor"], Vec::<String>::new());
}

#[test]
fn the_alertmanager_secret_holds_the_plain_config_and_no_secret() {
    let s = doc("kubernetes/monitoring/alertmanager-secret.yaml");
    assert_eq!(s["kind"], "Secret");
    let config = s["stringData"]["alertmanager.yaml"].as_str().expect(
        "stringData.alertmanager.yaml, the key an Alertmanager's configSecret is read from",
    );
    // alertmanager.yml, but for where the templates are: prometheus-operator mounts every key of
    // the Secret in /etc/alertmanager/config and runs Alertmanager on a copy elsewhere.
    let plain = read("alertmanager/alertmanager.yml");
    assert!(plain.contains("templates: ['templates/*.tmpl']"));
    assert_eq!(
        config,
        plain
            .replace(
                "(relative to this file's directory)",
                "(mounted beside it by the operator)"
            )
            .replace(
                "templates: ['templates/*.tmpl']",
                "templates: ['/etc/alertmanager/config/*.tmpl']"
            )
    );
    let tmpl = s["stringData"]["chainwatch.tmpl"]
        .as_str()
        .expect("the notification templates beside the config");
    assert_eq!(tmpl, read("alertmanager/templates/chainwatch.tmpl"));
    assert!(
        s.get("data").is_none(),
        "stringData only: readable, no base64"
    );
    // No secret inline: every credential is a *_file.
    let c: Value = serde_norway::from_str(config).unwrap();
    let mut inline = Vec::new();
    walk(&c, "", &mut |p, v| {
        let key = p.rsplit('.').next().unwrap_or("");
        if [
            "api_url",
            "routing_key",
            "service_key",
            "password",
            "credentials",
            "bot_token",
        ]
        .contains(&key)
            && v.is_string()
        {
            inline.push(p.to_string());
        }
    });
    assert!(
        inline.is_empty(),
        "secrets inline in the Secret: {inline:?}"
    );
    // Every secret file the config reads is listed in the header (where to mount them).
    let text = read("kubernetes/monitoring/alertmanager-secret.yaml");
    let mut files = BTreeSet::new();
    walk(&c, "", &mut |p, v| {
        if p.ends_with("_file") {
            files.insert(v.as_str().unwrap().to_string());
        }
    });
    assert!(!files.is_empty());
    for f in &files {
        assert!(text.contains(&format!("#   {f}\n")), "{f} not listed");
    }
    // amtool takes the config as the operator would mount it.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("alertmanager.yaml");
    let mounted = dir.path().to_str().unwrap();
    std::fs::write(&p, config.replace("/etc/alertmanager/config", mounted)).unwrap();
    std::fs::write(dir.path().join("chainwatch.tmpl"), tmpl).unwrap();
    let amtool = system_bin("AMTOOL", &["amtool"], "prometheus-alertmanager");
    let out = Command::new(amtool)
        .arg("check-config")
        .arg(&p)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(" - 1 templates"),
        "templates not found: {stdout}"
    );
}

fn walk(v: &Value, path: &str, f: &mut impl FnMut(&str, &Value)) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{path}.{k}");
                f(&p, x);
                walk(x, &p, f);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                walk(x, &format!("{path}[{i}]"), f);
            }
        }
        _ => {}
    }
}

#[test]
fn each_dashboard_configmap_is_its_dashboard_with_the_chart_sidecar_label() {
    let dashboards = files_under("grafana/dashboards", ".json");
    let maps = files_under("kubernetes/monitoring/dashboards", ".yaml");
    assert_eq!(dashboards.len(), maps.len());
    for (json_file, map) in dashboards.iter().zip(&maps) {
        let cm = doc(map);
        assert_eq!(cm["kind"], "ConfigMap");
        // kube-prometheus-stack's Grafana sidecar loads ConfigMaps labelled grafana_dashboard: "1".
        assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1", "{map}");
        assert_eq!(
            cm["metadata"]["annotations"]["grafana_folder"],
            "chainwatch"
        );
        let data = cm["data"].as_object().unwrap();
        assert_eq!(data.len(), 1);
        let name = json_file.rsplit('/').next().unwrap();
        assert_eq!(data[name].as_str().unwrap(), read(json_file), "{map}");
    }
}

#[test]
fn secret_and_configmaps_fit_the_api_servers_size_limit() {
    // A ConfigMap's or Secret's data is at most 1 MiB; leave room for the rest of the object.
    let mut files = files_under("kubernetes/monitoring/dashboards", ".yaml");
    files.push("kubernetes/monitoring/alertmanager-secret.yaml".into());
    for f in files {
        let len = read(&f).len();
        assert!(len < 900 * 1024, "{f}: {len} bytes, near the 1 MiB limit");
    }
}

#[test]
fn secret_and_configmaps_type_check_as_kubernetes_objects() {
    let mut files = Vec::new();
    let header = "import type { ConfigMap, Secret } from 'kubernetes-types/core/v1';\n\
                  import type { StatefulSet } from 'kubernetes-types/apps/v1';\n";
    let s = doc("kubernetes/monitoring/alertmanager-secret.yaml");
    let mut src = format!(
        "{header}export const secret = {} satisfies Secret;\n",
        ts(&s)
    );
    for (i, m) in files_under("kubernetes/monitoring/dashboards", ".yaml")
        .iter()
        .enumerate()
    {
        src.push_str(&format!(
            "export const cm{i} = {} satisfies ConfigMap;\n",
            ts(&doc(m))
        ));
    }
    for (i, o) in kustomize("deploy/kubernetes").iter().enumerate() {
        match o["kind"].as_str().unwrap() {
            "ConfigMap" => src.push_str(&format!(
                "export const k{i} = {} satisfies ConfigMap;\n",
                ts(o)
            )),
            "StatefulSet" => src.push_str(&format!(
                "export const k{i} = {} satisfies StatefulSet;\n",
                ts(o)
            )),
            _ => {}
        }
    }
    files.push(("generated.ts".to_string(), src));
    // And the checker refuses what the API server refuses.
    let mut bad = s.clone();
    bad["stringData"]["alertmanager.yaml"] = json!(1);
    let mut cm = doc("kubernetes/monitoring/dashboards/fleet.yaml");
    cm["metadata"]["label"] = json!({"a": "b"});
    files.push((
        "bad.ts".to_string(),
        format!(
            "{header}export const s = {} satisfies Secret;\nexport const c = {} satisfies ConfigMap;\n",
            ts(&bad),
            ts(&cm)
        ),
    ));
    let d = typecheck(&files);
    assert_eq!(d["generated.ts"], Vec::<String>::new());
    let bad = d["bad.ts"].join("\n");
    assert!(
        bad.contains("'number' is not assignable to type 'string'"),
        "{bad}"
    );
    assert!(bad.contains("does not exist in type 'ObjectMeta'"), "{bad}");
}

#[test]
fn kustomize_builds_the_generated_bases_and_the_sidecar_base() {
    let monitoring = kustomize("kubernetes/monitoring");
    let kinds: BTreeMap<String, usize> = monitoring.iter().fold(BTreeMap::new(), |mut m, o| {
        *m.entry(o["kind"].as_str().unwrap().to_string())
            .or_default() += 1;
        m
    });
    assert_eq!(
        kinds.get("PrometheusRule").copied(),
        Some(plain_rule_files().len())
    );
    assert_eq!(kinds.get("Secret").copied(), Some(1));
    assert_eq!(
        kinds.get("ConfigMap").copied(),
        Some(files_under("grafana/dashboards", ".json").len())
    );

    let sidecar = kustomize("deploy/kubernetes");
    let pm = sidecar
        .iter()
        .find(|o| o["kind"] == "PodMonitor")
        .expect("the base carries the generated PodMonitor");
    assert_eq!(pm, &doc("kubernetes/sidecar/podmonitor.yaml"));
    let sts = sidecar.iter().find(|o| o["kind"] == "StatefulSet").unwrap();
    let pod = &sts["spec"]["template"];
    // The PodMonitor selects these pods…
    for (k, v) in pm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&pod["metadata"]["labels"][k], v, "pod label {k}");
    }
    // …on a port of the sidecar container, at the path it serves its metrics on.
    let ep = &pm["spec"]["podMetricsEndpoints"][0];
    let side = pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "chainwatch")
        .unwrap();
    assert!(side["ports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == ep["port"]));
    let args: Vec<&str> = side["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let telemetry = args
        .iter()
        .position(|a| *a == "--web.telemetry-path")
        .map_or("/metrics", |i| args[i + 1]);
    assert_eq!(ep["path"], telemetry);
    // The sidecar sets node and region itself (its ConfigMap), so its labels must win over the
    // target's (README, "Node identity").
    let cm = sidecar.iter().find(|o| o["kind"] == "ConfigMap").unwrap();
    let cfg: Value =
        serde_norway::from_str(cm["data"]["chainwatch.yaml"].as_str().unwrap()).unwrap();
    assert!(cfg["labels"].get("node").is_some() && cfg["labels"].get("region").is_some());
    assert_eq!(ep["honorLabels"], true);
    let errors = validate_crds(&[("built".into(), pm.clone())]);
    assert_eq!(errors["built"], Vec::<String>::new());
}

/// jsonnet has one number type: 1.0 comes back as 1.
fn numbers_as_floats(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.iter().map(numbers_as_floats).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), numbers_as_floats(x)))
                .collect(),
        ),
        x => x.clone(),
    }
}

/// The plain rule groups, each as promtool reads it.
fn plain_groups() -> Vec<Value> {
    plain_rule_files()
        .iter()
        .flat_map(|f| doc(f)["groups"].as_array().unwrap().clone())
        .collect()
}

/// Debian's jsonnet on `expr`, with `m` the mixin.
fn jsonnet(flags: &[&str], expr: &str) -> Vec<u8> {
    let out = Command::new(system_bin("JSONNET", &["jsonnet"], "jsonnet"))
        .arg("-J")
        .arg(path("mixin"))
        .args(flags)
        .arg("-e")
        .arg(format!("local m = import 'mixin.libsonnet'; {expr}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn the_mixin_evaluates_to_the_plain_rules_and_dashboards() {
    let m: Value = serde_json::from_slice(&jsonnet(
        &[],
        "{alerts: m.prometheusAlerts, rules: m.prometheusRules, dashboards: m.grafanaDashboards}",
    ))
    .unwrap();
    let alerts = m["alerts"]["groups"].as_array().unwrap();
    let rules = m["rules"]["groups"].as_array().unwrap();
    let has_alert = |g: &Value| {
        g["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.get("alert").is_some())
    };
    assert!(
        alerts.iter().all(has_alert),
        "prometheusAlerts: groups with alerts"
    );
    assert!(
        !rules.iter().any(has_alert),
        "prometheusRules: recording rules only"
    );
    let by_name = |v: &[Value]| -> BTreeMap<String, Value> {
        v.iter()
            .map(|g| (g["name"].as_str().unwrap().to_string(), g.clone()))
            .collect()
    };
    let mut got = by_name(alerts);
    got.extend(by_name(rules));
    assert_eq!(got.len(), alerts.len() + rules.len(), "a group in both");
    assert_eq!(
        got,
        by_name(&plain_groups()),
        "the mixin's groups are not prometheus/rules'"
    );

    let dashboards = m["dashboards"].as_object().unwrap();
    let files = files_under("grafana/dashboards", ".json");
    assert_eq!(dashboards.len(), files.len());
    for f in &files {
        let want: Value = serde_json::from_str(&read(f)).unwrap();
        assert_eq!(
            numbers_as_floats(&dashboards[f.rsplit('/').next().unwrap()]),
            numbers_as_floats(&want),
            "{f}"
        );
    }

    // What mixtool / kube-prometheus make of it: one rule file, which promtool accepts.
    let yaml = jsonnet(
        &["-S"],
        "std.manifestYamlDoc({groups: m.prometheusAlerts.groups + m.prometheusRules.groups})",
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("mixin.rules.yml");
    std::fs::write(&p, yaml).unwrap();
    let promtool = system_bin("PROMTOOL", &["promtool"], "prometheus");
    let o = Command::new(promtool)
        .arg("check")
        .arg("rules")
        .arg(&p)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    // Written from seed 004: the mixin pages on NodeDown after 2 minutes.
    let nd = alerts
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .find(|r| r["alert"] == "NodeDown")
        .unwrap();
    assert_eq!(nd["for"], "2m");
}
