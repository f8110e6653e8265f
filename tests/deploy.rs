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

#[test]
fn systemd_socket_unit_and_drop_in_activate_the_sidecar() {
    use chainwatch_tests::process::Proc;
    use std::time::Duration;
    let sys = root().join("deploy/systemd");
    let socket = std::fs::read_to_string(sys.join("chainwatch-exporter.socket")).unwrap();
    let dropin =
        std::fs::read_to_string(sys.join("chainwatch-exporter.service.d/socket.conf")).unwrap();
    let service = std::fs::read_to_string(sys.join("chainwatch-exporter.service")).unwrap();
    assert!(
        socket.contains("\nListenStream=19942\n"),
        "the socket holds the default port"
    );
    assert!(socket.contains("WantedBy=sockets.target"));
    // The three files pass systemd-analyze together (the drop-in is read from the .d directory).
    let bin = workspace_bin("chainwatch-exporter");
    let dir = tempfile::tempdir().unwrap();
    let local = |t: &str| t.replace("/usr/local/bin/chainwatch-exporter", bin.to_str().unwrap());
    std::fs::create_dir(dir.path().join("chainwatch-exporter.service.d")).unwrap();
    std::fs::write(dir.path().join("chainwatch-exporter.socket"), &socket).unwrap();
    std::fs::write(
        dir.path().join("chainwatch-exporter.service"),
        local(&service),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("chainwatch-exporter.service.d/socket.conf"),
        local(&dropin),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(dir.path().join("chainwatch-exporter.socket"))
        .arg(dir.path().join("chainwatch-exporter.service"))
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.trim().is_empty(),
        "systemd-analyze verify:\n{text}"
    );
    // The drop-in's command line, run the way systemd runs it for this socket: under
    // systemd-socket-activate on a free port, the configuration and state directory local.
    let exec = dropin
        .replace("\\\n", " ")
        .lines()
        .filter_map(|l| l.strip_prefix("ExecStart="))
        .rfind(|l| !l.trim().is_empty())
        .expect("an ExecStart in the drop-in")
        .to_string();
    let state = dir.path().join("state");
    let cfg = dir.path().join("chainwatch.yaml");
    std::fs::write(
        &cfg,
        format!(
            "version: 1\nprofiles: [dilithion]\nsources:\n  - name: log\n    type: file\n    paths: [\"{}/node.log*\"]\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let args: Vec<String> = local(&exec)
        .replace("/etc/chainwatch/chainwatch.yaml", cfg.to_str().unwrap())
        .replace("${STATE_DIRECTORY}", state.to_str().unwrap())
        .split_whitespace()
        .map(String::from)
        .collect();
    assert!(args.iter().any(|a| a == "--web.systemd-socket"), "{exec}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = Command::new("systemd-socket-activate");
    cmd.args(["-l", &addr]).args(&args);
    let mut p = Proc::spawn("activated", cmd, dir.path());
    let stderr = p.stderr.clone();
    p.wait_line(&stderr, "Listening on", Duration::from_secs(60));
    let (status, body) = chainwatch_tests::http::get(&format!("http://{addr}/metrics")).unwrap();
    assert_eq!(status, 200, "{}", p.logs());
    assert!(body.contains("chainwatch_build_info"), "{body}");
    assert_eq!(p.stop().and_then(|s| s.code()), Some(0), "{}", p.logs());
}
