//! The value of every series of the fleet at any time: a closed-form function of the node, the
//! series and the seconds since the fleet's origin, so the backfilled history and the live
//! `/metrics` are one continuous run (counters go on from where the history ended).
//!
//! Counters grow (flow counters steadily; error-like counters stay flat, except on some testnet
//! nodes where they tick now and then), heights advance one block per block time, gauges wave
//! around their captured value, λ and η stay near 0.7071 (some testnet nodes drift off for hours
//! a day), a few testnet nodes fail their health check minutes a day, and histograms fill their
//! buckets from a log-normal around the captured mean. Mainnet is clean: the rollout gates answer
//! "proceed" there and "do not" on testnet; no alert fires on mainnet (the steady state a fleet's
//! rules are paid for), only testnet's planned trouble does.

use crate::layout::Node;
use crate::template::{Part, Series, Template};

const TAU: f64 = std::f64::consts::TAU;
/// λ and η at equilibrium: 1/√2 ≈ 0.7071 (seed 000; the rules compare with 0.7071).
const TARGET: f64 = std::f64::consts::FRAC_1_SQRT_2;

/// Counters that count trouble: flat, except on a share of the testnet nodes. (A view change is
/// trouble too: grown as fast as the rounds it fired ViewChangeRateHigh on every PoP node.)
const RARE: &[&str] = &[
    "view_change",
    "error",
    "failure",
    "divergence",
    "fallback",
    "timeout",
    "dropped",
    "truncat",
    "invalid",
    "rotation",
];

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Eq {
    Lambda,
    Eta,
    Ratio,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Gen {
    Const(f64),
    /// The time itself (`*_timestamp_seconds`).
    Time,
    Linear {
        base: f64,
        rate: f64,
    },
    /// One event every `period` seconds from `phase` on.
    Events {
        base: f64,
        phase: f64,
        period: f64,
    },
    Height {
        base: f64,
        block: f64,
    },
    Wave {
        center: f64,
        amp: f64,
        period: f64,
        phase: f64,
        round: bool,
        max: f64,
    },
    /// Down for `down` seconds of every `period`.
    Up {
        phase: f64,
        period: f64,
        down: f64,
    },
    Equilibrium {
        which: Eq,
        p1: f64,
        p2: f64,
        drift: Option<(f64, f64)>,
    },
    Bucket {
        rate: f64,
        frac: f64,
    },
    Count {
        rate: f64,
    },
    Sum {
        rate: f64,
        mean: f64,
    },
}

/// Expected seconds per block of a chain (thresholds.yaml `chains`; others 60s).
pub fn block_time(chain: &str) -> f64 {
    match chain {
        "pop" | "bitcell" => 30.0,
        _ => 60.0,
    }
}

/// A uniform number in [0, 1) from a seed and a salt (splitmix64).
pub fn unit(seed: u64, salt: u64) -> f64 {
    let mut z = seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// FNV-1a of a string: the seed part a series' name and labels give.
pub fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

fn key(s: &Series) -> String {
    let l: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}{{{}}}", s.name, l.join(","))
}

/// Spread of the histograms' log-normal: a p95 1.6x the mean. With 0.6 (2.2x) the p95 of a
/// steady-state node crossed the latency thresholds (rounds, proofs, propagation) on one node in
/// five, and alerts that fire cost more to evaluate than alerts that do not.
const SIGMA: f64 = 0.3;

/// Share of observations at or below `le` for a log-normal (σ `SIGMA`) of mean `mean`.
fn cdf(le: f64, mean: f64) -> f64 {
    if le.is_infinite() {
        return 1.0;
    }
    if le <= 0.0 {
        return 0.0;
    }
    let sigma = SIGMA;
    let median = mean / (sigma * sigma / 2.0f64).exp();
    let z = (le.ln() - median.ln()) / sigma;
    1.0 / (1.0 + (-1.702 * z).exp())
}

/// How series `s` of template `t` behaves on `node`.
pub fn gen(node: &Node, t: &Template, s: &Series) -> Gen {
    let seed = (node.index as u64).wrapping_mul(0x1000_0000_01B3) ^ fnv(&key(s));
    let u = unit(seed, 1);
    let node_u = unit(node.index as u64, 7);
    let block = block_time(&node.chain);
    match &s.part {
        Part::State => Gen::Const(s.value),
        Part::Bucket { .. } | Part::Count | Part::Sum => {
            let hk = s.histogram.as_deref().unwrap_or_default();
            let hseed = (node.index as u64).wrapping_mul(0x1000_0000_01B3) ^ fnv(hk);
            let rate = (0.5 + unit(hseed, 2)) / block;
            let mean = t.means.get(hk).copied().unwrap_or(1.0);
            match s.part {
                Part::Bucket { le } => Gen::Bucket {
                    rate,
                    frac: cdf(le, mean),
                },
                Part::Count => Gen::Count { rate },
                _ => Gen::Sum { rate, mean },
            }
        }
        Part::Counter => {
            if RARE.iter().any(|r| s.name.contains(r)) {
                if node.is_testnet() && u < 0.3 {
                    let period = 6.0 * 3600.0 + unit(seed, 3) * 66.0 * 3600.0;
                    Gen::Events {
                        base: s.value,
                        phase: unit(seed, 4) * period,
                        period,
                    }
                } else {
                    Gen::Const(s.value)
                }
            } else {
                let per_second = if s.name.contains("bytes") {
                    4000.0
                } else if s.name.contains("lines") {
                    25.0
                } else if s.name.contains("rule_matches") {
                    5.0
                } else {
                    1.0 / block
                };
                Gen::Linear {
                    base: s.value,
                    rate: per_second * (0.5 + u),
                }
            }
        }
        _ => gauge(node, s, seed, u, node_u, block),
    }
}

fn gauge(node: &Node, s: &Series, seed: u64, u: f64, node_u: f64, block: f64) -> Gen {
    let name = s.name.as_str();
    if name.ends_with("_timestamp_seconds") {
        return Gen::Time;
    }
    match name {
        "chain_block_height" => {
            return Gen::Height {
                base: s.value.round() - (u * 3.0).floor(),
                block,
            };
        }
        "chain_node_up" => {
            return if node.is_testnet() && node_u < 0.1 {
                let period = 86400.0;
                Gen::Up {
                    phase: unit(seed, 5) * period,
                    period,
                    down: 300.0,
                }
            } else {
                Gen::Const(1.0)
            };
        }
        "chain_equilibrium_lambda"
        | "chain_equilibrium_eta"
        | "chain_equilibrium_lambda_eta_ratio" => {
            let which = match name {
                "chain_equilibrium_lambda" => Eq::Lambda,
                "chain_equilibrium_eta" => Eq::Eta,
                _ => Eq::Ratio,
            };
            // Node-level phases, so λ, η and λ/η of one node agree.
            let drift = (node.is_testnet() && node_u < 0.25)
                .then(|| (unit(node.index as u64, 8) * 86400.0, 4.0 * 3600.0));
            return Gen::Equilibrium {
                which,
                p1: unit(node.index as u64, 9) * TAU,
                p2: unit(node.index as u64, 10) * TAU,
                drift,
            };
        }
        _ => {}
    }
    if name.ends_with("_info")
        || s.value == 0.0
        || matches!(
            name,
            "chainwatch_source_up" | "chainwatch_config_last_reload_successful"
        )
    {
        return Gen::Const(s.value);
    }
    let ratio = name.ends_with("_ratio");
    let round = s.value.fract() == 0.0
        && !(ratio || name.ends_with("_seconds") || name.ends_with("_bytes"));
    Gen::Wave {
        center: s.value,
        amp: if ratio { 0.005 } else { 0.1 } * s.value,
        period: 3600.0 + unit(seed, 6) * 82800.0,
        phase: unit(seed, 11) * TAU,
        round,
        max: if ratio { 1.0 } else { f64::INFINITY },
    }
}

fn equilibrium(which: Eq, e: f64, p1: f64, p2: f64, drift: Option<(f64, f64)>) -> f64 {
    let off = match drift {
        Some((phase, len)) if (e + phase) % 86400.0 < len => 0.1,
        _ => 0.0,
    };
    let lambda = TARGET * (1.0 + 0.01 * (TAU * e / 3600.0 + p1).sin() + off);
    let eta = TARGET * (1.0 + 0.01 * (TAU * e / 5400.0 + p2).sin());
    match which {
        Eq::Lambda => lambda,
        Eq::Eta => eta,
        Eq::Ratio => lambda / eta,
    }
}

impl Gen {
    /// The value at time `t` (Unix seconds) for a fleet started at `origin`.
    pub fn at(&self, t: f64, origin: f64) -> f64 {
        let e = (t - origin).max(0.0);
        match *self {
            Gen::Const(v) => v,
            Gen::Time => t.floor(),
            Gen::Linear { base, rate } => (base + rate * e).floor(),
            Gen::Events {
                base,
                phase,
                period,
            } => {
                if e < phase {
                    base
                } else {
                    base + ((e - phase) / period).floor() + 1.0
                }
            }
            Gen::Height { base, block } => base + (e / block).floor(),
            Gen::Wave {
                center,
                amp,
                period,
                phase,
                round,
                max,
            } => {
                let v = (center + amp * (TAU * e / period + phase).sin()).clamp(0.0, max);
                if round {
                    v.round()
                } else {
                    v
                }
            }
            Gen::Up {
                phase,
                period,
                down,
            } => {
                if (e + phase) % period < down {
                    0.0
                } else {
                    1.0
                }
            }
            Gen::Equilibrium {
                which,
                p1,
                p2,
                drift,
            } => equilibrium(which, e, p1, p2, drift),
            Gen::Bucket { rate, frac } => (rate * e * frac).floor(),
            Gen::Count { rate } => (rate * e).floor(),
            Gen::Sum { rate, mean } => (rate * e).floor() * mean,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout;
    use crate::template::parse;

    const TEXT: &str = r#"chain_block_height{chain="dilithion",network="testnet",region="eu",node="d1"} 1200
chain_blocks_received_total{chain="dilithion",network="testnet",region="eu",node="d1"} 30
chain_send_timeouts_total{chain="dilithion",network="testnet",region="eu",node="d1"} 0
chain_block_propagation_seconds_bucket{chain="dilithion",network="testnet",region="eu",node="d1",le="0.5"} 3
chain_block_propagation_seconds_bucket{chain="dilithion",network="testnet",region="eu",node="d1",le="1"} 3
chain_block_propagation_seconds_bucket{chain="dilithion",network="testnet",region="eu",node="d1",le="+Inf"} 4
chain_block_propagation_seconds_sum{chain="dilithion",network="testnet",region="eu",node="d1"} 2
chain_block_propagation_seconds_count{chain="dilithion",network="testnet",region="eu",node="d1"} 4
chain_peers{chain="dilithion",network="testnet",region="eu",node="d1"} 8
"#;

    #[test]
    fn counters_never_go_down_and_buckets_stay_cumulative() {
        let t = parse("dilithion", TEXT).unwrap();
        let nodes = layout::nodes(std::slice::from_ref(&t), 64);
        let origin = 1_000_000.0;
        for n in &nodes {
            let gens: Vec<Gen> = t.series.iter().map(|s| gen(n, &t, s)).collect();
            let mut last = vec![f64::MIN; gens.len()];
            for k in 0..2000 {
                let at = origin + k as f64 * 613.0;
                let v: Vec<f64> = gens.iter().map(|g| g.at(at, origin)).collect();
                for i in [0, 1, 2, 3, 4, 5, 7] {
                    assert!(
                        v[i] >= last[i],
                        "{} went down on {}",
                        t.series[i].name,
                        n.name
                    );
                }
                assert!(
                    v[3] <= v[4] && v[4] <= v[5],
                    "buckets not cumulative: {v:?}"
                );
                assert_eq!(v[5], v[7], "+Inf bucket is the count");
                assert!(v[8] >= 7.0 && v[8] <= 9.0);
                last = v;
            }
        }
    }

    #[test]
    fn trouble_only_on_some_testnet_nodes_and_heights_follow_block_time() {
        let t = parse("dilithion", TEXT).unwrap();
        let nodes = layout::nodes(std::slice::from_ref(&t), 400);
        let (o, end) = (0.0, 28.0 * 86400.0);
        let mut ticking = 0;
        for n in &nodes {
            let g = gen(n, &t, &t.series[2]);
            let grew = g.at(end, o) > g.at(o, o);
            assert!(!grew || n.is_testnet(), "{} is mainnet", n.name);
            ticking += grew as usize;
            let h = gen(n, &t, &t.series[0]);
            assert_eq!(h.at(3600.0, o) - h.at(0.0, o), 60.0);
        }
        assert!(
            ticking > 20 && ticking < 100,
            "{ticking} of 200 testnet nodes"
        );
    }

    #[test]
    fn a_steady_state_node_stays_under_the_latency_thresholds() {
        // The p95 of every histogram within 1.7x its mean: a sidecar's captured mean well under
        // a threshold (rounds 10 s, proofs and propagation 30 s) keeps its p95 under it too.
        for mean in [0.05, 1.0, 4.0, 12.0] {
            let (mut lo, mut hi) = (0.0, 100.0 * mean);
            for _ in 0..100 {
                let mid = (lo + hi) / 2.0;
                if cdf(mid, mean) < 0.95 {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            assert!(lo > mean && lo < 1.7 * mean, "p95 {lo} of mean {mean}");
        }
        // View changes are trouble, not a flow: flat on mainnet.
        let text = TEXT.replace("network=\"testnet\"", "network=\"mainnet\"")
            + "chain_pop_view_changes_total{chain=\"dilithion\",network=\"mainnet\",region=\"eu\",node=\"d1\"} 3\n";
        let t = parse("dilithion", &text).unwrap();
        let vc = t
            .series
            .iter()
            .find(|s| s.name == "chain_pop_view_changes_total")
            .unwrap();
        for n in layout::nodes(std::slice::from_ref(&t), 40)
            .iter()
            .filter(|n| !n.is_testnet())
        {
            assert_eq!(gen(n, &t, vc), Gen::Const(3.0), "{}", n.name);
        }
    }

    #[test]
    fn equilibrium_ratio_is_lambda_over_eta() {
        for e in [0.0, 1234.5, 86400.0 * 3.3] {
            let l = equilibrium(Eq::Lambda, e, 1.0, 2.0, Some((0.0, 3600.0)));
            let h = equilibrium(Eq::Eta, e, 1.0, 2.0, Some((0.0, 3600.0)));
            let r = equilibrium(Eq::Ratio, e, 1.0, 2.0, Some((0.0, 3600.0)));
            assert!((r - l / h).abs() < 1e-12);
            assert!((h - TARGET).abs() / TARGET <= 0.01 + 1e-12);
        }
        // In the drift window λ is 10% off.
        let l = equilibrium(Eq::Lambda, 10.0, 0.0, 0.0, Some((0.0, 3600.0)));
        assert!((l - TARGET) / TARGET > 0.08);
    }
}
