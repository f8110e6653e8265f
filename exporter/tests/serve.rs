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

fn sighup(s: &Sidecar) {
    unsafe {
        libc::kill(s.child.id() as i32, libc::SIGHUP);
    }
}

/// SIGHUP swaps in a new configuration without losing or recounting a line (no --state.dir:
/// the sources hand over through a private state directory), and a bad one leaves the running
/// configuration alone.
#[test]
fn sighup_reloads_atomically_and_refuses_a_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    let mut s = Sidecar::start(&cfg, &[]);
    s.wait_ready();
    let log = dir.path().join("node.log");
    let writer_log = log.clone();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        let mut n = 0u64;
        while stop_rx.try_recv().is_err() {
            n += 1;
            append(&writer_log, &format!("[INFO] BLOCK FOUND! seq={n}\n"));
            if n.is_multiple_of(50) {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
        n
    });
    poll_until("lines flowing", || (mined(&s) > 100.0).then_some(()));

    // A good new config: other constant labels.
    write(
        &cfg,
        &std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("node: n1", "node: n2"),
    );
    sighup(&s);
    s.wait_log(|l| l.contains("configuration reloaded"));
    poll_until("new labels", || {
        let m = s.metrics();
        (value(&m, "chain_blocks_mined_total", &[("node", "n2")]).unwrap_or(0.0) > 0.0)
            .then_some(())
    });
    assert_eq!(
        value(
            &s.metrics(),
            "chainwatch_config_last_reload_successful",
            &[]
        ),
        Some(1.0)
    );

    // A bad one: the running configuration stays.
    std::fs::write(&cfg, "version: 1\nprofiles: [dilithion]\nsources:\n  - name: x\n    type: file\n    paths: [\"[\"]\n").unwrap();
    sighup(&s);
    s.wait_log(|l| l.contains("reload failed"));
    poll_until("reload failure reported", || {
        (value(
            &s.metrics(),
            "chainwatch_config_last_reload_successful",
            &[],
        ) == Some(0.0))
        .then_some(())
    });
    let before = value(&s.metrics(), "chain_blocks_mined_total", &[("node", "n2")]).unwrap();
    poll_until("still counting", || {
        (value(&s.metrics(), "chain_blocks_mined_total", &[("node", "n2")]).unwrap() > before)
            .then_some(())
    });

    stop_tx.send(()).unwrap();
    let written = writer.join().unwrap() as f64;
    // The first configuration logged its final count when the reload stopped it.
    let first = final_count(&s.lines, "rule=dilithion/block_found,source=node-log");
    poll_until("every line", || {
        let got = value(&s.metrics(), "chain_blocks_mined_total", &[("node", "n2")]).unwrap_or(0.0);
        assert!(
            first + got <= written,
            "counted twice: {first} + {got} > {written}"
        );
        (first + got == written).then_some(())
    });
    let (code, lines) = s.terminate();
    assert_eq!(code, 0);
    // Each generation logs its final counts; together they are every line written, once.
    let total: f64 = lines
        .iter()
        .filter(|l| l.contains("msg=\"final count\"") && l.contains("rule=dilithion/block_found"))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("value="))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .sum();
    assert_eq!(
        total, written,
        "lines lost or counted twice across the reload"
    );
}

#[test]
fn concurrent_scrapes_beyond_the_limit_get_503() {
    let dir = tempfile::tempdir().unwrap();
    let s = Sidecar::start(&config(dir.path(), ""), &["--web.max-requests", "1"]);
    s.wait_ready();
    let addr = s.addr.clone();
    let codes: Vec<u16> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..64)
            .map(|_| sc.spawn(|| common::process::http_get(&addr, "/metrics").0))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(codes.iter().all(|c| *c == 200 || *c == 503), "{codes:?}");
    assert!(codes.contains(&200), "{codes:?}");
    assert!(
        codes.contains(&503),
        "no scrape was refused at the limit: {codes:?}"
    );
}

