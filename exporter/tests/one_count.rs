//! One event, one count. A COINjecture node that writes both forms of seed 000 — a line per CID
//! gossip and JSON state lines with its running totals — is counted once, exactly; two profiles
//! that read the same fact are refused at load, naming both rules, until one says how they combine;
//! and a profile merged beside another never relabels the chain.

mod common;
use common::journal::append;
use common::process::{poll_until, Sidecar};
use common::*;

use std::collections::BTreeMap;
use std::path::Path;

use chainwatch_exporter::pipeline;

/// A deterministic stream of what a COINjecture API node logs: CID gossips (most succeed; failures
/// in the wordings nodes use) and, every `every` events, the seed's JSON state line with the
/// process's running totals. Halfway the node restarts: its totals start again from 0. The last
/// line is a state line. Returns the lines and the true numbers of broadcasts and failures.
fn seed_000_log(events: usize, every: usize) -> (Vec<String>, u64, u64) {
    const FAILURES: &[&str] = &[
        "WARNING Failed to broadcast CID {cid}: timeout after 5s",
        "WARNING Failed to propagate CID {cid}: peer timeout",
        "ERROR CID {cid} gossip error: connection reset",
        "WARNING gossip of CID {cid} failed",
        "WARNING CID {cid} broadcast failed: no peers",
    ];
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut lines, mut ok, mut failed) = (Vec::new(), 0u64, 0u64);
    // The node process's own totals (reset by the restart).
    let (mut life_ok, mut life_failed) = (0u64, 0u64);
    let state = |ok: u64, failed: u64, n: usize| {
        format!(
            "{{\"timestamp\": \"2025-10-30T12:{:02}:{:02}Z\", \"node_id\": \"node123\", \"lambda_state\": 0.7071, \"eta_state\": 0.7068, \"ratio\": 1.0004, \"peers_active\": 15, \"cids_queued\": 3, \"cids_broadcast\": {ok}, \"cids_failed\": {failed}}}",
            n / 60 % 60,
            n % 60
        )
    };
    for n in 0..events {
        let cid = format!("bafy2bzace{:012x}", next() & 0xffff_ffff_ffff);
        let r = next();
        if r % 100 < 12 {
            let w = FAILURES[(r / 100) as usize % FAILURES.len()];
            lines.push(w.replace("{cid}", &cid));
            failed += 1;
            life_failed += 1;
        } else {
            lines.push(format!(
                "INFO 📡 Broadcasting CID {cid} to {} peers",
                10 + r % 6
            ));
            if r % 3 == 0 {
                lines.push(format!("INFO CID {cid} propagated in {}ms", 150 + r % 700));
            }
            ok += 1;
            life_ok += 1;
        }
        if (n + 1) % every == 0 || n + 1 == events {
            lines.push(state(life_ok, life_failed, n));
        }
        if n + 1 == events / 2 {
            // The final state line of the old process, then a new process counting from 0.
            lines.push(state(life_ok, life_failed, n));
            lines.push("INFO coinjecture-api starting (pid 913)".into());
            life_ok = 0;
            life_failed = 0;
        }
    }
    (lines, ok, failed)
}

#[test]
fn a_journal_with_both_forms_of_seed_000_counts_every_broadcast_and_failure_once() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("api.journal");
    let (lines, ok, failed) = seed_000_log(400, 17);
    // Before the first start: history, which a first run skips (as `journalctl -f` does).
    append(&journal, "coinjecture-api", &[b"INFO starting".to_vec()]);
    let cfg = dir.path().join("chainwatch.yaml");
    write(
        &cfg,
        &format!(
            "version: 1\nprofiles: [coinjecture-network]\nlabels: {{node: n1}}\nsources:\n  - name: api-journal\n    type: journal\n    units: [coinjecture-api.service]\n    files: [\"{}\"]\n",
            journal.display()
        ),
    );
    let s = Sidecar::start(&cfg, &[]);
    s.wait_ready();
    let msgs: Vec<Vec<u8>> = lines.iter().map(|l| l.clone().into_bytes()).collect();
    append(&journal, "coinjecture-api", &msgs);
    // Counters move a moment after the line counter (a scrape can fall inside a chunk): wait for
    // the counts, then check that every entry was read and nothing more was counted.
    let want = |m: &[(Series, f64)]| {
        value(m, "chain_cid_broadcasts_total", &[]) == Some(ok as f64)
            && value(m, "chain_cid_broadcast_failures_total", &[]) == Some(failed as f64)
    };
    poll_until("the counts", || want(&s.metrics()).then_some(()));
    let m = s.metrics();
    assert_eq!(
        value(
            &m,
            "chainwatch_source_lines_read_total",
            &[("source", "api-journal")]
        ),
        Some(lines.len() as f64)
    );
    assert!(want(&m), "{m:?}");
    // What the lines alone and the totals alone add up to, so the test would see a double count.
    let matched = |rule: &str| {
        value(
            &m,
            "chainwatch_rule_matches_total",
            &[("rule", rule), ("source", "api-journal")],
        )
        .unwrap()
    };
    assert_eq!(matched("coinjecture-network/cid_broadcast"), ok as f64);
    assert_eq!(
        matched("coinjecture-network/cid_broadcast_failed"),
        failed as f64
    );
    promtool_check_metrics(&s.get("/metrics").1);
    let (code, _) = s.terminate();
    assert_eq!(code, 0);
}

