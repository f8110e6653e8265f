//! Proof-of-Proof validators (seed 003): PBFT-style rounds (PRE-PREPARE, PREPARE, COMMIT), view
//! changes when a round times out, leader elections, and the status endpoint in the shape the
//! README documents (`GET /status`).

use serde_json::{json, Value};

use crate::fleet::NodeSpec;
use crate::node::{Behaviour, Ctx, Node, Reply, Request};
use crate::scenario::Scenario;

pub struct Validator {
    pub id: String,
    pub stake: u64,
    pub rounds: u64,
    pub accuracy: f64,
    pub rewards: f64,
    pub active: bool,
}

pub struct Pop {
    pub me: usize,
    pub validators: Vec<Validator>,
    pub view: u64,
    pub rounds_completed: u64,
    pub round_failures: u64,
    pub proofs_processed: u64,
    pub pending_proofs: u64,
    pub view_changes: u64,
}

impl Pop {
    pub fn new(spec: &NodeSpec) -> Self {
        let n = spec.validators as usize;
        let validators = (0..n)
            .map(|i| Validator {
                id: format!("validator-{}", i + 1),
                stake: 10_000 + 2_500 * i as u64,
                rounds: 0,
                accuracy: 0.995 - 0.005 * (i % 5) as f64,
                rewards: 0.0,
                active: true,
            })
            .collect();
        Pop {
            me: spec.family_index % n,
            validators,
            view: 1,
            rounds_completed: 0,
            round_failures: 0,
            proofs_processed: 0,
            pending_proofs: 8,
            view_changes: 0,
        }
    }

    fn active(&self) -> usize {
        self.validators.iter().filter(|v| v.active).count()
    }

    /// Half the validators (never this one) go inactive, or all come back.
    pub fn set_validators_down(&mut self, down: bool) {
        let n = self.validators.len();
        let keep = if down { n / 2 } else { n };
        let me = self.me;
        // This validator first, then the others in order.
        let order = std::iter::once(me).chain((0..n).filter(|&i| i != me));
        for (kept, i) in order.enumerate() {
            self.validators[i].active = kept < keep.max(1);
        }
    }

    fn leader(&self) -> usize {
        let n = self.validators.len();
        let mut i = self.view as usize % n;
        for _ in 0..n {
            if self.validators[i].active {
                return i;
            }
            i = (i + 1) % n;
        }
        self.me
    }

    /// CRITICAL below the BFT threshold (2/3 active), DEGRADED with validators missing or rounds
    /// stalling, HEALTHY otherwise.
    fn health(&self, stalled: bool) -> &'static str {
        let (a, n) = (self.active(), self.validators.len());
        if 3 * a < 2 * n {
            "CRITICAL"
        } else if a < n || stalled {
            "DEGRADED"
        } else {
            "HEALTHY"
        }
    }

    fn status(&self, health: &str, round: u64) -> Value {
        json!({
            "rounds_completed": self.rounds_completed,
            "proofs_processed": self.proofs_processed,
            "pending_proofs": self.pending_proofs,
            "active_validators": self.active(),
            "total_validators": self.validators.len(),
            "network_health": health,
            "view_changes": self.view_changes,
            "current_round": round,
            "view": self.view,
            "leader": self.validators[self.leader()].id,
            "validators": self.validators.iter().map(|v| json!({
                "id": v.id,
                "stake": v.stake,
                "rounds": v.rounds,
                "accuracy": v.accuracy,
                "rewards": (v.rewards * 100.0).round() / 100.0,
                "active": v.active,
            })).collect::<Vec<_>>(),
        })
    }
}

impl Behaviour for Pop {
    fn startup(&mut self, ctx: &mut Ctx) {
        let me = &self.validators[self.me].id;
        ctx.log(
            0,
            format!(
                "INFO PoP validator {me} starting, {} validators registered",
                self.validators.len()
            ),
        );
        let leader = &self.validators[self.leader()].id;
        ctx.log(
            0,
            format!("INFO Leader elected: {leader} (view {})", self.view),
        );
    }

    fn block(&mut self, ctx: &mut Ctx) {
        let r = ctx.round;
        let me = self.validators[self.me].id.clone();
        let leader = self.leader();
        let lid = self.validators[leader].id.clone();
        ctx.log(
            0,
            format!("INFO {me} round {r} PRE-PREPARE from leader {lid}"),
        );
        ctx.log(0, format!("INFO {me} sent PREPARE for round {r}"));
        ctx.log(0, format!("INFO {me} sent COMMIT for round {r}"));
        let secs = ctx.rng.range(1.2, 3.4);
        let (a, n) = (self.active(), self.validators.len());
        ctx.log(
            0,
            format!("INFO Round {r} completed in {secs:.2}s ({a}/{n} validators)"),
        );
        self.rounds_completed += 1;
        for (i, v) in self.validators.iter_mut().enumerate() {
            if v.active {
                v.rounds += 1;
                v.rewards += if i == leader { 1.0 } else { 0.5 };
            }
        }
        let done = ctx.rng.int(3, 8);
        self.proofs_processed += done;
        let arrived = ctx.rng.int(2, 9);
        self.pending_proofs = (self.pending_proofs + arrived).saturating_sub(done).min(40);
    }

    fn stalled(&mut self, ctx: &mut Ctx) {
        let r = ctx.round;
        let old = self.validators[self.leader()].id.clone();
        self.view += 1;
        self.view_changes += 1;
        self.round_failures += 1;
        self.pending_proofs += ctx.rng.int(2, 9);
        ctx.log(0, format!("WARNING Round {r} timed out after 10s"));
        ctx.log(
            0,
            format!(
                "WARNING View change: leader {old} timed out, new view {}",
                self.view
            ),
        );
        let new = &self.validators[self.leader()].id;
        ctx.log(
            0,
            format!("INFO Leader elected: {new} (view {})", self.view),
        );
    }

    fn tick(&mut self, ctx: &mut Ctx, k: u64) {
        let line = match k % 4 {
            0 => format!(
                "INFO Active validators: {}/{}",
                self.active(),
                self.validators.len()
            ),
            1 => format!("INFO Mempool: pending proofs: {}", self.pending_proofs),
            2 => format!("INFO Total proofs processed: {}", self.proofs_processed),
            _ => {
                let h = self.health(ctx.on(Scenario::ChainStall));
                let dot = match h {
                    "HEALTHY" => "🟢",
                    "DEGRADED" => "🟡",
                    _ => "🔴",
                };
                format!("INFO Network health: {dot} {h}")
            }
        };
        ctx.log(0, line);
    }

    fn handle(&mut self, ctx: Ctx, req: &Request) -> Reply {
        match (req.method, req.path) {
            ("GET", "/status") => {
                let health = self.health(ctx.on(Scenario::ChainStall));
                Reply::json(200, &self.status(health, ctx.round))
            }
            _ => Reply::not_found(req.path, "GET /status, GET /health"),
        }
    }

    fn state(&self, node: &Node) -> Value {
        let health = self.health(node.scenarios.contains_key(&Scenario::ChainStall));
        let mut v = self.status(health, node.height);
        v["round_failures"] = json!(self.round_failures);
        v
    }
}
