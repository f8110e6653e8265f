//! Dilithion (seed 002): a Bitcoin-style C++ node. node.log has `BLOCK FOUND!`, `Received block …
//! at height N (propagation Xs)`, `Broadcasted block … to N peers`, `SendMessage() timeout`,
//! `Connected peers: N`; JSON-RPC (`getblockcount`, `getconnectioncount`, `getpeerinfo`) answers
//! POSTs authenticated with the cookie the node writes next to its log, as bitcoind does.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::logfile::{Accumulator, Rng};
use crate::node::{Behaviour, Ctx, Node, Reply, Request};
use crate::scenario::Scenario;

pub struct Dilithion {
    pub cookie_path: PathBuf,
    cookie: String,
    pub mined: u64,
    pub received: u64,
    pub broadcasts: u64,
    pub broadcast_failures: u64,
    pub peer_sends: u64,
    pub send_timeouts: u64,
    propagation_failure: Accumulator,
    send_timeout: Accumulator,
}

impl Dilithion {
    pub fn new(dir: &Path, rng: &mut Rng) -> std::io::Result<Self> {
        let mut d = Dilithion {
            cookie_path: dir.join(".cookie"),
            cookie: String::new(),
            mined: 0,
            received: 0,
            broadcasts: 0,
            broadcast_failures: 0,
            peer_sends: 0,
            send_timeouts: 0,
            propagation_failure: Accumulator::default(),
            send_timeout: Accumulator::default(),
        };
        d.write_cookie(rng)?;
        Ok(d)
    }

    /// A new cookie, as bitcoind writes at every start: temp file and rename, so a reader never
    /// sees half of it.
    fn write_cookie(&mut self, rng: &mut Rng) -> std::io::Result<()> {
        self.cookie = format!("__cookie__:{}", rng.hex(64));
        let tmp = self.cookie_path.with_extension("tmp");
        std::fs::write(&tmp, &self.cookie)?;
        std::fs::rename(&tmp, &self.cookie_path)
    }

    fn authorized(&self, header: Option<&str>) -> bool {
        let Some(h) = header else { return false };
        let Some(b64) = h
            .strip_prefix("Basic ")
            .or_else(|| h.strip_prefix("basic "))
        else {
            return false;
        };
        b64.trim() == base64(self.cookie.as_bytes())
    }

    fn call(&self, ctx: &mut Ctx, method: &str) -> Result<Value, (i64, String)> {
        match method {
            "getblockcount" => Ok(json!(ctx.height)),
            "getbestblockhash" => Ok(json!(block_hash(ctx.height))),
            "getconnectioncount" => Ok(json!(ctx.peers)),
            "getpeerinfo" => Ok(Value::Array(
                (0..ctx.peers)
                    .map(|i| {
                        let remote = i % 2 == 1;
                        let ping = match (remote, ctx.on(Scenario::HighLatency)) {
                            (false, _) => ctx.rng.range(0.01, 0.04),
                            (true, false) => ctx.rng.range(0.08, 0.16),
                            (true, true) => ctx.rng.range(0.25, 0.45),
                        };
                        json!({
                            "id": i,
                            "addr": peer_addr(ctx.spec.family_index, i),
                            "inbound": i % 3 == 0,
                            "pingtime": (ping * 10_000.0).round() / 10_000.0,
                            "synced_blocks": ctx.height,
                            "synced_headers": ctx.height,
                        })
                    })
                    .collect(),
            )),
            _ => Err((-32601, "Method not found".into())),
        }
    }
}

/// The block hash every node agrees on for a height.
pub fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

pub fn block_hash(h: u64) -> String {
    let mut x = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    format!("0000{:012x}", x & 0xffff_ffff_ffff)
}

/// Peers alternate between the node's own region (even) and another one (odd).
fn peer_addr(node: usize, i: u32) -> String {
    format!("10.{}.{}.{}:8444", 10 + i % 2, node % 250, 10 + i)
}

impl Behaviour for Dilithion {
    fn startup(&mut self, ctx: &mut Ctx) {
        if let Err(e) = self.write_cookie(ctx.rng) {
            eprintln!("chainwatch-sim: {}: writing the cookie: {e}", ctx.spec.name);
        }
        ctx.log(0, "[INFO] Dilithion node starting".into());
        ctx.log(
            0,
            format!("[INFO] RPC server listening on 127.0.0.1:{}", ctx.port),
        );
    }