/// Line by line: the count never runs ahead of the node, and equals the node's own totals at
/// every state line.
#[test]
fn the_count_is_never_ahead_and_exact_at_every_state_line() {
    let (lines, _, _) = seed_000_log(300, 11);
    let mut p = pipeline::build(&["coinjecture-network".into()], &BTreeMap::new(), 100).unwrap();
    let stats = p.engine.source_stats(&mut p.metrics, "t").unwrap();
    let mut scratch = p.engine.scratch();
    let counter = |p: &pipeline::Pipeline, name: &str| {
        p.metrics
            .registry()
            .gather()
            .iter()
            .find(|f| f.name() == name)
            .map_or(0.0, |f| f.get_metric()[0].get_counter().get_value())
    };
    let (mut ok, mut failed) = (0.0, 0.0);
    // Totals of earlier lives of the node, added to the current life's.
    let (mut before_ok, mut before_failed, mut last) = (0.0, 0.0, (0.0, 0.0));
    let mut states = 0;
    for l in &lines {
        p.engine.process_line(l.as_bytes(), &stats, &mut scratch);
        if l.starts_with('{') {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let now = (
                v["cids_broadcast"].as_f64().unwrap(),
                v["cids_failed"].as_f64().unwrap(),
            );
            if now.0 < last.0 {
                before_ok += last.0;
                before_failed += last.1;
            }
            last = now;
            assert_eq!(
                counter(&p, "chain_cid_broadcasts_total"),
                before_ok + now.0,
                "{l}"
            );
            assert_eq!(
                counter(&p, "chain_cid_broadcast_failures_total"),
                before_failed + now.1,
                "{l}"
            );
            states += 1;
        } else if l.contains("Broadcasting") {
            ok += 1.0;
        } else if !l.contains("propagated") && !l.contains("starting") {
            failed += 1.0;
        }
        assert!(counter(&p, "chain_cid_broadcasts_total") <= ok, "{l}");
        assert!(
            counter(&p, "chain_cid_broadcast_failures_total") <= failed,
            "{l}"
        );
    }
    assert!(states > 20);
    assert_eq!(counter(&p, "chain_cid_broadcasts_total"), ok);
    assert_eq!(counter(&p, "chain_cid_broadcast_failures_total"), failed);
}

