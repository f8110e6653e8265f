//! The deployment artifacts in deploy/ are real: the systemd unit passes systemd-analyze, the
//! compose stack mounts files that exist and its Prometheus config passes promtool, and every
//! sidecar configuration shipped there passes the sidecar's own check-config.

use std::path::{Path, PathBuf};
use std::process::Command;

use chainwatch_tests::workspace_bin;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn check_config(text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("chainwatch.yaml");
    std::fs::write(&p, text).unwrap();
    let out = Command::new(workspace_bin("chainwatch-exporter"))
        .arg("--config")
        .arg(&p)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    check_config(&std::fs::read_to_string(dir.join("chainwatch.yaml")).unwrap());
}

#[test]
fn kubernetes_sidecar_example_is_consistent() {
    let text = std::fs::read_to_string(root().join("deploy/kubernetes/sidecar.yaml")).unwrap();
    let docs: Vec<serde_norway::Value> = text
        .split("\n---\n")
        .map(|d| serde_norway::from_str(d).unwrap())
        .collect();
    let cm = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    check_config(cm["data"]["chainwatch.yaml"].as_str().unwrap());
    let sts = docs.iter().find(|d| d["kind"] == "StatefulSet").unwrap();
    let containers = sts["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .unwrap();
    let side = containers
        .iter()
        .find(|c| c["name"] == "chainwatch")
        .unwrap();
    assert_eq!(side["ports"][0]["containerPort"].as_u64(), Some(19942));
    assert_eq!(
        side["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/health")
    );
    assert_eq!(
        side["securityContext"]["runAsNonRoot"].as_bool(),
        Some(true)
    );
}

#[test]
fn every_path_the_ci_snippet_runs_exists() {
    let ci = std::fs::read_to_string(root().join("deploy/ci/check-generated.yml")).unwrap();
    assert!(ci.contains("bash scripts/check-generated.sh"));
    assert!(Path::new(&root().join("scripts/check-generated.sh")).exists());
}
