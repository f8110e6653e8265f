//! The README's JSON-RPC mapping example, taken from the README itself, loaded by the real sidecar
//! and polled against a local server answering as Bitcoin Core does: the documented example keeps
//! working, and the documented wire format and error handling are what happens.

mod common;
use common::httpd::{Reply, Request, Server};
use common::process::{poll_until, Sidecar};
use common::*;
use serde_json::{json, Value};

#[path = "../../tests/support/readme.rs"]
mod readme;

fn readme_block(name: &str) -> String {
    readme::block(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
        name,
    )
}

/// Bitcoin Core's answers (the shapes of its RPC reference), `height` and the peers as given.
fn bitcoind(r: &Request, height: u64, peers: &[(&str, f64)]) -> Reply {
    let req: Value = serde_json::from_str(&r.body).unwrap();
    let result = match req["method"].as_str().unwrap() {
        "getblockchaininfo" => json!({
            "chain": "main", "blocks": height, "headers": height + 2,
            "bestblockhash": "00000000000000000001a0b1c2d3e4f5",
            "difficulty": 8.3e13, "time": 1_700_000_000, "mediantime": 1_699_999_000,
            "verificationprogress": 0.99987, "initialblockdownload": false,
            "chainwork": "0000000000000000000000000000000000000000561ed4f6f1e24b0e1d27a1c0",
            "size_on_disk": 612_000_000_000u64, "pruned": false, "warnings": ""
        }),
        "getnettotals" => json!({
            "totalbytesrecv": 7_340_032 + height, "totalbytessent": 1_048_576,
            "timemillis": 1_700_000_000_123u64,
            "uploadtarget": {"timeframe": 86400, "target": 0, "target_reached": false}
        }),
        "getmempoolinfo" => json!({
            "loaded": true, "size": 1523, "bytes": 734_221, "usage": 3_021_432,
            "maxmempool": 300_000_000, "mempoolminfee": 0.00001, "minrelaytxfee": 0.00001
        }),
        "getpeerinfo" => Value::Array(
            peers
                .iter()
                .enumerate()
                .map(|(i, (addr, ping))| {
                    json!({"id": i, "addr": addr, "network": "ipv4", "services": "0000000000000409",
                           "relaytxes": true, "lastsend": 1_700_000_000, "lastrecv": 1_700_000_000,
                           "bytessent": 1024, "bytesrecv": 4096, "conntime": 1_699_990_000,
                           "pingtime": ping, "minping": ping / 2.0, "version": 70016,
                           "subver": "/Satoshi:26.0.0/", "inbound": false, "synced_blocks": height})
                })
                .collect(),
        ),
        _ => {
            return Reply::Status(
                404,
                json!({"result": null, "error": {"code": -32601, "message": "Method not found"}, "id": req["id"]})
                    .to_string(),
            )
        }
    };
    Reply::Ok(json!({"result": result, "error": null, "id": req["id"]}).to_string())
}

