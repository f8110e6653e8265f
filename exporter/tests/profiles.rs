//! Every built-in profile on a sample log of its family, through the real binary.

mod common;
use common::*;

fn run(profile: &str) -> Vec<(Series, f64)> {
    let out = replay(&[
        "--profile",
        profile,
        "--label",
        "node=n1",
        &fixture(&format!("{profile}.log")),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    promtool_check_metrics(&text);
    let samples = parse(&text);
    // Every exported family is in the catalog, under the catalog's type.
    for (s, _) in &samples {
        assert!(
            chainwatch_catalog::resolve_series(&s.name).is_some(),
            "{} is not in the catalog",
            s.name
        );
        assert_eq!(
            s.labels.get("node").map(String::as_str),
            Some("n1"),
            "{s:?}"
        );
    }
    samples
}

fn v(s: &[(Series, f64)], name: &str) -> f64 {
    value(s, name, &[]).unwrap_or_else(|| panic!("no {name}"))
}

fn approx(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn dilithion_node_log() {
    let s = run("dilithion");
    assert_eq!(
        value(&s, "chain_block_height", &[("chain", "dilithion")]),
        Some(8.0),
        "CRLF line parsed"
    );
    assert_eq!(v(&s, "chain_blocks_mined_total"), 2.0);
    assert_eq!(v(&s, "chain_block_broadcasts_total"), 1.0);
    assert_eq!(v(&s, "chain_peer_sends_total"), 4.0);
    assert_eq!(v(&s, "chain_send_timeouts_total"), 1.0);
    assert_eq!(v(&s, "chain_send_failures_total"), 1.0);
    assert_eq!(v(&s, "chain_socket_errors_total"), 1.0);
    assert_eq!(v(&s, "chain_peer_disconnects_total"), 1.0);
    assert_eq!(v(&s, "chain_blocks_received_total"), 2.0);
    assert_eq!(v(&s, "chain_block_broadcast_failures_total"), 1.0);
    assert_eq!(v(&s, "chain_peers"), 3.0);
    assert_eq!(v(&s, "chain_log_errors_total"), 2.0);
    assert_eq!(v(&s, "chain_block_propagation_seconds_count"), 2.0);
    assert!(approx(v(&s, "chain_block_propagation_seconds_sum"), 1.75));
    assert_eq!(
        value(&s, "chain_block_propagation_seconds_bucket", &[("le", "1")]),
        Some(1.0)
    );
    assert_eq!(v(&s, "chainwatch_source_lines_read_total"), 13.0);
    assert_eq!(
        value(
            &s,
            "chainwatch_rule_matches_total",
            &[("rule", "dilithion/height")]
        ),
        Some(4.0)
    );
}

#[test]
fn coinjecture_network_log_and_json_lines() {
    let s = run("coinjecture-network");
    assert_eq!(
        value(&s, "chain_equilibrium_lambda", &[("chain", "coinjecture")]),
        Some(0.66)
    );
    assert_eq!(v(&s, "chain_equilibrium_eta"), 0.71);
    assert_eq!(v(&s, "chain_equilibrium_lambda_eta_ratio"), 0.9296);
    // Two text lines, then the JSON running totals (the profile's source of truth once seen)
    // 10 → 14: the total takes over without counting the two lines again.
    assert_eq!(v(&s, "chain_cid_broadcasts_total"), 14.0);
    // One failure line, then totals of 1: the same failure, counted once.
    assert_eq!(v(&s, "chain_cid_broadcast_failures_total"), 1.0);
    assert_eq!(v(&s, "chain_cid_propagation_seconds_count"), 1.0);
    assert!(approx(v(&s, "chain_cid_propagation_seconds_sum"), 0.412));
    assert_eq!(v(&s, "chain_peers"), 12.0);
    assert_eq!(v(&s, "chain_cids_queued"), 4.0);
    assert_eq!(v(&s, "chain_log_errors_total"), 1.0);
    assert_eq!(
        value(
            &s,
            "chainwatch_rule_matches_total",
            &[("rule", "coinjecture-network/equilibrium_lambda")]
        ),
        Some(2.0)
    );
}

#[test]
fn coinjecture_consensus_wrapper() {
    let s = run("coinjecture-consensus");
    assert_eq!(
        value(
            &s,
            "chain_consensus_verifications_total",
            &[("engine", "legacy")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "chain_consensus_verifications_total",
            &[("engine", "rust")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &s,
            "chain_consensus_verification_seconds_count",
            &[("engine", "rust")]
        ),
        Some(2.0)
    );
    assert!(approx(
        value(
            &s,
            "chain_consensus_verification_seconds_sum",
            &[("engine", "rust")]
        )
        .unwrap(),
        0.00562
    ));
    assert_eq!(v(&s, "chain_block_height"), 1525.0);
    assert_eq!(v(&s, "chain_consensus_divergences_total"), 1.0);
    assert_eq!(
        value(&s, "chain_consensus_errors_total", &[("engine", "rust")]),
        Some(1.0)
    );
    assert_eq!(v(&s, "chain_consensus_fallbacks_total"), 1.0);
    for (mode, want) in [
        ("legacy", 0.0),
        ("shadow", 0.0),
        ("rust", 1.0),
        ("final", 0.0),
    ] {
        assert_eq!(
            value(&s, "chain_consensus_mode", &[("mode", mode)]),
            Some(want),
            "{mode}"
        );
    }
    assert_eq!(v(&s, "chain_log_errors_total"), 2.0);
}

#[test]
fn pop_validator() {
    let s = run("pop-validator");
    assert_eq!(v(&s, "chain_pop_leader_elections_total"), 1.0);
    for phase in ["pre_prepare", "prepare", "commit"] {
        assert_eq!(
            value(&s, "chain_pop_phase_messages_total", &[("phase", phase)]),
            Some(1.0),
            "{phase}"
        );
    }
    assert_eq!(v(&s, "chain_pop_rounds_total"), 2.0);
    assert_eq!(v(&s, "chain_pop_round_duration_seconds_count"), 2.0);
    assert!(approx(v(&s, "chain_pop_round_duration_seconds_sum"), 3.33));
    assert_eq!(v(&s, "chain_pop_round_failures_total"), 1.0);
    assert_eq!(v(&s, "chain_pop_view_changes_total"), 1.0);
    assert_eq!(v(&s, "chain_pop_validators_active"), 3.0);
    assert_eq!(v(&s, "chain_pop_validators"), 4.0);
    assert_eq!(v(&s, "chain_pop_proofs_pending"), 12.0);
    assert_eq!(v(&s, "chain_pop_proofs_processed_total"), 43200.0);
    assert_eq!(
        value(&s, "chain_pop_network_health", &[("state", "degraded")]),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "chain_pop_network_health", &[("state", "healthy")]),
        Some(0.0)
    );
    assert_eq!(v(&s, "chain_log_errors_total"), 1.0);
}

#[test]
fn bitcell_proof_times() {
    let s = run("bitcell");
    assert_eq!(v(&s, "chain_proof_generation_seconds_count"), 2.0);
    assert!(approx(
        v(&s, "chain_proof_generation_seconds_sum"),
        8.4 + 0.95
    ));
    assert_eq!(
        value(&s, "chain_proof_generation_seconds_bucket", &[("le", "1")]),
        Some(1.0)
    );
}

#[test]
fn profiles_command_lists_every_builtin() {
    let out = std::process::Command::new(bin())
        .arg("profiles")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for name in [
        "bitcell",
        "coinjecture-consensus",
        "coinjecture-network",
        "dilithion",
        "pop-validator",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing from:\n{text}"
        );
    }
}
