//! The deployment artifacts in deploy/ are real: the systemd unit passes systemd-analyze, the
//! compose stack mounts files that exist and its Prometheus config passes promtool, and every
//! sidecar configuration shipped there passes the sidecar's own check-config.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use chainwatch_tests::workspace_bin;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `check-config` on a shipped sidecar configuration, with exactly `env` as identity variables.
fn check_config_output(text: &str, env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("chainwatch.yaml");
    std::fs::write(&p, text).unwrap();
    let mut cmd = Command::new(workspace_bin("chainwatch-exporter"));
    cmd.arg("--config").arg(&p).arg("check-config");
    for v in env_references(text) {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().copied());
    cmd.output().unwrap()
}

/// The constant labels the sidecar reports it will set (`check-config`'s last line).
fn check_config(text: &str, env: &[(&str, &str)]) -> BTreeMap<String, String> {
    let out = check_config_output(text, env);
    assert!(
        out.status.success(),
        "{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("constant labels: {"))
        .unwrap_or_else(|| panic!("no constant labels line in {stdout}"));
    line.trim_end_matches('}')
        .split(", ")
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_string(), v.trim_matches('"').to_string())
        })
        .collect()
}

/// The environment variables `${VAR}` / `${VAR:-default}` a configuration reads.
fn env_references(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let end = r.find('}').expect("`${` is closed");
            out.insert(r[..end].split(":-").next().unwrap().to_string());
            rest = &r[end..];
        }
    }
    out
}

#[test]
fn systemd_unit_verifies_and_runs_without_root() {
    let unit =
        std::fs::read_to_string(root().join("deploy/systemd/chainwatch-exporter.service")).unwrap();
    for needed in [
        "DynamicUser=yes",
        "SupplementaryGroups=systemd-journal",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=\n",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "StateDirectory=chainwatch",
        "Environment=NODE_NAME=%l",
    ] {
        assert!(unit.contains(needed), "unit lacks {needed:?}");
    }
    assert!(!unit.contains("User=root"));
    // systemd-analyze checks the binary exists: point it at the one just built.
    let dir = tempfile::tempdir().unwrap();
    let bin = workspace_bin("chainwatch-exporter");
    let local = unit.replace("/usr/local/bin/chainwatch-exporter", bin.to_str().unwrap());
    let path = dir.path().join("chainwatch-exporter.service");
    std::fs::write(&path, local).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.trim().is_empty(),
        "systemd-analyze verify:\n{text}"
    );
}

#[test]
fn compose_stack_mounts_what_exists_and_its_prometheus_config_is_valid() {
    let dir = root().join("deploy/compose");
    let compose: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(dir.join("docker-compose.yml")).unwrap())
            .unwrap();
    let services = compose["services"].as_mapping().unwrap();
    for name in ["chainwatch", "prometheus", "alertmanager", "grafana"] {
        assert!(services.contains_key(name), "service {name}");
    }
    for (name, svc) in services {
        for v in svc["volumes"].as_sequence().into_iter().flatten() {
            let src = v.as_str().unwrap().split(':').next().unwrap();
            // Secrets are the operator's to provide (deploy/compose/secrets/README).
            if src.starts_with('.') && !src.starts_with("./secrets/") {
                assert!(
                    dir.join(src).exists(),
                    "{name:?}: mount source {src} does not exist"
                );
            }
        }
    }
    // promtool on the stack's Prometheus config, with the rule files where the stack mounts them.
    let tmp = tempfile::tempdir().unwrap();
    let prom = std::fs::read_to_string(dir.join("prometheus.yml"))
        .unwrap()
        .replace(
            "/etc/prometheus/rules",
            root().join("prometheus/rules").to_str().unwrap(),
        );
    let p = tmp.path().join("prometheus.yml");
    std::fs::write(&p, prom).unwrap();
    let out = Command::new("promtool")
        .args(["check", "config"])
        .arg(&p)
        .output()
        .expect("promtool (Debian package prometheus)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Identity is set in one place: no label both on the sidecar and on its scrape target,
    // unless the job honors the sidecar's.
    let sidecar = check_config(
        &std::fs::read_to_string(dir.join("chainwatch.yaml")).unwrap(),
        &[],
    );
    let prom: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(dir.join("prometheus.yml")).unwrap())
            .unwrap();
    let job = prom["scrape_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|j| j["job_name"] == "chainwatch")
        .expect("a chainwatch scrape job");
    if job["honor_labels"].as_bool() != Some(true) {
        for sc in job["static_configs"].as_sequence().unwrap() {
            for (k, _) in sc["labels"].as_mapping().into_iter().flatten() {
                let k = k.as_str().unwrap();
                assert!(
                    !sidecar.contains_key(k),
                    "`{k}` is set by the sidecar and by its target: Prometheus would rename the \
                     sidecar's to exported_{k}"
                );
            }
        }
    }
}

