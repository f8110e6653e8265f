//! The canary analysis templates (`canary/`): every one valid against the published CRD of its
//! controller (Argo Rollouts' AnalysisTemplate, Flagger's MetricTemplate; strict: no unknown
//! field), every query PromQL once its template arguments are filled in, and 001's phase-1
//! template saying what the seed says. Their queries run against a real Prometheus in
//! `tests/gate.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_norway::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rendered() -> chainwatch_rulegen::Files {
    let (_, files) = chainwatch_rulegen::generate(&root().join("thresholds.yaml"), None)
        .expect("thresholds.yaml renders");
    files
}

/// `python3 crd_check.py CRD FILES…`: (success, output).
fn crd_check(crd: &str, files: &[PathBuf]) -> (bool, String) {
    let out = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/crd_check.py"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/crds").join(crd))
        .args(files)
        .output()
        .expect("python3 (with jsonschema and yaml: scripts/test.sh installs python3-jsonschema python3-yaml)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("ModuleNotFoundError"),
        "crd_check.py needs jsonschema and yaml (Debian: python3-jsonschema python3-yaml): {text}"
    );
    (out.status.success(), text)
}

fn write_under(dir: &Path, files: &chainwatch_rulegen::Files, prefix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (path, text) in files.iter().filter(|(p, _)| p.starts_with(prefix)) {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        out.push(p);
    }
    out
}

/// A template's query with its arguments filled in, as the controller sends it.
fn filled(q: &str) -> String {
    q.replace("{{args.chain}}", "coinjecture")
        .replace("{{args.network}}", "testnet")
        .replace("{{ variables.chain }}", "coinjecture")
        .replace("{{ variables.network }}", "testnet")
}

#[test]
fn every_template_is_valid_against_its_published_crd() {
    let files = rendered();
    let dir = tempfile::tempdir().unwrap();
    let argo = write_under(dir.path(), &files, "canary/argo-rollouts/");
    let flagger = write_under(dir.path(), &files, "canary/flagger/");
    assert_eq!(argo.len(), 11, "one AnalysisTemplate per gate");
    assert_eq!(flagger.len(), 11, "one MetricTemplate per gate");
    let (ok, out) = crd_check("argo-rollouts-analysistemplate.yaml", &argo);
    assert!(ok, "{out}");
    assert!(out.contains("11 object(s) checked"), "{out}");
    let (ok, out) = crd_check("flagger-metrictemplate.yaml", &flagger);
    assert!(ok, "{out}");

    // The check fails where Kubernetes would refuse: an unknown field, a wrong type, the wrong kind.
    let text = std::fs::read_to_string(&argo[0]).unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        text.replacen("failureLimit: 0", "failureLimit: 0\n    failureLimt: 3", 1)
            .replacen("count: ", "count: [", 1)
            .replacen("count: [", "count: true #", 1),
    )
    .unwrap();
    let (ok, out) = crd_check(
        "argo-rollouts-analysistemplate.yaml",
        std::slice::from_ref(&bad),
    );
    assert!(!ok, "{out}");
    assert!(out.contains("failureLimt"), "{out}");
    assert!(out.contains("count"), "{out}");
    let (ok, out) = crd_check("flagger-metrictemplate.yaml", &[argo[0].clone()]);
    assert!(!ok && out.contains("kind"), "{out}");
}

#[test]
fn every_query_is_promql_once_its_arguments_are_filled_in() {
    let mut n = 0;
    for (path, text) in rendered().iter().filter(|(p, _)| p.starts_with("canary/")) {
        let doc: Value = serde_norway::from_str(text).unwrap();
        let queries: Vec<&str> = match doc["kind"].as_str() {
            Some("AnalysisTemplate") => doc["spec"]["metrics"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|m| m["provider"]["prometheus"]["query"].as_str().unwrap())
                .collect(),
            Some("MetricTemplate") => vec![doc["spec"]["query"].as_str().unwrap()],
            other => panic!("{path}: kind {other:?}"),
        };
        for q in queries {
            let f = filled(q);
            assert!(!f.contains("{{"), "{path}: an argument left unfilled: {f}");
            promql_parser::parser::parse(&f).unwrap_or_else(|e| panic!("{path}: {e}: {f}"));
            // The chain is the canary's argument, or the one chain the gate is about.
            assert!(
                f.contains("chain=\"") && f.contains("network=\"testnet\""),
                "{path}: not scoped to the canary's chain and network: {f}"
            );
            n += 1;
        }
    }
    assert!(n > 30, "{n} queries");
}

/// Written from seed 001's words, not from the model: "If divergences > 0, DO NOT PROCEED";
/// "zero divergences for 1+ week"; "Zero Rust errors".
#[test]
fn the_shadow_phase_template_says_what_001_says() {
    let files = rendered();
    let doc: Value =
        serde_norway::from_str(&files["canary/argo-rollouts/consensus-shadow.yaml"]).unwrap();
    assert_eq!(doc["kind"], "AnalysisTemplate");
    assert_eq!(doc["metadata"]["name"], "chainwatch-gate-consensus-shadow");
    let args: Vec<&str> = doc["spec"]["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    // The gate is about COINjecture's consensus: its queries select that chain already.
    assert_eq!(args, ["prometheus-address", "network"]);
    let metric = |name: &str| {
        doc["spec"]["metrics"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("no metric {name}"))
            .clone()
    };
    // Any divergence, at any time of the week, fails the analysis at once.
    let div = metric("rollback-divergence-stay-in-shadow-back-to-legacy");
    assert_eq!(div["failureCondition"], "result[0] == 1");
    assert_eq!(div["failureLimit"], 0);
    assert_eq!(div["interval"], "1m");
    assert_eq!(div["count"], 7 * 24 * 60, "measured for the whole week");
    let q = filled(div["provider"]["prometheus"]["query"].as_str().unwrap());
    assert!(q.contains("chain_consensus_divergences_total"), "{q}");
    assert!(q.contains("> bool 0"), "{q}");
    // After a week: zero divergences and zero Rust errors, or the rollout pauses.
    for name in [
        "proceed-zero-divergences-for-1-week",
        "proceed-zero-rust-errors",
    ] {
        let m = metric(name);
        assert_eq!(m["initialDelay"], "168h", "{name}");
        assert_eq!(m["count"], 1, "{name}");
        assert_eq!(m["successCondition"], "result[0] == 1", "{name}");
        assert_eq!(
            m["failureCondition"], "false",
            "{name}: not yet is a hold, not a failure"
        );
    }
    let q = filled(
        metric("proceed-zero-rust-errors")["provider"]["prometheus"]["query"]
            .as_str()
            .unwrap(),
    );
    assert!(
        q.contains("engine=\"rust\"") && q.contains("== bool 0"),
        "{q}"
    );

    let flagger: Value =
        serde_norway::from_str(&files["canary/flagger/consensus-shadow.yaml"]).unwrap();
    assert_eq!(flagger["spec"]["provider"]["type"], "prometheus");
    let q = filled(flagger["spec"]["query"].as_str().unwrap());
    // The week is read from its rollup answer (docs/rules.md, "Long windows"), the hour raw.
    assert!(
        (q.contains("[1w]") || q.contains(":increase1w{")) && q.contains("[1h]"),
        "{q}"
    );
}
