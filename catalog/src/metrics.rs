//! The table itself. Order: node metrics grouped by concern, then the sidecar's own.

use crate::{Kind, Metric, Unit};

const PROPAGATION_BUCKETS: &[f64] = &[0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0];
const VERIFY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];
const ROUND_BUCKETS: &[f64] = &[0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0];
const PROOF_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0];
const POLL_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const fn counter(
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    criteria: &'static [&'static str],
) -> Metric {
    Metric {
        name,
        kind: Kind::Counter,
        unit: Unit::None,
        help,
        labels,
        criteria,
    }
}

const fn gauge(
    name: &'static str,
    unit: Unit,
    help: &'static str,
    labels: &'static [&'static str],
    criteria: &'static [&'static str],
) -> Metric {
    Metric {
        name,
        kind: Kind::Gauge,
        unit,
        help,
        labels,
        criteria,
    }
}

const fn histogram(
    name: &'static str,
    buckets: &'static [f64],
    help: &'static str,
    labels: &'static [&'static str],
    criteria: &'static [&'static str],
) -> Metric {
    Metric {
        name,
        kind: Kind::Histogram { buckets },
        unit: Unit::Seconds,
        help,
        labels,
        criteria,
    }
}

pub static CATALOG: &[Metric] = &[
    // --- chain progress and sync
    gauge(
        "chain_block_height",
        Unit::None,
        "Height of the node's best chain.",
        &[],
        &["P3", "P10", "N7", "F2"],
    ),
    gauge(
        "chain_sync_progress_ratio",
        Unit::Ratio,
        "Sync progress of the node, 0 to 1.",
        &[],
        &["N8"],
    ),
    counter(
        "chain_blocks_mined_total",
        "Blocks this node found (mined or proposed).",
        &[],
        &["P3"],
    ),
    counter(
        "chain_blocks_received_total",
        "Blocks received from peers.",
        &[],
        &["P3", "P10"],
    ),
    // --- peers
    gauge(
        "chain_peers",
        Unit::None,
        "Connected peers.",
        &[],
        &["P4", "P7", "N4", "N9", "C5"],
    ),
    gauge(
        "chain_dht_peers",
        Unit::None,
        "Peers known to the DHT.",
        &[],
        &["N4"],
    ),
    gauge(
        "chain_stale_peers",
        Unit::None,
        "Connected peers that have gone quiet (stale).",
        &[],
        &["C5"],
    ),
    counter(
        "chain_peer_disconnects_total",
        "Peer disconnections (churn).",
        &[],
        &["C5"],
    ),
    counter(
        "chain_peer_connection_failures_total",
        "Failed attempts to connect to a peer.",
        &[],
        &["C5"],
    ),
    gauge(
        "chain_peer_ping_seconds",
        Unit::Seconds,
        "Round-trip time to a connected peer.",
        &["peer"],
        &["N14"],
    ),
    // --- block propagation (Dilithion)
    counter(
        "chain_block_broadcasts_total",
        "Blocks broadcast to peers (successful broadcasts; failures are counted apart).",
        &[],
        &["P1", "P3"],
    ),
    counter(
        "chain_block_broadcast_failures_total",
        "Block broadcasts that failed.",
        &[],
        &["P1"],
    ),
    histogram(
        "chain_block_propagation_seconds",
        PROPAGATION_BUCKETS,
        "Time from a block being found to its arrival at peers.",
        &[],
        &["P5", "P9"],
    ),
    counter(
        "chain_peer_sends_total",
        "Messages sent to peers (attempts).",
        &[],
        &["P2", "P6"],
    ),
    counter(
        "chain_send_timeouts_total",
        "Sends to a peer that timed out.",
        &[],
        &["P2", "P6", "C5"],
    ),
    counter(
        "chain_send_failures_total",
        "Sends to a peer that failed other than by timeout.",
        &[],
        &["P1", "C5"],
    ),
    counter("chain_socket_errors_total", "Socket errors.", &[], &["P8"]),
    gauge(
        "chain_broadcast_queue_depth",
        Unit::None,
        "Messages waiting in the broadcast queue.",
        &[],
        &["C4"],
    ),
    Metric {
        unit: Unit::Bytes,
        ..counter(
            "chain_network_transmit_bytes_total",
            "Bytes sent to peers.",
            &[],
            &["C5"],
        )
    },
    Metric {
        unit: Unit::Bytes,
        ..counter(
            "chain_network_receive_bytes_total",
            "Bytes received from peers.",
            &[],
            &["C5"],
        )
    },
    // --- CID gossip and equilibrium (COINjecture network)
    gauge(
        "chain_cids_queued",
        Unit::None,
        "CIDs waiting to be broadcast.",
        &[],
        &["C4"],
    ),
    counter(
        "chain_cid_broadcasts_total",
        "CIDs broadcast (gossiped) to peers.",
        &[],
        &["C1", "C2"],
    ),
    counter(
        "chain_cid_broadcast_failures_total",
        "CIDs whose broadcast failed.",
        &[],
        &["C1", "C2"],
    ),
    histogram(
        "chain_cid_propagation_seconds",
        PROPAGATION_BUCKETS,
        "Time to gossip a CID to peers.",
        &[],
        &["C3"],
    ),
    gauge(
        "chain_equilibrium_lambda",
        Unit::None,
        "Equilibrium state lambda (target 0.7071).",
        &[],
        &["E1", "E2", "E3"],
    ),
    gauge(
        "chain_equilibrium_eta",
        Unit::None,
        "Equilibrium state eta (target 0.7071).",
        &[],
        &["E1", "E2", "E3"],
    ),
    gauge(
        "chain_equilibrium_lambda_eta_ratio",
        Unit::Ratio,
        "Ratio lambda/eta (target 1.0).",
        &[],
        &["E1", "E2", "E3"],
    ),
    counter(
        "chain_log_errors_total",
        "Log lines the node wrote at error level or above.",
        &[],
        &["F1"],
    ),
    // --- consensus migration (COINjecture consensus wrapper)
    counter(
        "chain_consensus_verifications_total",
        "Block verifications, by the engine that produced the result.",
        &["engine"],
        &["M5", "M6"],
    ),
    counter(
        "chain_consensus_divergences_total",
        "Blocks on which the legacy and Rust engines disagreed.",
        &[],
        &["M1"],
    ),
    counter(
        "chain_consensus_errors_total",
        "Verification errors, by engine.",
        &["engine"],
        &["M5"],
    ),
    counter(
        "chain_consensus_fallbacks_total",
        "Verifications that fell back to the legacy engine.",
        &[],
        &["M2", "M3", "M4"],
    ),
    Metric {
        name: "chain_consensus_mode",
        kind: Kind::State {
            label: "mode",
            states: &["legacy", "shadow", "rust", "final"],
        },
        unit: Unit::None,
        help: "Consensus wrapper mode; the series of the current mode is 1.",
        labels: &[],
        criteria: &["M7"],
    },
    histogram(
        "chain_consensus_verification_seconds",
        VERIFY_BUCKETS,
        "Block verification latency, by engine.",
        &["engine"],
        &["M6"],
    ),
    // --- Proof-of-Proof validators
    counter(
        "chain_pop_rounds_total",
        "Consensus rounds completed.",
        &[],
        &["V3"],
    ),
    counter(
        "chain_pop_round_failures_total",
        "Consensus rounds that failed or timed out.",
        &[],
        &["V3"],
    ),
    histogram(
        "chain_pop_round_duration_seconds",
        ROUND_BUCKETS,
        "Time to complete a consensus round.",
        &[],
        &["V1"],
    ),
    counter(
        "chain_pop_view_changes_total",
        "View changes (leader replaced after a timeout).",
        &[],
        &["V3"],
    ),
    counter(
        "chain_pop_leader_elections_total",
        "Leader elections.",
        &[],
        &["V3"],
    ),
    counter(
        "chain_pop_phase_messages_total",
        "Consensus messages seen, by phase (pre_prepare, prepare, commit).",
        &["phase"],
        &["V3"],
    ),
    gauge(
        "chain_pop_validators_active",
        Unit::None,
        "Validators currently active.",
        &[],
        &["V2"],
    ),
    gauge(
        "chain_pop_validators",
        Unit::None,
        "Validators registered.",
        &[],
        &["V2"],
    ),
    counter(
        "chain_pop_proofs_processed_total",
        "Proofs processed (throughput).",
        &[],
        &["V3"],
    ),
    gauge(
        "chain_pop_proofs_pending",
        Unit::None,
        "Proofs waiting in the mempool.",
        &[],
        &["V5"],
    ),
    Metric {
        name: "chain_pop_network_health",
        kind: Kind::State {
            label: "state",
            states: &["healthy", "degraded", "critical"],
        },
        unit: Unit::None,
        help: "Network health as the node reports it; the series of the current state is 1.",
        labels: &[],
        criteria: &["V2"],
    },
    counter(
        "chain_pop_validator_rounds_total",
        "Consensus rounds a validator took part in.",
        &["validator"],
        &["V4"],
    ),
    gauge(
        "chain_pop_validator_accuracy_ratio",
        Unit::Ratio,
        "A validator's verification accuracy, 0 to 1.",
        &["validator"],
        &["V4"],
    ),
    counter(
        "chain_pop_validator_rewards_total",
        "Rewards a validator has earned.",
        &["validator"],
        &["V4"],
    ),
    gauge(
        "chain_pop_validator_stake",
        Unit::None,
        "A validator's stake.",
        &["validator"],
        &["V4"],
    ),
    // --- transactions, proofs, miners (BitCell)
    counter(
        "chain_transactions_processed_total",
        "Transactions processed.",
        &[],
        &["N11"],
    ),
    gauge(
        "chain_transactions_pending",
        Unit::None,
        "Transactions waiting in the mempool.",
        &[],
        &["N11"],
    ),
    counter(
        "chain_proofs_generated_total",
        "Proofs generated.",
        &[],
        &["N10"],
    ),
    counter(
        "chain_proofs_verified_total",
        "Proofs verified.",
        &[],
        &["N10"],
    ),
    histogram(
        "chain_proof_generation_seconds",
        PROOF_BUCKETS,
        "Time to generate a proof.",
        &[],
        &["N10"],
    ),
    gauge(
        "chain_miners_active",
        Unit::None,
        "Active miners.",
        &[],
        &["N5", "N12"],
    ),
    gauge(
        "chain_miners_banned",
        Unit::None,
        "Banned miners.",
        &[],
        &["N12"],
    ),
    // --- node liveness
    gauge(
        "chain_node_up",
        Unit::None,
        "1 if the node's health check answered OK, else 0.",
        &[],
        &["N1", "N2", "N3", "N13", "F2"],
    ),
    gauge(
        "chain_node_health_probe_duration_seconds",
        Unit::Seconds,
        "Duration of the last health check.",
        &[],
        &["N1"],
    ),
    // --- the sidecar's own
    gauge(
        "chainwatch_build_info",
        Unit::None,
        "Build information; always 1.",
        &["version", "revision", "rustversion"],
        &[],
    ),
    gauge(
        "chainwatch_profile_info",
        Unit::None,
        "The loaded profile; always 1.",
        &["profile"],
        &[],
    ),
    counter(
        "chainwatch_source_lines_read_total",
        "Lines read, by source.",
        &["source"],
        &[],
    ),
    Metric {
        unit: Unit::Bytes,
        ..counter(
            "chainwatch_source_read_bytes_total",
            "Bytes read, by source.",
            &["source"],
            &[],
        )
    },
    counter(
        "chainwatch_rule_matches_total",
        "Lines matched, by source and rule.",
        &["source", "rule"],
        &[],
    ),
    counter(
        "chainwatch_rule_value_errors_total",
        "Matches whose captured value could not be used (not a number, unknown state).",
        &["rule"],
        &[],
    ),
    gauge(
        "chainwatch_config_last_reload_successful",
        Unit::None,
        "1 if the last configuration reload (SIGHUP) succeeded, 0 if the previous configuration kept running.",
        &[],
        &[],
    ),
    gauge(
        "chainwatch_config_last_reload_success_timestamp_seconds",
        Unit::Seconds,
        "Unix time of the last successful configuration load.",
        &[],
        &[],
    ),
    counter(
        "chainwatch_series_dropped_total",
        "Samples dropped because their metric reached its cap on label sets (max_series_per_metric).",
        &["metric"],
        &[],
    ),
    counter(
        "chainwatch_lines_truncated_total",
        "Lines longer than the line cap, truncated.",
        &["source"],
        &[],
    ),
    counter(
        "chainwatch_lines_invalid_utf8_total",
        "Lines that were not valid UTF-8 (decoded lossily).",
        &["source"],
        &[],
    ),
    counter(
        "chainwatch_file_rotations_total",
        "Rename or delete rotations seen.",
        &["source"],
        &[],
    ),
    counter(
        "chainwatch_file_truncations_total",
        "Truncations (copytruncate) seen.",
        &["source"],
        &[],
    ),
    counter(
        "chainwatch_file_skipped_compressed_total",
        "Compressed files (gzip, bzip2, xz, zstd, lz4 by their magic bytes) a path pattern matched, skipped unread.",
        &["source"],
        &[],
    ),
    gauge(
        "chainwatch_files_followed",
        Unit::None,
        "Files currently followed.",
        &["source"],
        &[],
    ),
    counter(
        "chainwatch_checkpoint_writes_total",
        "Checkpoints written.",
        &["source"],
        &[],
    ),
    gauge(
        "chainwatch_source_up",
        Unit::None,
        "1 if the source's latest attempt to read succeeded, 0 if it failed, before the first and after a stop. Polled: the answer fetched, decoded and every mapped value applied; file: every matched path listed, opened and read; journal: journalctl running and proven by an entry or 10 s without exiting.",
        &["source"],
        &[],
    ),
    gauge(
        "chainwatch_source_last_success_timestamp_seconds",
        Unit::Seconds,
        "Unix time of the source's last success (a successful poll; lines read while up).",
        &["source"],
        &[],
    ),
    histogram(
        "chainwatch_source_poll_duration_seconds",
        POLL_BUCKETS,
        "Duration of a source's poll.",
        &["source"],
        &[],
    ),
    counter(
        "chainwatch_source_errors_total",
        "Source errors, by kind: timeout, connect, http_status, too_large, decode, rpc (polled sources); read, watch, checkpoint (file); exited, journalctl, decode, checkpoint (journal).",
        &["source", "kind"],
        &[],
    ),
];
