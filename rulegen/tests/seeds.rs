//! Tests written by hand from the seeds' words, not from the model the rules are generated from:
//! the rollout gates of 000 stage 4 ("Equilibrium maintained >90% of time", a week), 001 ("Zero
//! divergences for 1+ week", "Zero fallbacks to legacy for 1+ week") and 002 ("50+ / 100+ / 500+
//! blocks propagated", zero timeouts), and the SLOs of 000 stage 3 (">95% CID propagation
//! success"), 000 stage 4 (equilibrium > 90% of a week) and 002 (block propagation failures at most
//! 5%): a fast burn pages, a slow one tickets, a healthy week fires nothing, the budget left, on the shipped rules (`prometheus/rules/`, which
//! `cli.rs` keeps equal to what thresholds.yaml generates), by the real promtool.

use std::path::Path;
use std::process::Command;

#[test]
fn seed_gates_hold_on_the_shipped_rules() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/seeds");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".test.yml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 6, "{files:?}");
    let o = Command::new("promtool")
        .args(["test", "rules"])
        .args(&files)
        .current_dir(&dir)
        .output()
        .expect("promtool not found: install Debian's `prometheus` package (scripts/test.sh does)");
    let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "promtool test rules failed:\n{out}");
    assert_eq!(out.matches("SUCCESS").count(), 6, "{out}");
}
