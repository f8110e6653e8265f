//! Node identity set by Prometheus instead of the sidecar, with Debian's real `prometheus`
//! scraping real sidecars (seed 004 puts `region` on the targets):
//! - a sidecar that sets neither `node` nor `region` serves series without them, and Prometheus's
//!   target labels put them on every `chain_*` series, with nothing renamed;
//! - a sidecar that sets them too gets its values renamed to `exported_node`/`exported_region`
//!   under the default `honor_labels: false` (the series split the README warns about), and keeps
//!   them with `honor_labels: true`;
//! - the README's scrape job, relabeling as written, names the node after the target's host.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chainwatch_tests::http::{self, urlencode};
use chainwatch_tests::process::Proc;
use chainwatch_tests::readme;
use chainwatch_tests::sidecar;
use chainwatch_tests::stack::{root, start_on_free_port, system_bin};
use chainwatch_tests::wait;
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(60);

/// A sidecar following `<dir>/<name>.log` with the dilithion profile and these `labels:`.
fn sidecar(dir: &Path, name: &str, labels: &str) -> (Proc, String) {
    let log = dir.join(format!("{name}.log"));
    std::fs::write(&log, "").unwrap();
    let cfg = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &cfg,
        format!(
            "version: 1\nprofiles: [dilithion]\n{labels}sources:\n  - name: node-log\n    type: file\n    paths: [{name}.log]\n"
        ),
    )
    .unwrap();
    sidecar::start(name, &cfg, dir, DEADLINE)
}

fn query(prom: &str, expr: &str) -> Result<Vec<Value>, String> {
    let url = format!("{prom}/api/v1/query?query={}", urlencode(expr));
    let v = http::get_json(&url);
    if v["status"] != "success" {
        return Err(format!("{expr}: {v}"));
    }
    Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
}