/// A node that writes only the event lines (the simulated fleet's nodes do) is still counted.
#[test]
fn a_node_without_state_lines_is_counted_by_its_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("api.log");
    write(
        &log,
        "INFO 📡 Broadcasting CID a to 15 peers\nINFO 📡 Broadcasting CID b to 15 peers\nWARNING Failed to broadcast CID c: timeout after 5s\n",
    );
    let out = replay(&["--profile", "coinjecture-network", log.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = parse(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(value(&s, "chain_cid_broadcasts_total", &[]), Some(2.0));
    assert_eq!(
        value(&s, "chain_cid_broadcast_failures_total", &[]),
        Some(1.0)
    );
}

/// A user's profile for a Bitcoin-Core-style debug.log, loaded beside `dilithion` to reuse its
/// Bitcoin-compatible JSON-RPC mapping. Lines as Bitcoin Core writes them.
const BTC_PROFILE: &str = r#"version: 1
name: btc
description: Bitcoin-Core-style debug.log.
rules:
  - name: update_tip
    regex: 'UpdateTip: new best=\w+ height=(?P<height>\d+)'
    examples:
      - '2024-05-01T10:00:00Z UpdateTip: new best=0000000000000000000320283a032748cef8227873ff4872689bf23f1cda83a5 height=840000 version=0x20000000 log2_work=94.856845 tx=1000000000 progress=1.000000'
    actions:
      - gauge: chain_block_height
        value: height
  - name: socket_error
    regex: 'socket (?:send|recv) error'
    examples:
      - '2024-05-01T10:00:01Z socket send error Broken pipe (32)'
    actions:
      - counter: chain_socket_errors_total
  - name: log_error
    regex: '\bERROR:'
    examples:
      - '2024-05-01T10:00:02Z ERROR: AcceptBlockHeader: block 000000000000000000021b3c is marked invalid'
    actions:
      - counter: chain_log_errors_total
"#;

const DEBUG_LOG: &str = "\
2024-05-01T10:00:00Z UpdateTip: new best=0000000000000000000320283a032748cef8227873ff4872689bf23f1cda83a5 height=840000 version=0x20000000 log2_work=94.856845 tx=1000000000 progress=1.000000
2024-05-01T10:00:00Z Synchronizing blockheaders, height: 840123 (~99.87%)
2024-05-01T10:00:01Z socket send error Broken pipe (32)
2024-05-01T10:00:01Z socket recv error Connection reset by peer (104)
2024-05-01T10:00:02Z ERROR: AcceptBlockHeader: block 000000000000000000021b3c is marked invalid
2024-05-01T10:00:03Z Saw new header hash=00000000000000000001c7b0f8e1 height=840124
";

fn btc_dir(combine: &str) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("btc.yaml");
    write(&profile, &format!("{BTC_PROFILE}{combine}"));
    let log = dir.path().join("debug.log");
    write(&log, DEBUG_LOG);
    (dir, profile, log)
}

fn check_config(dir: &Path, profile: &Path, labels: &str) -> std::process::Output {
    let cfg = dir.join("chainwatch.yaml");
    write(
        &cfg,
        &format!(
            "version: 1\nprofiles: [\"{}\", dilithion]\nlabels: {{node: n1{labels}}}\nsources:\n  - name: debug-log\n    type: file\n    paths: [\"{}/debug.log\"]\n",
            profile.display(),
            dir.display()
        ),
    );
    std::process::Command::new(bin())
        .args(["--config", cfg.to_str().unwrap(), "check-config"])
        .output()
        .unwrap()
}

#[test]
fn a_merge_that_reads_the_same_facts_twice_is_refused_with_both_rules() {
    let (dir, profile, _) = btc_dir("");
    let out = check_config(dir.path(), &profile, "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let p = profile.display().to_string();
    // Where dilithion's rules are, from the built-in profile as the binary prints it.
    let shown = std::process::Command::new(bin())
        .args(["profiles", "dilithion"])
        .output()
        .unwrap();
    let yaml = String::from_utf8(shown.stdout).unwrap();
    let line_of = |prefix: &str| 1 + yaml.lines().position(|l| l.starts_with(prefix)).unwrap();
    let d = "<builtin>/dilithion.yaml";
    // Each refusal at dilithion's rule, naming the user's rule it collides with, by file:line.
    let want = [
        format!("{d}:{}:9: rules[1]: `dilithion/height` and `btc/update_tip` ({p}:5) both set `chain_block_height`", line_of("  - name: height")),
        format!("{d}:{}:9: rules[9]: `dilithion/socket_error` and `btc/socket_error` ({p}:12) both count `chain_socket_errors_total` from the line \"2024-05-01T10:00:01Z socket send error Broken pipe (32)\"", line_of("  - name: socket_error")),
        format!("{d}:{}:9: rules[14]: `dilithion/log_error` and `btc/log_error` ({p}:18) both count `chain_log_errors_total`", line_of("  - name: log_error")),
        // And the chain: `btc` says none, dilithion says its own; the config says nothing.
        format!("{d}:{}:8: chain: the merged profiles disagree on the `chain` label: `dilithion` declares `chain: dilithion` and `btc` declares no chain ({p}:2)", line_of("chain:")),
    ];
    for w in &want {
        assert!(err.contains(w.as_str()), "expected\n  {w}\nin:\n{err}");
    }
    assert_eq!(err.matches(": rules[").count(), 3, "{err}");
}

#[test]
fn the_same_merge_is_accepted_once_the_profile_says_how_they_combine() {
    let combine = "combine:\n  chain_block_height: {only: [update_tip]}   # header lines are no tip\n  chain_socket_errors_total: {only: [socket_error]}\n  chain_log_errors_total: {prefer: [log_error]}\n";
    let (dir, profile, log) = btc_dir(combine);
    let out = check_config(dir.path(), &profile, ", chain: bitcoin");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without a chain in the configuration the profiles still disagree on it.
    let out = check_config(dir.path(), &profile, "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("disagree on the `chain` label"));

    let out = replay(&[
        "--profile",
        profile.to_str().unwrap(),
        "--profile",
        "dilithion",
        "--label",
        "chain=bitcoin",
        log.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    promtool_check_metrics(&text);
    let s = parse(&text);
    // The tip, not the header lines that follow it.
    assert_eq!(
        value(&s, "chain_block_height", &[("chain", "bitcoin")]),
        Some(840000.0)
    );
    assert_eq!(value(&s, "chain_socket_errors_total", &[]), Some(2.0));
    assert_eq!(value(&s, "chain_log_errors_total", &[]), Some(1.0));
    // No series is labelled with the other profile's chain.
    assert!(s
        .iter()
        .all(|(x, _)| x.labels.get("chain").map(String::as_str) != Some("dilithion")));
}