#[test]
fn kubernetes_sidecar_example_is_consistent() {
    let text = std::fs::read_to_string(root().join("deploy/kubernetes/sidecar.yaml")).unwrap();
    let docs: Vec<serde_norway::Value> = text
        .split("\n---\n")
        .map(|d| serde_norway::from_str(d).unwrap())
        .collect();
    let cm = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    let sts = docs.iter().find(|d| d["kind"] == "StatefulSet").unwrap();
    let pod = &sts["spec"]["template"];
    let containers = pod["spec"]["containers"].as_sequence().unwrap();
    let side = containers
        .iter()
        .find(|c| c["name"] == "chainwatch")
        .unwrap();
    assert_eq!(side["ports"][0]["containerPort"].as_u64(), Some(19942));
    assert_eq!(
        pod["metadata"]["annotations"]["prometheus.io/port"].as_str(),
        Some("19942")
    );
    assert_eq!(
        side["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/health")
    );
    assert_eq!(
        side["securityContext"]["runAsNonRoot"].as_bool(),
        Some(true)
    );

    // The configuration the sidecar reads is the ConfigMap's.
    let args: Vec<&str> = side["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let config_path = args[args.iter().position(|a| *a == "--config").unwrap() + 1];
    let volumes = pod["spec"]["volumes"].as_sequence().unwrap();
    let claims: Vec<&str> = sts["spec"]["volumeClaimTemplates"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|c| c["metadata"]["name"].as_str().unwrap())
        .collect();
    let mounts = |c: &serde_norway::Value| -> Vec<(String, String)> {
        c["volumeMounts"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|m| {
                let name = m["name"].as_str().unwrap().to_string();
                assert!(
                    volumes.iter().any(|v| v["name"].as_str() == Some(&name))
                        || claims.contains(&name.as_str()),
                    "mount {name} is no volume"
                );
                (name, m["mountPath"].as_str().unwrap().to_string())
            })
            .collect()
    };
    let side_mounts = mounts(side);
    let (config_volume, config_dir) = side_mounts
        .iter()
        .find(|(_, path)| Path::new(config_path).parent() == Some(Path::new(path)))
        .expect("the --config file is on a mounted volume");
    let v = volumes
        .iter()
        .find(|v| v["name"].as_str() == Some(config_volume))
        .unwrap();
    assert_eq!(v["configMap"]["name"], cm["metadata"]["name"]);
    let key = Path::new(config_path).strip_prefix(config_dir).unwrap();
    let config = cm["data"][key.to_str().unwrap()]
        .as_str()
        .expect("the ConfigMap holds the --config file");

    // Node identity from the pod: `node` is ${NODE_NAME}, NODE_NAME the pod's name; every variable
    // the configuration reads is set in the container.
    let cfg: serde_norway::Value = serde_norway::from_str(config).unwrap();
    assert_eq!(cfg["labels"]["node"].as_str(), Some("${NODE_NAME}"));
    let env = side["env"].as_sequence().expect("the sidecar has env");
    let field = |name: &str| {
        env.iter()
            .find(|e| e["name"].as_str() == Some(name))
            .and_then(|e| e["valueFrom"]["fieldRef"]["fieldPath"].as_str())
    };
    assert_eq!(field("NODE_NAME"), Some("metadata.name"));
    for v in env_references(config) {
        assert!(
            env.iter().any(|e| e["name"].as_str() == Some(&v)),
            "the configuration reads ${{{v}}} but the container does not set it"
        );
    }
    assert!(sts["spec"]["replicas"].as_u64().unwrap() > 1);
    // What replica 2 would run with: its own node name.
    let labels = check_config(config, &[("NODE_NAME", "dilithion-2")]);
    assert_eq!(labels.get("node").map(String::as_str), Some("dilithion-2"));
    assert_eq!(labels.get("chain").map(String::as_str), Some("dilithion"));
    // And without the downward API it refuses to start rather than export a wrong name.
    let out = check_config_output(config, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("labels.node: environment variable NODE_NAME is not set"));

    // What the sidecar reads is what the node container writes, and reachable read-only.
    let node = containers.iter().find(|c| c["name"] == "node").unwrap();
    let node_mounts = mounts(node);
    let shared = |path: &str| {
        let (vol, dir) = side_mounts
            .iter()
            .find(|(_, d)| Path::new(path).starts_with(d))
            .unwrap_or_else(|| panic!("{path} is on no sidecar mount"));
        assert!(
            node_mounts
                .iter()
                .any(|(v, d)| v == vol && Path::new(path).starts_with(d)),
            "{path} is not on a volume the node container writes ({vol} at {dir})"
        );
    };
    for s in cfg["sources"].as_sequence().unwrap() {
        for p in s["paths"].as_sequence().into_iter().flatten() {
            shared(p.as_str().unwrap());
        }
        if let Some(c) = s["cookie_file"].as_str() {
            shared(c);
        }
    }
}

#[test]
fn every_path_the_ci_snippet_runs_exists() {
    let ci = std::fs::read_to_string(root().join("deploy/ci/check-generated.yml")).unwrap();
    assert!(ci.contains("bash scripts/check-generated.sh"));
    assert!(Path::new(&root().join("scripts/check-generated.sh")).exists());
}
