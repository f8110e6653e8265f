//! COINjecture (seeds 000 and 001). Two units, two files: node.log is the consensus wrapper
//! (`coinjecture-node`: verifications, divergences, Rust errors, fallbacks, mode), api.log the
//! network API (`coinjecture-api`: ⚖️ Equilibrium, 📡 Broadcasting, 📊 Network:). The wrapper
//! serves `GET /v1/consensus/stats` with the running totals.

use serde_json::{json, Value};

use crate::fleet::{ConsensusMode, NodeSpec};
use crate::logfile::Accumulator;
use crate::node::{Behaviour, Ctx, Node, Reply, Request};
use crate::scenario::Scenario;

const NODE_LOG: usize = 0;
const API_LOG: usize = 1;
/// λ and η at equilibrium: 1/√2 ≈ 0.7071 (seed 000).
pub const EQUILIBRIUM: f64 = std::f64::consts::FRAC_1_SQRT_2;

pub struct Coinjecture {
    pub mode: ConsensusMode,
    pub total_verifications: u64,
    pub divergences: u64,
    pub rust_errors: u64,
    pub fallbacks: u64,
    pub lambda: f64,
    pub eta: f64,
    pub cids_broadcast: u64,
    pub cids_failed: u64,
    pub cids_queued: u64,
    divergence: Accumulator,
    fallback: Accumulator,
    cid_failure: Accumulator,
}

impl Coinjecture {
    pub fn new(spec: &NodeSpec) -> Self {
        Coinjecture {
            mode: spec.consensus_mode,
            total_verifications: 0,
            divergences: 0,
            rust_errors: 0,
            fallbacks: 0,
            lambda: EQUILIBRIUM,
            eta: EQUILIBRIUM,
            cids_broadcast: 0,
            cids_failed: 0,
            cids_queued: 0,
            divergence: Accumulator::default(),
            fallback: Accumulator::default(),
            cid_failure: Accumulator::default(),
        }
    }

    pub fn set_mode(&mut self, m: ConsensusMode, ctx: &mut Ctx) {
        self.mode = m;
        ctx.log(
            NODE_LOG,
            format!("INFO Consensus mode changed to {}", m.enum_name()),
        );
    }

    fn stats(&self) -> Value {
        let rate = |n: u64| {
            if self.total_verifications == 0 {
                0.0
            } else {
                n as f64 / self.total_verifications as f64
            }
        };
        let mut v = json!({
            "mode": self.mode.stats_name(),
            "total_verifications": self.total_verifications,
            "divergences": self.divergences,
            "rust_errors": self.rust_errors,
            "divergence_rate": rate(self.divergences),
            "rust_error_rate": rate(self.rust_errors),
        });
        // In SHADOW mode the wrapper never falls back, and seed 001's shadow output has no
        // fallback fields; they appear in the other modes (or once a fallback happened).
        if self.mode != ConsensusMode::Shadow || self.fallbacks > 0 {
            v["fallback_to_legacy"] = json!(self.fallbacks);
            v["fallback_rate"] = json!(rate(self.fallbacks));
        }
        v
    }
}

impl Behaviour for Coinjecture {
    fn startup(&mut self, ctx: &mut Ctx) {
        ctx.log(
            NODE_LOG,
            format!(
                "INFO Consensus initialized in {} mode",
                self.mode.enum_name()
            ),
        );
        ctx.log(
            API_LOG,
            format!(
                "INFO 🚀 Network API listening on 127.0.0.1:{} (node {})",
                ctx.port, ctx.spec.name
            ),
        );
    }

