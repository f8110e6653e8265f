//! What the engine must survive: invalid UTF-8, NUL bytes, CRLF, over-long lines, JSON behind a
//! prefix, running totals that reset, values that are not numbers.

mod common;
use common::*;

fn run(profile: &str, log: &[u8], extra: &[&str]) -> Vec<(Series, f64)> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.yaml");
    write(&p, profile);
    let l = dir.path().join("x.log");
    std::fs::write(&l, log).unwrap();
    let mut args = vec!["--profile", p.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(l.to_str().unwrap());
    let out = replay(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    promtool_check_metrics(&text);
    parse(&text)
}

const COUNT: &str = "version: 1\nname: t\nrules:\n  - name: hit\n    regex: '^HIT (?P<n>\\S+)'\n    actions:\n      - counter: chain_blocks_mined_total\n      - gauge: chain_block_height\n        value: n\n";

#[test]
fn invalid_utf8_nul_and_crlf_lines_still_match_and_are_counted() {
    let mut log = Vec::new();
    log.extend_from_slice(b"HIT 1\r\n");
    log.extend_from_slice(b"\0\0\0HIT 2\n");
    log.extend_from_slice(b"HIT 3 \xff\xfe bad bytes\n");
    log.extend_from_slice(b"noise \xc3\x28\n");
    log.extend_from_slice(b"HIT 4"); // no final newline: replay counts it at EOF
    let s = run(COUNT, &log, &[]);
    assert_eq!(value(&s, "chain_blocks_mined_total", &[]), Some(4.0));
    assert_eq!(value(&s, "chain_block_height", &[]), Some(4.0));
    assert_eq!(
        value(&s, "chainwatch_lines_invalid_utf8_total", &[]),
        Some(2.0)
    );
    assert_eq!(
        value(&s, "chainwatch_source_lines_read_total", &[]),
        Some(5.0)
    );
}

#[test]
fn overlong_lines_are_truncated_and_counted() {
    let mut log = Vec::new();
    log.extend_from_slice(b"HIT 1 ");
    log.extend(std::iter::repeat_n(b'x', 5000));
    log.extend_from_slice(b"\nHIT 2\n");
    let s = run(COUNT, &log, &["--max-line-bytes", "300"]);
    assert_eq!(value(&s, "chain_blocks_mined_total", &[]), Some(2.0));
    assert_eq!(
        value(&s, "chainwatch_lines_truncated_total", &[]),
        Some(1.0)
    );
}

#[test]
fn values_that_are_not_numbers_are_counted_not_fatal() {
    let s = run(COUNT, b"HIT abc\nHIT 7\n", &[]);
    assert_eq!(value(&s, "chain_block_height", &[]), Some(7.0));
    assert_eq!(
        value(
            &s,
            "chainwatch_rule_value_errors_total",
            &[("rule", "t/hit")]
        ),
        Some(1.0)
    );
}

#[test]
fn json_totals_follow_the_node_and_survive_its_restart() {
    let profile = "version: 1\nname: t\nrules:\n  - name: j\n    json: {require: [sent]}\n    actions:\n      - counter: chain_cid_broadcasts_total\n        total: sent\n      - gauge: chain_peers\n        value: /net/peers\n";
    let log = b"journal: {\"sent\": 10, \"net\": {\"peers\": 3}}\n{\"sent\": 15}\n{\"sent\": 2}\n{\"other\": 1}\nnot json \"sent\"\n";
    let s = run(profile, log, &[]);
    // 10, +5, then the node restarted and counted 2 from zero.
    assert_eq!(value(&s, "chain_cid_broadcasts_total", &[]), Some(17.0));
    assert_eq!(value(&s, "chain_peers", &[]), Some(3.0));
    assert_eq!(
        value(&s, "chainwatch_rule_matches_total", &[("rule", "t/j")]),
        Some(3.0)
    );
}

#[test]
fn overlapping_literals_of_different_rules_both_fire() {
    // "ERROR" is a prefix of "ERROR:" — one literal hides the other in a leftmost-first scan.
    let profile = "version: 1\nname: t\nrules:\n  - name: a\n    regex: 'ERROR'\n    actions:\n      - counter: chain_log_errors_total\n  - name: b\n    regex: 'ERROR: disk'\n    actions:\n      - counter: chain_socket_errors_total\n  - name: c\n    regex: 'ROR: d'\n    actions:\n      - counter: chain_send_failures_total\n";
    let s = run(profile, b"x ERROR: disk full\n", &[]);
    assert_eq!(value(&s, "chain_log_errors_total", &[]), Some(1.0));
    assert_eq!(value(&s, "chain_socket_errors_total", &[]), Some(1.0));
    assert_eq!(value(&s, "chain_send_failures_total", &[]), Some(1.0));
}

#[test]
fn a_rule_without_literal_prefilter_still_sees_every_line() {
    let profile = "version: 1\nname: t\nrules:\n  - name: n\n    regex: '^(?P<h>\\d+)$'\n    actions:\n      - gauge: chain_block_height\n        value: h\n      - counter: chain_blocks_received_total\n";
    let s = run(profile, b"12\nfoo\n13\n", &[]);
    assert_eq!(value(&s, "chain_block_height", &[]), Some(13.0));
    assert_eq!(value(&s, "chain_blocks_received_total", &[]), Some(2.0));
}

#[test]
fn label_sets_past_the_cap_are_dropped_and_counted() {
    let profile = "version: 1\nname: t\nrules:\n  - name: ping\n    regex: 'ping (?P<peer>\\S+) (?P<s>[0-9.]+)'\n    actions:\n      - gauge: chain_peer_ping_seconds\n        value: s\n        labels: {peer: $peer}\n";
    let log: String = (0..10)
        .map(|i| format!("ping 10.0.0.{i} 0.1\n"))
        .collect::<String>()
        + "ping 10.0.0.1 0.2\n";
    let s = run(profile, log.as_bytes(), &["--max-series-per-metric", "3"]);
    let peers = s
        .iter()
        .filter(|(x, _)| x.name == "chain_peer_ping_seconds")
        .count();
    assert_eq!(peers, 3);
    // A known label set is still updated at the cap.
    assert_eq!(
        value(&s, "chain_peer_ping_seconds", &[("peer", "10.0.0.1")]),
        Some(0.2)
    );
    assert_eq!(
        value(
            &s,
            "chainwatch_series_dropped_total",
            &[("metric", "chain_peer_ping_seconds")]
        ),
        Some(7.0)
    );
}

#[test]
fn the_same_rule_in_two_merged_profiles_counts_a_line_once() {
    let dir = tempfile::tempdir().unwrap();
    let l = dir.path().join("x.log");
    std::fs::write(
        &l,
        "Nov 21 10:00:01 n1 coinjecture-node[900]: ERROR Rust verification failed: X\n",
    )
    .unwrap();
    let out = replay(&[
        "--profile",
        "coinjecture-network",
        "--profile",
        "coinjecture-consensus",
        l.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = parse(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(value(&s, "chain_log_errors_total", &[]), Some(1.0));
    assert_eq!(
        value(&s, "chain_consensus_errors_total", &[("engine", "rust")]),
        Some(1.0)
    );
}

#[test]
fn a_gauge_nothing_fed_has_no_series() {
    // A node that has not said how many peers it has does not have 0 peers.
    let s = run(COUNT, b"noise\n", &[]);
    assert_eq!(value(&s, "chain_block_height", &[]), None);
    // Counters start at 0: rate() works from the first scrape.
    assert_eq!(value(&s, "chain_blocks_mined_total", &[]), Some(0.0));
}

/// Found by fuzz/ (profile_loader): one rule without a literal prefilter (a literal shorter than 3
/// bytes, or none at all) made the engine try only such rules, so every rule with a prefilter
/// stopped matching.
#[test]
fn rules_with_a_prefilter_still_match_beside_a_rule_without_one() {
    // The fuzzer's minimized input: `RN` is too short to be a prefilter.
    let fuzzed = "\nname: br\nrules:\n  - name: d\n    regex: 'Network?(?P<n>)\\b'\n    actions:\n      - gauge: chain_stale_peers\n        value: n\n  - name: conn\n    regex: 'RN'\n    actions:\n      - counter: chain_log_errors_total\n";
    let s = run(fuzzed, b"-Network: =1}", &[]);
    assert_eq!(
        value(&s, "chainwatch_rule_matches_total", &[("rule", "br/d")]),
        Some(1.0)
    );
    // The same with values: a literal rule next to one that must see every line.
    let profile = "version: 1\nname: t\nrules:\n  - name: found\n    regex: 'BLOCK FOUND'\n    actions:\n      - counter: chain_blocks_mined_total\n  - name: bare\n    regex: '^(?P<h>\\d+)$'\n    actions:\n      - gauge: chain_block_height\n        value: h\n";
    let s = run(profile, b"BLOCK FOUND\n42\nnoise\nx BLOCK FOUND y\n", &[]);
    assert_eq!(value(&s, "chain_blocks_mined_total", &[]), Some(2.0));
    assert_eq!(value(&s, "chain_block_height", &[]), Some(42.0));
}

/// `prefer`: on a line both rules match, the source of truth runs first however the rules are
/// ordered, so the fallback adds nothing; on lines only the fallback matches, it counts until the
/// truth has spoken, and never after.
#[test]
fn the_preferred_rule_wins_a_line_both_match_whatever_their_order() {
    let profile = "version: 1\nname: t\nrules:\n  - name: loose\n    regex: 'socket \\w+ error'\n    actions:\n      - counter: chain_socket_errors_total\n  - name: exact\n    regex: 'socket send error'\n    actions:\n      - counter: chain_socket_errors_total\ncombine:\n  chain_socket_errors_total: {prefer: [exact]}\n";
    let log = b"socket recv error 104\nsocket send error 32\nsocket send error 32\nsocket recv error 104\n";
    let s = run(profile, log, &[]);
    // recv (loose, nothing better yet) + two sends (exact; loose turned away on the same line);
    // the last recv is turned away: `exact` owns the series now.
    assert_eq!(value(&s, "chain_socket_errors_total", &[]), Some(3.0));
    let m = |r: &str| value(&s, "chainwatch_rule_matches_total", &[("rule", r)]);
    assert_eq!(m("t/loose"), Some(4.0));
    assert_eq!(m("t/exact"), Some(2.0));
}

/// `only`: the other rules' actions on the metric are gone; their other actions stay.
#[test]
fn only_the_named_rules_write_the_metric() {
    let profile = "version: 1\nname: t\nrules:\n  - name: any_height\n    regex: 'height[=:] ?(?P<h>\\d+)'\n    actions:\n      - gauge: chain_block_height\n        value: h\n      - counter: chain_blocks_received_total\n  - name: tip\n    regex: 'UpdateTip: .*height=(?P<h>\\d+)'\n    actions:\n      - gauge: chain_block_height\n        value: h\ncombine:\n  chain_block_height: {only: [tip]}\n";
    let log = b"UpdateTip: new best=00ab height=840000\nSynchronizing blockheaders, height: 840123 (~99.87%)\n";
    let s = run(profile, log, &[]);
    assert_eq!(value(&s, "chain_block_height", &[]), Some(840000.0));
    assert_eq!(value(&s, "chain_blocks_received_total", &[]), Some(2.0));
}

/// `unless`: a line the exclusion matches is not the rule's, and is no match either.
#[test]
fn unless_excludes_lines_from_a_rule() {
    let profile = "version: 1\nname: t\nrules:\n  - name: b\n    regex: 'Broadcasting'\n    unless: 'failed'\n    actions:\n      - counter: chain_cid_broadcasts_total\n";
    let s = run(profile, b"Broadcasting x\nBroadcasting y failed\n", &[]);
    assert_eq!(value(&s, "chain_cid_broadcasts_total", &[]), Some(1.0));
    assert_eq!(
        value(&s, "chainwatch_rule_matches_total", &[("rule", "t/b")]),
        Some(1.0)
    );
}