/// The `chain_*` series of one scrape job as Prometheus stored them.
fn chain_series(prom: &str, job: &str) -> Vec<serde_json::Map<String, Value>> {
    query(prom, &format!(r#"{{__name__=~"chain_.+", job="{job}"}}"#))
        .unwrap()
        .into_iter()
        .map(|s| s["metric"].as_object().unwrap().clone())
        .collect()
}

fn label<'a>(m: &'a serde_json::Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}

#[test]
fn prometheus_target_labels_carry_node_identity_when_the_sidecar_sets_none() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Bare: no labels at all (chain still comes from the profile). Labeled: the sidecar sets its own.
    let (_bare, bare_addr) = sidecar(dir, "bare", "");
    let (_labeled, labeled_addr) = sidecar(
        dir,
        "labeled",
        "labels: {node: sidecar-node, region: sidecar-region}\n",
    );

    let target = |job: &str, addr: &str, honor: bool| {
        format!(
            "  - job_name: {job}\n    honor_labels: {honor}\n    static_configs:\n      - targets: ['{addr}']\n        labels: {{node: dilithion-eu-1, region: eu-central}}\n"
        )
    };
    // And the README's scrape job, its relabeling as written, on the bare sidecar by host name.
    let mut readme_job = readme_identity_job();
    readme_job["job_name"] = "readme".into();
    let port = bare_addr.rsplit(':').next().unwrap();
    readme_job["static_configs"][0]["targets"] = vec![format!("localhost:{port}")].into();
    let mut prom_config: serde_norway::Value = serde_norway::from_str(&format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n{}{}{}",
        target("bare", &bare_addr, false),
        target("conflict", &labeled_addr, false),
        target("honor", &labeled_addr, true),
    ))
    .unwrap();
    prom_config["scrape_configs"]
        .as_sequence_mut()
        .unwrap()
        .push(readme_job);
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, serde_norway::to_string(&prom_config).unwrap()).unwrap();
    let prom_bin = system_bin("PROMETHEUS", &["prometheus"], "prometheus");
    let (_prometheus, prom) = start_on_free_port("prometheus", dir, |port| {
        let mut cmd = Command::new(&prom_bin);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        cmd
    });

    // A line each sidecar counts, so a series appears only after Prometheus has scraped again.
    for name in ["bare", "labeled"] {
        std::fs::write(
            dir.join(format!("{name}.log")),
            "[INFO] BLOCK FOUND! height=42\n[INFO] Connected peers: 4\n",
        )
        .unwrap();
    }
    wait::until("every job scraped the counted block", DEADLINE, || {
        let r = query(
            &prom,
            "count by (job) (chain_blocks_mined_total == 1 and chain_peers == 4)",
        )?;
        let jobs: BTreeSet<&str> = r
            .iter()
            .filter_map(|s| s["metric"]["job"].as_str())
            .collect();
        if jobs.len() == 4 {
            Ok(())
        } else {
            Err(format!("jobs with the block so far: {jobs:?}"))
        }
    });

    // The sidecar's own output has no node or region.
    let (status, body) = http::get(&format!("http://{bare_addr}/metrics")).unwrap();
    assert_eq!(status, 200);
    let served: BTreeSet<String> = body
        .lines()
        .filter(|l| l.starts_with("chain_"))
        .map(|l| {
            assert!(
                !l.contains("node=")
                    && !l.contains("region=")
                    && l.contains(r#"chain="dilithion""#),
                "{l}"
            );
            l.split(['{', ' ']).next().unwrap().to_string()
        })
        .collect();
    assert!(
        !served.is_empty(),
        "the sidecar serves chain_* series:\n{body}"
    );

    // Sidecar without identity: every chain_* series carries the target's node and region and
    // the profile's chain; nothing is renamed; every metric it serves is there.
    let bare = chain_series(&prom, "bare");
    let stored: BTreeSet<String> = bare
        .iter()
        .map(|m| label(m, "__name__").unwrap().to_string())
        .collect();
    assert_eq!(
        stored, served,
        "Prometheus stored every chain_* metric served"
    );
    for m in &bare {
        assert_eq!(label(m, "node"), Some("dilithion-eu-1"), "{m:?}");
        assert_eq!(label(m, "region"), Some("eu-central"), "{m:?}");
        assert_eq!(label(m, "chain"), Some("dilithion"), "{m:?}");
        assert!(
            !m.keys().any(|k| k.starts_with("exported_")),
            "nothing renamed: {m:?}"
        );
    }

    // The README's relabeling: node from the target's host name, network and region static.
    let readme = chain_series(&prom, "readme");
    assert_eq!(readme.len(), bare.len());
    for m in &readme {
        assert_eq!(
            (label(m, "node"), label(m, "region"), label(m, "network")),
            (Some("localhost"), Some("eu-central"), Some("testnet")),
            "{m:?}"
        );
    }

    // Both set, honor_labels false: the target wins and the sidecar's values are renamed.
    let conflict = chain_series(&prom, "conflict");
    assert!(!conflict.is_empty());
    for m in &conflict {
        assert_eq!(
            (
                label(m, "node"),
                label(m, "exported_node"),
                label(m, "region"),
                label(m, "exported_region")
            ),
            (
                Some("dilithion-eu-1"),
                Some("sidecar-node"),
                Some("eu-central"),
                Some("sidecar-region")
            ),
            "{m:?}"
        );
    }
    // honor_labels true: the sidecar's values stay, nothing renamed.
    let honor = chain_series(&prom, "honor");
    assert!(!honor.is_empty());
    for m in &honor {
        assert_eq!(label(m, "node"), Some("sidecar-node"), "{m:?}");
        assert_eq!(label(m, "region"), Some("sidecar-region"), "{m:?}");
        assert!(!m.keys().any(|k| k.starts_with("exported_")), "{m:?}");
    }
}

/// The README's scrape job that puts node identity on the targets.
fn readme_identity_job() -> serde_norway::Value {
    let doc: serde_norway::Value =
        serde_norway::from_str(&readme::block(&root(), "prometheus-identity")).unwrap();
    doc["scrape_configs"][0].clone()
}

/// The README's scrape job is a valid Prometheus configuration as written.
#[test]
fn the_readme_identity_scrape_job_passes_promtool() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("prometheus.yml");
    std::fs::write(&config, readme::block(&root(), "prometheus-identity")).unwrap();
    let promtool = system_bin("PROMTOOL", &["promtool"], "prometheus");
    let out = Command::new(promtool)
        .args(["check", "config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
