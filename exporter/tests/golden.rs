//! The whole `/metrics` of a replay, per built-in profile, against a committed golden file — byte
//! for byte, as node_exporter's end-to-end fixture does — then `promtool check metrics` on it. A
//! change to a profile, the catalog or the exposition shows up here as a diff to review.
//!
//! After an intended change: `CHAINWATCH_UPDATE_GOLDEN=1 cargo test -p chainwatch-exporter --test golden`
//! rewrites the files; commit them with the change.

mod common;
use common::*;

/// The build's own identity is the one part of the output that is not the profile's: its label
/// values are replaced by placeholders.
fn normalize(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("chainwatch_build_info{") {
            let (head, rest) = line.split_once('{').unwrap();
            let (labels, value) = rest.rsplit_once("} ").unwrap();
            let labels: Vec<String> = labels
                .split(',')
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap();
                    match k {
                        "version" | "revision" | "rustversion" => format!("{k}=\"<{k}>\""),
                        _ => format!("{k}={v}"),
                    }
                })
                .collect();
            out.push_str(&format!("{head}{{{}}} {value}\n", labels.join(",")));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn golden(profile: &str) {
    let out = replay(&[
        "--profile",
        profile,
        "--label",
        "node=n1",
        "--label",
        "network=testnet",
        &fixture(&format!("{profile}.log")),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = normalize(&String::from_utf8(out.stdout).unwrap());
    let path = format!(
        "{}/tests/golden/{profile}.metrics",
        env!("CARGO_MANIFEST_DIR")
    );
    if std::env::var_os("CHAINWATCH_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (CHAINWATCH_UPDATE_GOLDEN=1 writes it)"));
    if got != want {
        let diff = std::process::Command::new("diff")
            .args(["-u", &path, "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(got.as_bytes())?;
                c.wait_with_output()
            })
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        panic!("/metrics of {profile} differs from {path} (CHAINWATCH_UPDATE_GOLDEN=1 rewrites it after an intended change):\n{diff}");
    }
    promtool_check_metrics(&want);
}

#[test]
fn bitcell() {
    golden("bitcell");
}

#[test]
fn coinjecture_consensus() {
    golden("coinjecture-consensus");
}

#[test]
fn coinjecture_network() {
    golden("coinjecture-network");
}

#[test]
fn dilithion() {
    golden("dilithion");
}

#[test]
fn pop_validator() {
    golden("pop-validator");
}

/// Every built-in has its golden file (a new profile gets one too).
#[test]
fn every_builtin_has_a_golden_file() {
    for b in chainwatch_exporter::profile::BUILTINS {
        let path = format!(
            "{}/tests/golden/{}.metrics",
            env!("CARGO_MANIFEST_DIR"),
            b.name
        );
        assert!(std::path::Path::new(&path).exists(), "{path} missing");
        assert!(
            std::path::Path::new(&fixture(&format!("{}.log", b.name))).exists(),
            "no fixture log for {}",
            b.name
        );
    }
}
