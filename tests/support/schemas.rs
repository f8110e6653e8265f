//! Generated output checked against the schemas its consumers publish: prometheus-operator's CRDs
//! (validated with Ajv, `tests/schemas/crd.mjs`) and the TypeScript types of `@grafana/schema` and
//! `kubernetes-types` (checked by `tsc`). The npm packages are pinned by
//! `tests/schemas/package-lock.json` and installed by `scripts/schemas.sh` into target/schemas/.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::stack::{root, system_bin};

/// target/schemas/node_modules, installed (once per lock file) by scripts/schemas.sh.
pub fn node_modules() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = Command::new("bash")
            .arg(root().join("scripts/schemas.sh"))
            .output()
            .expect("run scripts/schemas.sh");
        assert!(
            out.status.success(),
            "scripts/schemas.sh failed (it needs npm and the npm registry):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
    .clone()
}

pub fn node() -> PathBuf {
    system_bin("NODE", &["node", "nodejs"], "nodejs")
}

/// A YAML file as JSON (every document of it).
pub fn yaml_docs(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_norway::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).expect("YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// The vendored CRDs (tests/schemas/crds/*.yaml).
pub fn crds() -> Vec<Value> {
    let mut v = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join("tests/schemas/crds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    for p in paths {
        v.extend(yaml_docs(&std::fs::read_to_string(p).unwrap()));
    }
    assert!(v.len() >= 2, "the CRDs of tests/schemas/crds are missing");
    v
}

/// Each named document's validation errors against the CRD of its apiVersion and kind (strict:
/// an unknown field is an error, as the API server's strict field validation has it).
pub fn validate_crds(docs: &[(String, Value)]) -> BTreeMap<String, Vec<String>> {
    // ESM resolves `import "ajv"` from the script's own directory, so the script runs from a
    // directory beside node_modules.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(node_modules(), dir.path().join("node_modules")).unwrap();
    std::fs::copy(
        root().join("tests/schemas/crd.mjs"),
        dir.path().join("crd.mjs"),
    )
    .unwrap();
    let input = dir.path().join("input.json");
    let docs: Vec<Value> = docs
        .iter()
        .map(|(n, d)| json!({"name": n, "doc": d}))
        .collect();
    std::fs::write(&input, json!({"crds": crds(), "docs": docs}).to_string()).unwrap();
    let out = Command::new(node())
        .arg(dir.path().join("crd.mjs"))
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "crd.mjs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("crd.mjs prints JSON")
}

/// `tsc` over TypeScript files (name → source) beside tests/schemas/schema.ts: the diagnostics of
/// each file, by name (an entry for every file; empty: it type-checks).
pub fn typecheck(files: &[(String, String)]) -> BTreeMap<String, Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(node_modules(), dir.path().join("node_modules")).unwrap();
    std::fs::copy(
        root().join("tests/schemas/schema.ts"),
        dir.path().join("schema.ts"),
    )
    .unwrap();
    for (name, src) in files {
        std::fs::write(dir.path().join(name), src).unwrap();
    }
    std::fs::write(
        dir.path().join("tsconfig.json"),
        json!({
            "compilerOptions": {
                "strict": true, "noEmit": true, "skipLibCheck": true, "types": [],
                "module": "nodenext", "moduleResolution": "nodenext", "target": "es2022"
            },
            "include": ["*.ts"]
        })
        .to_string(),
    )
    .unwrap();
    let out = Command::new(node())
        .arg(node_modules().join("typescript/bin/tsc"))
        .args(["-p", ".", "--pretty", "false"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut diags: BTreeMap<String, Vec<String>> =
        files.iter().map(|(n, _)| (n.clone(), Vec::new())).collect();
    // `file.ts(12,3): error TS2353: …`, then the diagnostic's indented continuation lines.
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.starts_with(' ') {
            if let Some(d) = current.as_ref().and_then(|f| diags.get_mut(f)) {
                d.push(line.trim().to_string());
            }
            continue;
        }
        current = line
            .split_once('(')
            .map(|(f, _)| f.to_string())
            .filter(|f| diags.contains_key(f));
        match &current {
            Some(f) => diags.get_mut(f).unwrap().push(line[f.len()..].to_string()),
            None => diags
                .entry("(tsc)".into())
                .or_default()
                .push(line.to_string()),
        }
    }
    if !out.status.success() && diags.values().all(|d| d.is_empty()) {
        panic!(
            "tsc failed without diagnostics:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    diags
}

/// A TypeScript expression of a JSON value (JSON is one).
pub fn ts(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap()
}

/// Path of a file under the workspace.
pub fn path(rel: &str) -> PathBuf {
    root().join(Path::new(rel))
}
