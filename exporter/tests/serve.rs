//! The sidecar as operators run it: a real process following real files, scraped over HTTP, stopped
//! with SIGTERM.

mod common;
use common::process::{final_count, poll_until, Sidecar};
use common::*;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

fn config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let p = dir.join("chainwatch.yaml");
    write(
        &p,
        &format!(
            "version: 1\nprofiles: [dilithion]\nlabels: {{node: n1, region: eu-central, network: testnet}}\nsources:\n  - name: node-log\n    type: file\n    paths: [\"{}/node.log*\"]\n{extra}",
            dir.display()
        ),
    );
    p
}

fn append(path: &Path, text: &str) {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

fn mined(s: &Sidecar) -> f64 {
    value(&s.metrics(), "chain_blocks_mined_total", &[]).unwrap_or(0.0)
}

#[test]
fn serves_metrics_health_and_landing_page() {
    let dir = tempfile::tempdir().unwrap();
    let s = Sidecar::start(&config(dir.path(), ""), &[]);
    s.wait_ready();
    append(
        &dir.path().join("node.log"),
        "[INFO] BLOCK FOUND! height=5\n[INFO] Connected peers: 4\n",
    );
    poll_until("two lines counted", || {
        let m = s.metrics();
        (value(&m, "chain_blocks_mined_total", &[]) == Some(1.0)
            && value(&m, "chain_peers", &[]) == Some(4.0))
        .then_some(())
    });
    let (status, body) = s.get("/metrics");
    assert_eq!(status, 200);
    promtool_check_metrics(&body);
    let samples = parse(&body);
    for (series, _) in &samples {
        assert!(
            chainwatch_catalog::resolve_series(&series.name).is_some(),
            "{} is not in the catalog",
            series.name
        );
        assert_eq!(
            series.labels.get("region").map(String::as_str),
            Some("eu-central")
        );
    }
    assert_eq!(
        value(
            &samples,
            "chain_peers",
            &[("node", "n1"), ("chain", "dilithion")]
        ),
        Some(4.0)
    );
    assert_eq!(
        value(&samples, "chainwatch_source_up", &[("source", "node-log")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &samples,
            "chainwatch_files_followed",
            &[("source", "node-log")]
        ),
        Some(1.0)
    );
    assert!(value(&samples, "chainwatch_build_info", &[]).is_some());

    let (status, health) = s.get("/health");
    assert_eq!(status, 200);
    let h: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(h["sources"]["node-log"]["state"], "following", "{health}");
    let (status, page) = s.get("/");
    assert_eq!(status, 200);
    assert!(
        page.contains("href=\"/metrics\"") && page.contains("/health"),
        "{page}"
    );
    assert_eq!(s.get("/nope").0, 404);
    let (code, _) = s.terminate();
    assert_eq!(code, 0, "SIGTERM is a clean shutdown");
}

#[test]
fn telemetry_path_flag_moves_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let s = Sidecar::start(
        &config(dir.path(), ""),
        &["--web.telemetry-path", "/x/metrics"],
    );
    assert_eq!(s.get("/x/metrics").0, 200);
    assert_eq!(s.get("/metrics").0, 404);
}

#[test]
fn existing_content_is_skipped_and_new_lines_counted() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("node.log");
    append(
        &log,
        "[INFO] BLOCK FOUND! old 1\n[INFO] BLOCK FOUND! old 2\n",
    );
    let s = Sidecar::start(&config(dir.path(), ""), &[]);
    s.wait_ready();
    append(&log, "[INFO] BLOCK FOUND! new 1\n");
    poll_until("the new line", || (mined(&s) == 1.0).then_some(()));
}

#[test]
fn bad_config_is_refused_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.yaml");
    write(&p, "version: 1\nprofiles: [dilithion]\nsources:\n  - name: a\n    type: file\n    paths: [x]\n    rotate_wait: soon\n");
    let out = std::process::Command::new(bin())
        .arg("--config")
        .arg(&p)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:7:", p.display())) && err.contains("sources[0].rotate_wait"),
        "{err}"
    );
    let ok = config(dir.path(), "");
    let out = std::process::Command::new(bin())
        .arg("--config")
        .arg(&ok)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The acceptance test: 200k lines, rename rotation every 10k, copytruncate every 25k,
/// a SIGTERM and restart with --state.dir in the middle; the count is exact.
#[test]
fn rotation_storm_with_restart_counts_every_line_once() {
    rotation_storm("    poll_interval: 50ms\n");
}

/// The same on a filesystem without inotify (NFS and friends): polling alone.
#[test]
fn rotation_storm_polling_only() {
    rotation_storm("    poll_interval: 20ms\n    inotify: false\n");
}

fn rotation_storm(source_options: &str) {
    const TOTAL: usize = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let cfg = config(dir.path(), source_options);
    let state_arg = state.to_str().unwrap().to_string();
    let first = Sidecar::start(&cfg, &["--state.dir", &state_arg]);
    first.wait_ready();

    let (progress_tx, progress_rx) = std::sync::mpsc::channel::<usize>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let logdir = dir.path().to_path_buf();
    let writer = std::thread::spawn(move || {
        let log = logdir.join("node.log");
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let line = |i: usize| {
            format!("2025-11-08 23:20:01 [INFO] BLOCK FOUND! seq={i:07} hash=0000{i:x}\n")
        };
        let (mut paused, mut resumed) = (false, false);
        let mut i = 0;
        while i < TOTAL {
            i += 1;
            f.write_all(line(i).as_bytes()).unwrap();
            if i % 10_000 == 0 {
                std::fs::rename(&log, logdir.join(format!("node.log.{i}"))).unwrap();
                // A late write to the renamed file, through the old handle.
                if i < TOTAL {
                    i += 1;
                    f.write_all(line(i).as_bytes()).unwrap();
                }
                f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap();
            } else if i % 25_000 == 0 {
                std::fs::copy(&log, logdir.join(format!("node.log.c{i}"))).unwrap();
                f.set_len(0).unwrap();
            }
            if !paused && i >= TOTAL / 2 {
                paused = true;
                progress_tx.send(i).unwrap();
                go_rx.recv().unwrap();
            }
            if !resumed && i >= TOTAL / 2 + 20_000 {
                resumed = true;
                progress_tx.send(i).unwrap();
            }
        }
    });

    // Halfway: stop the first sidecar while the writer is paused, then let it write on while no
    // sidecar runs.
    progress_rx.recv().unwrap();
    poll_until("first half", || (mined(&first) > 0.0).then_some(()));
    let (code, lines) = first.terminate();
    assert_eq!(code, 0);
    let counted_first = final_count(&lines, "rule=dilithion/block_found,source=node-log");
    go_tx.send(()).unwrap();
    progress_rx.recv().unwrap();
    let second = Sidecar::start(&cfg, &["--state.dir", &state_arg]);
    writer.join().unwrap();
    let want = TOTAL as f64 - counted_first;
    poll_until("every line counted", || {
        let got = mined(&second);
        assert!(got <= want, "counted {got} > {want}: lines counted twice");
        (got == want).then_some(())
    });
    let (code, lines) = second.terminate();
    assert_eq!(code, 0);
    assert_eq!(
        counted_first + final_count(&lines, "rule=dilithion/block_found,source=node-log"),
        TOTAL as f64
    );
}