#[test]
fn the_readme_jsonrpc_example_loads_and_maps_a_real_answer() {
    let dir = tempfile::tempdir().unwrap();
    let profile = readme_block("jsonrpc-profile");
    let config = readme_block("jsonrpc-config");
    write(&dir.path().join("mycoin-rpc.yaml"), &profile);
    let cookie = dir.path().join(".cookie");
    write(&cookie, "__cookie__:0f1e2d\n");
    let srv = Server::start(|r| {
        let auth = r.headers.iter().any(|(k, v)| {
            k == "authorization" && v == "Basic X19jb29raWVfXzowZjFlMmQ=" // __cookie__:0f1e2d
        });
        if !auth {
            return Reply::Status(401, String::new());
        }
        bitcoind(
            r,
            812_345,
            &[("10.0.0.5:8333", 0.081), ("10.0.0.9:8333", 0.142)],
        )
    });
    // Only where the node listens and where its cookie is differ from the README.
    for documented in [
        "http://127.0.0.1:8332",
        "/var/lib/mycoind/.cookie",
        "interval: 15s",
    ] {
        assert!(
            config.contains(documented),
            "README example lacks {documented}"
        );
    }
    let config = config
        .replace("http://127.0.0.1:8332", &srv.url())
        .replace("/var/lib/mycoind/.cookie", cookie.to_str().unwrap())
        .replace("interval: 15s", "interval: 200ms\n    timeout: 150ms");
    let cfg = dir.path().join("chainwatch.yaml");
    write(&cfg, &config);

    let out = std::process::Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(r#"chain="mycoin", network="mainnet""#),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let s = Sidecar::start(&cfg, &[]);
    let m = poll_until("the four calls mapped", || {
        let m = s.metrics();
        (value(&m, "chain_peer_ping_seconds", &[("peer", "10.0.0.9:8333")]).is_some()
            && value(&m, "chain_block_height", &[]).is_some())
        .then_some(m)
    });
    let want = [("chain", "mycoin"), ("network", "mainnet")];
    assert_eq!(value(&m, "chain_block_height", &want), Some(812_345.0));
    assert_eq!(value(&m, "chain_sync_progress_ratio", &want), Some(0.99987));
    assert_eq!(
        value(&m, "chain_network_receive_bytes_total", &want),
        Some(7_340_032.0 + 812_345.0)
    );
    assert_eq!(
        value(&m, "chain_network_transmit_bytes_total", &want),
        Some(1_048_576.0)
    );
    assert_eq!(value(&m, "chain_transactions_pending", &want), Some(1523.0));
    assert_eq!(
        value(&m, "chain_peer_ping_seconds", &[("peer", "10.0.0.5:8333")]),
        Some(0.081)
    );
    // The documented request: POST, JSON, bitcoin-cli's envelope, the calls in order.
    {
        let reqs = srv.requests.lock().unwrap();
        let first: Vec<&Request> = reqs.iter().take(4).collect();
        let methods: Vec<String> = first
            .iter()
            .map(|r| {
                assert_eq!(r.method, "POST");
                assert!(r
                    .headers
                    .iter()
                    .any(|(k, v)| k == "content-type" && v == "application/json"));
                let body: Value = serde_json::from_str(&r.body).unwrap();
                assert_eq!(body["jsonrpc"], "1.0");
                assert_eq!(body["id"], "chainwatch");
                assert_eq!(body["params"], json!([]));
                body["method"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(
            methods,
            [
                "getblockchaininfo",
                "getnettotals",
                "getmempoolinfo",
                "getpeerinfo"
            ]
        );
    }

    // The node warms up after a restart: Bitcoin Core answers -28 with HTTP 500. An `rpc` error;
    // the last good values stay.
    srv.set(|_| {
        Reply::Status(
            500,
            r#"{"result": null, "error": {"code": -28, "message": "Loading block index…"}, "id": "chainwatch"}"#.into(),
        )
    });
    let m = poll_until("the rpc error counted", || {
        let m = s.metrics();
        (value(
            &m,
            "chainwatch_source_errors_total",
            &[("source", "rpc"), ("kind", "rpc")],
        )
        .unwrap_or(0.0)
            >= 1.0
            && value(&m, "chainwatch_source_up", &[("source", "rpc")]) == Some(0.0))
        .then_some(m)
    });
    assert_eq!(value(&m, "chain_block_height", &[]), Some(812_345.0));
    // Back, with a peer gone: its series goes.
    srv.set(|r| bitcoind(r, 812_346, &[("10.0.0.9:8333", 0.150)]));
    poll_until("recovered, one peer left", || {
        let m = s.metrics();
        (value(&m, "chain_block_height", &[]) == Some(812_346.0)
            && value(&m, "chain_peer_ping_seconds", &[("peer", "10.0.0.5:8333")]).is_none()
            && value(&m, "chain_peer_ping_seconds", &[("peer", "10.0.0.9:8333")]) == Some(0.150))
        .then_some(())
    });
}