    fn block(&mut self, ctx: &mut Ctx) {
        let h = ctx.height;
        let hash = block_hash(h);
        if ctx.peers == 0 || (h + ctx.spec.family_index as u64).is_multiple_of(3) {
            self.mined += 1;
            ctx.log(0, format!("[INFO] BLOCK FOUND! height={h} hash={hash}"));
        } else {
            self.received += 1;
            let from = ctx.rng.int(0, ctx.peers as u64 - 1);
            let s = ctx.rng.range(0.3, 2.5);
            ctx.log(
                0,
                format!("[INFO] Received block {hash} at height {h} from peer {from} (propagation {s:.2}s)"),
            );
        }
        let failing = ctx
            .rate(Scenario::PropagationFailures)
            .is_some_and(|r| self.propagation_failure.hit(r));
        if failing {
            self.broadcast_failures += 1;
            ctx.log(
                0,
                format!("[ERROR] Broadcast failed for block {hash}: send queue full"),
            );
            return;
        }
        let p = ctx.peers;
        self.broadcasts += 1;
        self.peer_sends += p as u64;
        ctx.log(0, format!("[INFO] Broadcasted block {hash} to {p} peers"));
        if let Some(r) = ctx.rate(Scenario::SendTimeouts) {
            for i in 0..p {
                if self.send_timeout.hit(r) {
                    self.send_timeouts += 1;
                    ctx.log(
                        0,
                        format!(
                            "[WARN] SendMessage() timeout after 5000ms to peer {}",
                            peer_addr(ctx.spec.family_index, i)
                        ),
                    );
                }
            }
        }
    }

    fn synced(&mut self, ctx: &mut Ctx, n: u64) {
        ctx.log(
            0,
            format!(
                "[INFO] UpdateTip: new best={} height={} (synced {n} blocks)",
                block_hash(ctx.height),
                ctx.height
            ),
        );
    }

    fn tick(&mut self, ctx: &mut Ctx, k: u64) {
        match k % 4 {
            0 => ctx.log(0, format!("[INFO] Connected peers: {}", ctx.peers)),
            2 => {
                let q = ctx.rng.int(0, 2);
                ctx.log(0, format!("[INFO] broadcast queue depth={q}"));
            }
            _ => {}
        }
    }

    fn handle(&mut self, mut ctx: Ctx, req: &Request) -> Reply {
        if req.method != "POST" {
            return Reply::json(
                405,
                &json!({"error": "JSON-RPC: POST a request to / (GET /health for health)"}),
            );
        }
        if !self.authorized(req.authorization) {
            let mut r = Reply::text(401, "text/plain", String::new());
            r.headers
                .push(("www-authenticate", "Basic realm=\"jsonrpc\"".into()));
            return r;
        }
        let doc: Value = match serde_json::from_slice(req.body) {
            Ok(d) => d,
            Err(e) => {
                return Reply::json(
                    500,
                    &json!({"result": null, "error": {"code": -32700, "message": format!("Parse error: {e}")}, "id": null}),
                )
            }
        };
        let one = |ctx: &mut Ctx, r: &Value| -> (bool, Value) {
            let id = r.get("id").cloned().unwrap_or(Value::Null);
            let Some(method) = r.get("method").and_then(Value::as_str) else {
                return (
                    false,
                    json!({"result": null, "error": {"code": -32600, "message": "Missing method"}, "id": id}),
                );
            };
            match self.call(ctx, method) {
                Ok(v) => (true, json!({"result": v, "error": null, "id": id})),
                Err((code, msg)) => (
                    false,
                    json!({"result": null, "error": {"code": code, "message": msg}, "id": id}),
                ),
            }
        };
        match &doc {
            Value::Array(reqs) => {
                let out: Vec<Value> = reqs.iter().map(|r| one(&mut ctx, r).1).collect();
                Reply::json(200, &Value::Array(out))
            }
            r => {
                let (ok, v) = one(&mut ctx, r);
                // bitcoind answers a failed single call with 404 (method not found) or 500.
                let status = if ok {
                    200
                } else if v["error"]["code"] == -32601 {
                    404
                } else {
                    500
                };
                Reply::json(status, &v)
            }
        }
    }

    fn state(&self, _node: &Node) -> Value {
        json!({
            "blocks_mined": self.mined,
            "blocks_received": self.received,
            "broadcasts": self.broadcasts,
            "broadcast_failures": self.broadcast_failures,
            "peer_sends": self.peer_sends,
            "send_timeouts": self.send_timeouts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_hashes_are_shared_and_distinct() {
        assert_eq!(block_hash(5), block_hash(5));
        assert_ne!(block_hash(5), block_hash(6));
        assert_eq!(block_hash(5).len(), 16);
    }
}
