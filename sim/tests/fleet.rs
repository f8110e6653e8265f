//! The simulator as a process: what it prints, the configs it writes (checked by the real
//! sidecar), logs the built-in profiles read, and the stats APIs' shapes.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

#[test]
fn first_line_names_every_node_and_the_configs_pass_check_config() {
    let emit = tempfile::tempdir().unwrap();
    let sim = Sim::start_with(FLEET, &["--emit-config", emit.path().to_str().unwrap()]);
    let nodes = sim.info["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 8);
    let regions: std::collections::BTreeSet<_> = nodes
        .iter()
        .map(|n| n["region"].as_str().unwrap())
        .collect();
    assert_eq!(regions.len(), 2);
    assert!(sim.info["control"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    let mut ports = std::collections::BTreeSet::new();
    for n in nodes {
        let name = n["name"].as_str().unwrap();
        let api = n["api_url"].as_str().unwrap();
        assert!(api.starts_with("http://127.0.0.1:"), "{api}");
        assert!(ports.insert(api.to_string()), "ports are distinct");
        assert_eq!(n["health_url"], format!("{api}/health"));
        for l in n["logs"].as_array().unwrap() {
            assert!(std::path::Path::new(l.as_str().unwrap()).exists());
        }
        let config = n["config"].as_str().unwrap();
        let text = std::fs::read_to_string(config).unwrap();
        assert_eq!(
            text,
            std::fs::read_to_string(emit.path().join(format!("{name}.yaml"))).unwrap(),
            "--emit-config writes the same config"
        );
        for label in [
            format!("node: {name}"),
            format!("region: {}", n["region"].as_str().unwrap()),
            "network: testnet".to_string(),
        ] {
            assert!(text.contains(&label), "{config} has {label}:\n{text}");
        }
        assert!(text.contains(&format!("url: '{api}/health'")), "{text}");
        let out = Command::new(exporter())
            .args(["check-config", "--config", config])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "check-config {config}: {}{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let source_count = |s: &str| text.matches(&format!("type: {s}\n")).count();
        match n["family"].as_str().unwrap() {
            "dilithion" => {
                assert_eq!(source_count("jsonrpc"), 1);
                let cookie = n["cookie_file"].as_str().unwrap();
                assert!(text.contains(&format!("cookie_file: '{cookie}'")));
                assert!(std::fs::read_to_string(cookie)
                    .unwrap()
                    .starts_with("__cookie__:"));
            }
            "bitcell" => assert_eq!(source_count("prometheus"), 1),
            "coinjecture" if name == "cj-us" => {
                // metrics_from: api — the stats API and the companion profile.
                assert_eq!(source_count("http_json"), 1);
                assert!(text.contains("coinjecture-consensus-api.yaml"), "{text}");
                assert!(!text.contains("coinjecture-consensus,"), "{text}");
            }
            "coinjecture" => {
                assert_eq!(source_count("http_json"), 0);
                assert!(text.contains("profiles: [coinjecture-network, coinjecture-consensus]"));
            }
            "pop" if name == "pop-us" => assert_eq!(source_count("http_json"), 1),
            "pop" => assert_eq!(source_count("http_json"), 0),
            f => panic!("family {f}"),
        }
        assert_eq!(source_count("health"), 1);
        assert_eq!(source_count("file"), 1);
    }
}

#[test]
fn logs_grow_with_lines_the_built_in_profiles_count() {
    let sim = Sim::start();
    let start = sim.height("dil-eu");
    wait_until("every node made 5 blocks", || {
        let s = sim.state();
        s["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["height"].as_u64().unwrap() >= start + 5)
    });
    // Every line is journal-style: `Mon DD HH:MM:SS <node> <unit>[pid]: message`.
    for n in sim.info["nodes"].as_array().unwrap() {
        let name = n["name"].as_str().unwrap();
        for path in sim.logs(name) {
            let text = std::fs::read_to_string(&path).unwrap();
            // Up to the last newline: the simulator may be writing the next line right now.
            let text = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
            assert!(text.lines().count() >= 2, "{}", path.display());
            for line in text.lines() {
                // The timestamp is fixed-width ("Nov 21 10:00:01", "Jan  1 00:00:00").
                let (ts, rest) = line.split_at(15);
                assert_eq!(ts.as_bytes()[3], b' ', "{line}");
                assert_eq!(&ts[9..10], ":", "{line}");
                let mut f = rest.trim_start().splitn(3, ' ');
                let (host, unit) = (f.next().unwrap(), f.next().unwrap());
                assert_eq!(host, name, "{line}");
                assert!(unit.contains('[') && unit.ends_with("]:"), "{line}");
                assert!(f.next().is_some_and(|m| !m.is_empty()), "{line}");
            }
        }
    }
    let dil = replay(&["dilithion"], &sim.logs("dil-eu"));
    assert!(dil.sum("chain_blocks_mined_total", &[]) >= 1.0);
    assert!(dil.sum("chain_blocks_received_total", &[]) >= 1.0);
    assert!(dil.sum("chain_block_broadcasts_total", &[]) >= 5.0);
    assert_eq!(
        dil.sum("chain_peer_sends_total", &[]),
        8.0 * dil.sum("chain_block_broadcasts_total", &[])
    );
    assert_eq!(dil.sum("chain_peers", &[]), 8.0);
    assert!(dil.sum("chain_block_height", &[]) >= (start + 5) as f64);
    assert!(dil.sum("chain_block_propagation_seconds_count", &[]) >= 1.0);
    assert_eq!(dil.sum("chain_send_timeouts_total", &[]), 0.0);
    assert_eq!(dil.sum("chain_log_errors_total", &[]), 0.0);

    let cj = replay(
        &["coinjecture-network", "coinjecture-consensus"],
        &sim.logs("cj-eu"),
    );
    assert!(
        (cj.sum("chain_equilibrium_lambda", &[]) - std::f64::consts::FRAC_1_SQRT_2).abs() < 0.01
    );
    assert!((cj.sum("chain_equilibrium_eta", &[]) - std::f64::consts::FRAC_1_SQRT_2).abs() < 0.01);
    assert!((cj.sum("chain_equilibrium_lambda_eta_ratio", &[]) - 1.0).abs() < 0.01);
    assert!(cj.sum("chain_cid_broadcasts_total", &[]) >= 2.0);
    assert!(cj.sum("chain_cid_propagation_seconds_count", &[]) >= 2.0);
    assert_eq!(cj.sum("chain_cid_broadcast_failures_total", &[]), 0.0);
    assert_eq!(cj.sum("chain_peers", &[]), 8.0);
    assert!(
        cj.sum(
            "chain_consensus_verifications_total",
            &["engine=\"legacy\""]
        ) >= 5.0
    );
    assert_eq!(cj.sum("chain_consensus_mode", &["mode=\"shadow\""]), 1.0);
    assert!(cj.sum("chain_block_height", &[]) >= (start + 5) as f64);
    assert_eq!(cj.sum("chain_consensus_divergences_total", &[]), 0.0);
    assert_eq!(cj.sum("chain_log_errors_total", &[]), 0.0);
    let cj_rust = replay(
        &["coinjecture-network", "coinjecture-consensus"],
        &sim.logs("cj-us"),
    );
    assert!(cj_rust.sum("chain_consensus_verifications_total", &["engine=\"rust\""]) >= 5.0);
    assert_eq!(cj_rust.sum("chain_consensus_mode", &["mode=\"rust\""]), 1.0);

    let pop = replay(&["pop-validator"], &sim.logs("pop-eu"));
    let rounds = pop.sum("chain_pop_rounds_total", &[]);
    assert!(rounds >= 5.0);
    for phase in ["pre_prepare", "prepare", "commit"] {
        // The replay may read the file between two lines of a round: one round of slack.
        let n = pop.sum(
            "chain_pop_phase_messages_total",
            &[&format!("phase=\"{phase}\"")],
        );
        assert!(
            n == rounds || n == rounds + 1.0,
            "{phase}: {n} for {rounds} rounds"
        );
    }
    assert_eq!(
        pop.sum("chain_pop_round_duration_seconds_count", &[]),
        rounds
    );
    assert_eq!(pop.sum("chain_pop_validators", &[]), 4.0);
    assert_eq!(pop.sum("chain_pop_validators_active", &[]), 4.0);
    assert_eq!(
        pop.sum("chain_pop_network_health", &["state=\"healthy\""]),
        1.0
    );
    assert!(pop.sum("chain_pop_leader_elections_total", &[]) >= 1.0);
    assert!(pop.sum("chain_pop_proofs_processed_total", &[]) > 0.0);
    assert_eq!(pop.sum("chain_pop_view_changes_total", &[]), 0.0);

    let bc = replay(&["bitcell"], &sim.logs("bc-eu"));
    assert!(bc.sum("chain_proof_generation_seconds_count", &[]) >= 5.0);
    let avg = bc.sum("chain_proof_generation_seconds_sum", &[])
        / bc.sum("chain_proof_generation_seconds_count", &[]);
    assert!((6.0..10.0).contains(&avg), "{avg}");
}

#[test]
fn companion_profiles_count_nothing_twice() {
    // With metrics_from: api, the generated config loads the companion profile: the log gives
    // latency, height and mode, and none of the counters the stats API gives.
    let sim = Sim::start();
    sim.wait_blocks("cj-us", 4);
    let cj = sim.announced("cj-us");
    let profile = std::path::Path::new(sim.info["dir"].as_str().unwrap())
        .join("profiles/coinjecture-consensus-api.yaml");
    let s = replay(
        &["coinjecture-network", profile.to_str().unwrap()],
        &sim.logs("cj-us"),
    );
    assert!(
        s.sum(
            "chain_consensus_verification_seconds_count",
            &["engine=\"rust\""]
        ) >= 4.0
    );
    assert!(s.sum("chain_block_height", &[]) > 0.0);
    assert_eq!(s.sum("chain_consensus_mode", &["mode=\"rust\""]), 1.0);
    assert!(!s.has("chain_consensus_verifications_total"), "{cj}");
    let pop_profile = profile.with_file_name("pop-validator-api.yaml");
    sim.wait_blocks("pop-us", 2);
    let s = replay(&[pop_profile.to_str().unwrap()], &sim.logs("pop-us"));
    assert!(s.sum("chain_pop_round_duration_seconds_count", &[]) >= 2.0);
    assert!(s.sum("chain_pop_phase_messages_total", &[]) >= 6.0);
    assert!(!s.has("chain_pop_rounds_total"));
    assert!(!s.has("chain_pop_view_changes_total"));
}

#[test]
fn stats_apis_answer_in_their_shapes() {
    let sim = Sim::start();
    for n in sim.info["nodes"].as_array().unwrap() {
        let name = n["name"].as_str().unwrap();
        let h = get_json(&sim.url(name, "/health"));
        assert_eq!(h["status"], "ok");
        assert_eq!(h["node"], name);
        let (status, body) = get(&sim.url(name, "/nope")).unwrap();
        assert!(status == 404 || status == 405, "{name}: {status} {body}");
    }

    // COINjecture: GET /v1/consensus/stats, seed 001's fields; running totals.
    let a = get_json(&sim.url("cj-us", "/v1/consensus/stats"));
    for k in [
        "mode",
        "total_verifications",
        "divergences",
        "rust_errors",
        "divergence_rate",
        "rust_error_rate",
        "fallback_to_legacy",
        "fallback_rate",
    ] {
        assert!(a.get(k).is_some(), "{k} in {a}");
    }
    assert_eq!(a["mode"], "rust");
    let shadow = get_json(&sim.url("cj-eu", "/v1/consensus/stats"));
    assert_eq!(shadow["mode"], "shadow");
    assert!(
        shadow.get("fallback_to_legacy").is_none(),
        "no fallback fields in SHADOW mode (seed 001): {shadow}"
    );
    let t0 = a["total_verifications"].as_u64().unwrap();
    wait_until("total_verifications grows", || {
        get_json(&sim.url("cj-us", "/v1/consensus/stats"))["total_verifications"]
            .as_u64()
            .unwrap()
            > t0
    });

    // Dilithion: JSON-RPC with the cookie; 401 without.
    let (status, _) = post(
        &sim.url("dil-eu", "/"),
        r#"{"method":"getblockcount","params":[]}"#,
        &[],
    )
    .unwrap();
    assert_eq!(status, 401);
    let (status, _) = post(
        &sim.url("dil-eu", "/"),
        r#"{"method":"getblockcount","params":[]}"#,
        &[("authorization", "Basic X19jb29raWVfXzp3cm9uZw==")],
    )
    .unwrap();
    assert_eq!(status, 401, "a wrong cookie is refused");
    let h0 = sim.block_count("dil-eu");
    wait_until("getblockcount increases", || sim.block_count("dil-eu") > h0);
    let (_, v) = sim.rpc("dil-eu", "getconnectioncount").unwrap();
    assert_eq!(v["result"], 8);
    assert_eq!(v["error"], Value::Null);
    let (_, v) = sim.rpc("dil-us", "getpeerinfo").unwrap();
    let peers = v["result"].as_array().unwrap();
    assert_eq!(peers.len(), 6);
    for p in peers {
        assert!(p["addr"].as_str().unwrap().contains(':'));
        let ping = p["pingtime"].as_f64().unwrap();
        assert!(ping > 0.0 && ping < 0.2, "{ping}");
    }
    let (status, v) = sim.rpc("dil-eu", "getfoo").unwrap();
    assert_eq!(status, 404);
    assert_eq!(v["error"]["code"], -32601);

    // BitCell: the twelve series of seed 004, sync progress in percent.
    let (status, text) = get(&sim.url("bc-eu", "/metrics")).unwrap();
    assert_eq!(status, 200);
    for s in [
        "bitcell_chain_height",
        "bitcell_sync_progress",
        "bitcell_peer_count",
        "bitcell_dht_peer_count",
        "bitcell_txs_processed_total",
        "bitcell_pending_txs",
        "bitcell_proofs_generated_total",
        "bitcell_proofs_verified_total",
        "bitcell_active_miners",
        "bitcell_banned_miners",
        "bitcell_bytes_sent_total",
        "bitcell_bytes_received_total",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{s} "))),
            "{s} in\n{text}"
        );
        assert!(text.contains(&format!("# TYPE {s} ")), "{s}");
    }
    assert!(text.contains("\nbitcell_sync_progress 100\n"), "{text}");
    assert!(text.contains("\nbitcell_active_miners 5\n"), "{text}");

    // PoP: GET /status in the README's shape.
    let s = get_json(&sim.url("pop-eu", "/status"));
    for k in [
        "rounds_completed",
        "proofs_processed",
        "pending_proofs",
        "active_validators",
        "total_validators",
        "network_health",
        "view_changes",
        "validators",
    ] {
        assert!(s.get(k).is_some(), "{k} in {s}");
    }
    assert_eq!(s["network_health"], "HEALTHY");
    assert_eq!(s["total_validators"], 4);
    let v = &s["validators"].as_array().unwrap()[0];
    for k in ["id", "stake", "rounds", "accuracy", "rewards"] {
        assert!(v.get(k).is_some(), "{k} in {v}");
    }
}

#[test]
fn state_and_scenario_list() {
    let sim = Sim::start();
    let s = sim.state();
    assert_eq!(s["regions"], serde_json::json!(["eu", "us"]));
    let n = sim.node("bc-us");
    assert_eq!(n["family"], "bitcell");
    assert_eq!(n["region"], "us");
    assert_eq!(n["up"], true);
    assert_eq!(n["stats"]["active_miners"], 5);
    assert_eq!(n["api_url"], sim.announced("bc-us")["api_url"]);
    let list = get_json(&format!("{}/scenarios", sim.control));
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["scenario"].as_str().unwrap())
        .collect();
    for want in [
        "consensus_divergence",
        "fallbacks",
        "equilibrium_drift",
        "cid_failures",
        "propagation_failures",
        "send_timeouts",
        "peers_zero",
        "chain_stall",
        "node_down",
        "region_down",
        "no_active_miners",
        "all_clear",
    ] {
        assert!(names.contains(&want), "{want}");
    }
}

#[test]
fn invalid_fleet_is_exit_2_with_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet.yaml");
    std::fs::write(
        &fleet,
        "nodes:\n  - {name: a, family: dilithion, region: eu}\n  - {name: a, family: pop, region: us}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_chainwatch-sim"))
        .arg("--fleet")
        .arg(&fleet)
        .arg("--dir")
        .arg(dir.path().join("d"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nodes[1].name: duplicate node name `a`"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_chainwatch-sim"))
        .arg("--example-fleet")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("family: bitcell"));
}

