//! BitCell (seed 004): a Rust node with its own Prometheus `/metrics` (the twelve `bitcell_*`
//! series, sync progress in percent) and `GET /health`; its log has `proof generated in Xs`.

use serde_json::{json, Value};

use crate::node::{Behaviour, Ctx, Node, Reply, Request};
use crate::scenario::Scenario;

pub struct Bitcell {
    pub txs_processed: u64,
    pub pending_txs: u64,
    pub proofs_generated: u64,
    pub proofs_verified: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub last_proof_seconds: f64,
}

/// The gauges that depend on scenarios, computed the same way for `/metrics` and `/state`.
struct Gauges {
    peers: u32,
    dht_peers: u32,
    active_miners: u32,
    banned_miners: u32,
    sync_progress: f64,
}

impl Bitcell {
    pub fn new() -> Self {
        Bitcell {
            txs_processed: 0,
            pending_txs: 40,
            proofs_generated: 0,
            proofs_verified: 0,
            bytes_sent: 0,
            bytes_received: 0,
            last_proof_seconds: 0.0,
        }
    }

    fn gauges(
        &self,
        node_peers: u32,
        miners: u32,
        sc: &impl Fn(Scenario) -> Option<f64>,
    ) -> Gauges {
        let active = if sc(Scenario::NoActiveMiners).is_some() {
            0
        } else {
            miners
        };
        let banned = match sc(Scenario::BannedMiners) {
            // banned / (active + banned) ≈ rate
            Some(r) if r < 1.0 => ((miners as f64) * r / (1.0 - r)).ceil() as u32,
            Some(_) => miners,
            None => 0,
        };
        Gauges {
            peers: node_peers,
            dht_peers: node_peers * 3,
            active_miners: active,
            banned_miners: banned,
            sync_progress: if sc(Scenario::OutOfSync).is_some() {
                82.5
            } else {
                100.0
            },
        }
    }

    fn metrics(&self, height: u64, g: &Gauges) -> String {
        let series: [(&str, &str, &str, String); 12] = [
            (
                "bitcell_chain_height",
                "gauge",
                "Blockchain height",
                height.to_string(),
            ),
            (
                "bitcell_sync_progress",
                "gauge",
                "Sync percentage",
                format!("{}", g.sync_progress),
            ),
            (
                "bitcell_peer_count",
                "gauge",
                "Connected peers",
                g.peers.to_string(),
            ),
            (
                "bitcell_dht_peer_count",
                "gauge",
                "DHT peers",
                g.dht_peers.to_string(),
            ),
            (
                "bitcell_txs_processed_total",
                "counter",
                "Transactions processed",
                self.txs_processed.to_string(),
            ),
            (
                "bitcell_pending_txs",
                "gauge",
                "Pending transactions",
                self.pending_txs.to_string(),
            ),
            (
                "bitcell_proofs_generated_total",
                "counter",
                "ZK proofs generated",
                self.proofs_generated.to_string(),
            ),
            (
                "bitcell_proofs_verified_total",
                "counter",
                "ZK proofs verified",
                self.proofs_verified.to_string(),
            ),
            (
                "bitcell_active_miners",
                "gauge",
                "Active miners",
                g.active_miners.to_string(),
            ),
            (
                "bitcell_banned_miners",
                "gauge",
                "Banned miners",
                g.banned_miners.to_string(),
            ),
            (
                "bitcell_bytes_sent_total",
                "counter",
                "Network traffic sent",
                self.bytes_sent.to_string(),
            ),
            (
                "bitcell_bytes_received_total",
                "counter",
                "Network traffic received",
                self.bytes_received.to_string(),
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in series {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        }
        out
    }
}

impl Default for Bitcell {
    fn default() -> Self {
        Self::new()
    }
}

impl Behaviour for Bitcell {
    fn startup(&mut self, ctx: &mut Ctx) {
        ctx.log(
            0,
            format!(
                "INFO bitcell_node: starting node {} in region {}",
                ctx.spec.name, ctx.spec.region
            ),
        );
        ctx.log(
            0,
            format!(
                "INFO bitcell_node::metrics: serving /metrics and /health on 127.0.0.1:{}",
                ctx.port
            ),
        );
    }

    fn block(&mut self, ctx: &mut Ctx) {
        let s = if ctx.on(Scenario::SlowProofs) {
            ctx.rng.range(35.0, 45.0)
        } else {
            ctx.rng.range(6.0, 9.5)
        };
        self.last_proof_seconds = s;
        self.proofs_generated += 1;
        self.proofs_verified += 1 + ctx.rng.int(0, 2);
        let txs = ctx.rng.int(20, 80);
        self.txs_processed += txs;
        ctx.log(
            0,
            format!(
                "INFO bitcell_node::prover: proof generated in {s:.1}s (block {})",
                ctx.height
            ),
        );
        ctx.log(
            0,
            format!(
                "INFO bitcell_node::chain: imported block {} ({txs} txs)",
                ctx.height
            ),
        );
    }

    fn synced(&mut self, ctx: &mut Ctx, n: u64) {
        ctx.log(
            0,
            format!(
                "INFO bitcell_node::sync: caught up {n} blocks, height {}",
                ctx.height
            ),
        );
    }

    fn tick(&mut self, ctx: &mut Ctx, k: u64) {
        let p = ctx.peers as u64;
        self.bytes_sent += p * ctx.rng.int(2_000, 20_000);
        self.bytes_received += p * ctx.rng.int(2_000, 20_000);
        self.pending_txs = if ctx.on(Scenario::HighPendingTxs) {
            ctx.rng.int(1_500, 2_000)
        } else {
            ctx.rng.int(20, 150)
        };
        match k % 4 {
            0 => ctx.log(
                0,
                format!(
                    "INFO bitcell_node::network: {} peers connected, {} DHT peers",
                    p,
                    p * 3
                ),
            ),
            2 => ctx.log(
                0,
                format!(
                    "INFO bitcell_node::mempool: {} pending transactions",
                    self.pending_txs
                ),
            ),
            _ => {}
        }
    }

    fn handle(&mut self, ctx: Ctx, req: &Request) -> Reply {
        match (req.method, req.path) {
            ("GET", "/metrics") => {
                let g = self.gauges(ctx.peers, ctx.spec.miners, &|s| ctx.rate(s));
                Reply::text(
                    200,
                    "text/plain; version=0.0.4; charset=utf-8",
                    self.metrics(ctx.height, &g),
                )
            }
            _ => Reply::not_found(req.path, "GET /metrics, GET /health"),
        }
    }

    fn state(&self, node: &Node) -> Value {
        let g = self.gauges(node.peers(), node.spec.miners, &|s| {
            node.scenarios.get(&s).map(|a| a.rate)
        });
        json!({
            "chain_height": node.height,
            "sync_progress": g.sync_progress,
            "peer_count": g.peers,
            "dht_peer_count": g.dht_peers,
            "txs_processed_total": self.txs_processed,
            "pending_txs": self.pending_txs,
            "proofs_generated_total": self.proofs_generated,
            "proofs_verified_total": self.proofs_verified,
            "active_miners": g.active_miners,
            "banned_miners": g.banned_miners,
            "bytes_sent_total": self.bytes_sent,
            "bytes_received_total": self.bytes_received,
            "last_proof_seconds": self.last_proof_seconds,
        })
    }
}