    fn block(&mut self, ctx: &mut Ctx) {
        let h = ctx.height;
        let mut engine = self.mode.engine();
        if let Some(r) = ctx.rate(Scenario::ConsensusDivergence) {
            if self.divergence.hit(r) {
                self.divergences += 1;
                ctx.log(
                    NODE_LOG,
                    format!("CRITICAL 🚨 CONSENSUS DIVERGENCE DETECTED! Block: {h}"),
                );
            }
        }
        if let Some(r) = ctx.rate(Scenario::Fallbacks) {
            if self.fallback.hit(r) {
                self.rust_errors += 1;
                self.fallbacks += 1;
                engine = "legacy";
                ctx.log(
                    NODE_LOG,
                    format!("ERROR Rust verification failed: InvalidMerkleRoot (block {h})"),
                );
                ctx.log(
                    NODE_LOG,
                    format!("WARNING Falling back to legacy consensus for block {h}"),
                );
            }
        }
        let ms = if engine == "rust" {
            ctx.rng.range(2.5, 4.5)
        } else {
            ctx.rng.range(11.0, 18.0)
        };
        self.total_verifications += 1;
        ctx.log(
            NODE_LOG,
            format!("INFO Block {h} verified in {ms:.2}ms ({engine})"),
        );
        if h.is_multiple_of(10) {
            // The wrapper restates its mode now and then; a sidecar started later learns it.
            ctx.log(
                NODE_LOG,
                format!("INFO Consensus mode: {}", self.mode.enum_name()),
            );
        }
    }

    fn synced(&mut self, ctx: &mut Ctx, n: u64) {
        ctx.log(
            NODE_LOG,
            format!("INFO Synced {n} blocks from peers, tip {}", ctx.height),
        );
    }

    fn tick(&mut self, ctx: &mut Ctx, k: u64) {
        match k % 4 {
            0 => {
                let drift = ctx.rate(Scenario::EquilibriumDrift).unwrap_or(0.0);
                self.lambda = EQUILIBRIUM * (1.0 + ctx.rng.range(-0.002, 0.002)) * (1.0 + drift);
                self.eta = EQUILIBRIUM * (1.0 + ctx.rng.range(-0.002, 0.002));
                ctx.log(
                    API_LOG,
                    format!(
                        "INFO ⚖️  Equilibrium: λ={:.4} η={:.4} ratio={:.4}",
                        self.lambda,
                        self.eta,
                        self.lambda / self.eta
                    ),
                );
            }
            2 => {
                self.cids_queued = ctx.rng.int(0, 5);
                ctx.log(
                    API_LOG,
                    format!(
                        "INFO 📊 Network: peers={} queued={}",
                        ctx.peers, self.cids_queued
                    ),
                );
            }
            _ => {
                let cid = format!("bafy2bzace{}", ctx.rng.hex(12));
                let failing = ctx
                    .rate(Scenario::CidFailures)
                    .is_some_and(|r| self.cid_failure.hit(r));
                if failing {
                    self.cids_failed += 1;
                    ctx.log(
                        API_LOG,
                        format!("WARNING Failed to broadcast CID {cid}: timeout after 5s"),
                    );
                } else {
                    self.cids_broadcast += 1;
                    ctx.log(
                        API_LOG,
                        format!("INFO 📡 Broadcasting CID {cid} to {} peers", ctx.peers),
                    );
                    if ctx.peers > 0 {
                        let ms = ctx.rng.int(150, 900);
                        ctx.log(API_LOG, format!("INFO CID {cid} propagated in {ms}ms"));
                    }
                }
            }
        }
    }

    fn handle(&mut self, _ctx: Ctx, req: &Request) -> Reply {
        match (req.method, req.path) {
            ("GET", "/v1/consensus/stats") => Reply::json(200, &self.stats()),
            _ => Reply::not_found(req.path, "GET /v1/consensus/stats, GET /health"),
        }
    }

    fn state(&self, _node: &Node) -> Value {
        json!({
            "consensus": self.stats(),
            "lambda": self.lambda,
            "eta": self.eta,
            "ratio": self.lambda / self.eta,
            "cids_broadcast": self.cids_broadcast,
            "cids_failed": self.cids_failed,
            "cids_queued": self.cids_queued,
        })
    }
}