/// Forty scrapes at once of a large registry cost the memory of one encode, not forty.
#[test]
fn concurrent_scrapes_share_one_encode() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("ping.yaml");
    write(
        &profile,
        "version: 1\nname: ping\nrules:\n  - name: ping\n    regex: 'ping peer=(?P<p>\\S+) rtt=(?P<ms>[0-9.]+)ms'\n    actions:\n      - gauge: chain_peer_ping_seconds\n        value: ms\n        unit: ms\n        labels: {peer: $p}\n",
    );
    let cfg = dir.path().join("c.yaml");
    write(
        &cfg,
        &format!(
            "version: 1\nprofiles: [\"{}\"]\nmax_series_per_metric: 20000\nsources:\n  - name: node-log\n    type: file\n    paths: [\"{}/node.log\"]\n",
            profile.display(),
            dir.path().display()
        ),
    );
    let s = Sidecar::start(&cfg, &["--web.max-requests", "0"]);
    s.wait_ready();
    let lines: String = (0..10_000)
        .map(|i| {
            format!(
                "ping peer=10.{}.{}.{}:8444 rtt=12.5ms\n",
                i / 65536,
                (i / 256) % 256,
                i % 256
            )
        })
        .collect();
    append(&dir.path().join("node.log"), &lines);
    poll_until("10k series", || {
        let (_, body) = s.get("/metrics");
        (body.matches("chain_peer_ping_seconds{").count() == 10_000).then_some(())
    });
    let addr = s.addr.clone();
    for _ in 0..3 {
        std::thread::scope(|sc| {
            let hs: Vec<_> = (0..40)
                .map(|_| sc.spawn(|| common::process::http_get(&addr, "/metrics")))
                .collect();
            for h in hs {
                let (code, body) = h.join().unwrap();
                assert_eq!(code, 200);
                assert_eq!(body.matches("chain_peer_ping_seconds{").count(), 10_000);
            }
        });
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.child.id())).unwrap();
    let hwm_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    // One encode of 10k series is ~7 MiB; forty separate ones were ~280 MiB.
    assert!(
        hwm_kb < 96 * 1024,
        "peak RSS {hwm_kb} kB under 40 concurrent scrapes"
    );
}

/// `chainwatch_source_up` of a file source: 0 while a path it matches cannot be read (a symlink
/// loop: unreadable for root too), with the error counted as `read`; the files it can read are
/// read all along; 1 again once the problem is gone.
#[test]
fn a_file_source_that_cannot_read_its_paths_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let looped = dir.path().join("node.log.loop");
    std::os::unix::fs::symlink(&looped, &looped).unwrap();
    let s = Sidecar::start(&config(dir.path(), "    poll_interval: 100ms\n"), &[]);
    let src = [("source", "node-log")];
    poll_until("down with a read error", || {
        let m = s.metrics();
        (value(&m, "chainwatch_source_up", &src) == Some(0.0)
            && value(
                &m,
                "chainwatch_source_errors_total",
                &[("source", "node-log"), ("kind", "read")],
            ) >= Some(1.0))
        .then_some(())
    });
    let (_, health) = s.get("/health");
    assert!(health.contains("node.log.loop"), "{health}");
    append(
        &dir.path().join("node.log"),
        "[INFO] BLOCK FOUND! height=5\n",
    );
    poll_until("the readable file read", || {
        (mined(&s) == 1.0).then_some(())
    });
    assert_eq!(value(&s.metrics(), "chainwatch_source_up", &src), Some(0.0));
    std::fs::remove_file(&looped).unwrap();
    poll_until("up again", || {
        (value(&s.metrics(), "chainwatch_source_up", &src) == Some(1.0)).then_some(())
    });
    let m = s.metrics();
    assert!(value(&m, "chainwatch_source_last_success_timestamp_seconds", &src) > Some(0.0));
    for kind in ["watch", "checkpoint"] {
        assert_eq!(
            value(
                &m,
                "chainwatch_source_errors_total",
                &[("source", "node-log"), ("kind", kind)]
            ),
            Some(0.0),
            "{kind}"
        );
    }
}
