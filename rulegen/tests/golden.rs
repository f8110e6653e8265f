//! The golden test, as Sloth's integration tests do it: the real binary renders
//! `testdata/good/thresholds.yaml`, and every file it writes must equal, byte for byte, the
//! expected output committed beside it in `testdata/good/out/` (no file missing, none extra).
//!
//! A change that is meant to alter the output regenerates the expected files with the binary
//! itself, and the diff is reviewed with the change:
//!
//! ```sh
//! cd rulegen/tests/testdata/good && cargo run -p chainwatch-rulegen -- --out out
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_chainwatch-rulegen");

fn good() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/good")
}

/// Every file under `root`, by path relative to it.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// The first differing line of two texts, with its number, for a readable failure.
fn first_difference(want: &[u8], got: &[u8]) -> String {
    let (w, g) = (String::from_utf8_lossy(want), String::from_utf8_lossy(got));
    let (wl, gl): (Vec<&str>, Vec<&str>) = (w.split('\n').collect(), g.split('\n').collect());
    for i in 0..wl.len().max(gl.len()) {
        let (a, b) = (wl.get(i), gl.get(i));
        if a != b {
            return format!(
                "line {}:\n  want {:?}\n  got  {:?}",
                i + 1,
                a.unwrap_or(&"<end of file>"),
                b.unwrap_or(&"<end of file>")
            );
        }
    }
    "same lines, different bytes".into()
}

#[test]
fn good_thresholds_render_exactly_the_committed_output() {
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .current_dir(good())
        .args(["--thresholds", "thresholds.yaml", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let want = tree(&good().join("out"));
    let got = tree(out.path());
    // Every stage has its file in the expected output, so a stage that stops writing fails here.
    for p in [
        "prometheus/rules/test.rules.yml",
        "prometheus/tests/alerts/LowPeers.test.yml",
        "prometheus/tests/records/node_chain_send_timeouts_ratio_rate5m.test.yml",
        "prometheus/tests/gates/test-canary.test.yml",
        "alertmanager/alertmanager.yml",
        "alertmanager/tests/routes.tsv",
        "alertmanager/tests/inhibitions.yml",
        "grafana/dashboards/test.json",
        "grafana/provisioning/datasources/prometheus.yml",
        "docs/runbook.md",
        "kubernetes/monitoring/kustomization.yaml",
        "kubernetes/monitoring/prometheusrules/test.yaml",
        "kubernetes/monitoring/alertmanager-secret.yaml",
        "kubernetes/monitoring/dashboards/test.yaml",
        "kubernetes/sidecar/podmonitor.yaml",
        "mixin/mixin.libsonnet",
        "mixin/dashboards/test.json",
    ] {
        assert!(want.contains_key(p), "testdata/good/out lacks {p}");
    }
    let mut problems = Vec::new();
    for (path, w) in &want {
        match got.get(path) {
            None => problems.push(format!("{path}: expected, not written")),
            Some(g) if g != w => {
                problems.push(format!("{path}: differs at {}", first_difference(w, g)))
            }
            Some(_) => {}
        }
    }
    for path in got.keys().filter(|p| !want.contains_key(*p)) {
        problems.push(format!("{path}: written, not in testdata/good/out"));
    }
    assert!(
        problems.is_empty(),
        "the output of testdata/good/thresholds.yaml changed:\n{}",
        problems.join("\n")
    );
}