#[test]
fn sigterm_stops_it_cleanly() {
    let mut sim = Sim::start();
    let st = sim.terminate();
    assert!(st.success(), "{st:?}");
}

#[test]
fn a_sidecar_on_a_generated_config_reads_the_node() {
    // One sidecar per kind of API source: JSON-RPC with the cookie, the stats API with the
    // companion profile, PoP's status, BitCell's native metrics; the health source of each.
    let sim = Sim::start();
    let config = |n: &str| sim.announced(n)["config"].as_str().unwrap().to_string();
    let dil = Sidecar::start(&config("dil-eu"));
    let cj = Sidecar::start(&config("cj-us"));
    let pop = Sidecar::start(&config("pop-us"));
    let bc = Sidecar::start(&config("bc-us"));
    let checks: [(&Sidecar, &str); 8] = [
        (&dil, "chain_peer_ping_seconds"),
        (&dil, "chain_block_broadcasts_total"),
        (&cj, "chain_consensus_verifications_total"),
        (&cj, "chain_consensus_verification_seconds_count"),
        (&pop, "chain_pop_validator_stake"),
        (&pop, "chain_pop_rounds_total"),
        (&bc, "chain_miners_active"),
        (&bc, "chain_sync_progress_ratio"),
    ];
    wait_until("every sidecar reads its node", || {
        [&dil, &cj, &pop, &bc]
            .iter()
            .all(|s| s.metric("chain_node_up") == Some(1.0))
            && checks
                .iter()
                .all(|(s, m)| s.metric(m).is_some_and(|v| v > 0.0))
            && dil.metric("chain_block_height") == Some(sim.block_count("dil-eu") as f64)
    });
    assert_eq!(bc.metric("chain_sync_progress_ratio"), Some(1.0));
    sim.set(r#"{"scenario": "node_down", "node": "dil-eu"}"#);
    wait_until("the sidecar sees dil-eu down", || {
        dil.metric("chain_node_up") == Some(0.0)
    });
    sim.set(r#"{"scenario": "all_clear"}"#);
    wait_until("the sidecar sees dil-eu up", || {
        dil.metric("chain_node_up") == Some(1.0)
    });
}
