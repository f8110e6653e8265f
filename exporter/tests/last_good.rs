//! Every way a polled API can answer badly, for each polled source type, against a real HTTP
//! server: the last good values are still served (no series changed that could not be read, none
//! removed), the error is counted with the right kind, `chainwatch_source_up` is 0, and /metrics
//! keeps answering (and passes `promtool check metrics`). Series vanish only when a successful
//! answer no longer holds them.

mod common;
use common::httpd::{Reply, Request, Server};
use common::process::{poll_until, Sidecar};
use common::*;
use std::path::Path;
use std::time::Duration;

type Samples = Vec<(Series, f64)>;

fn config(dir: &Path, profile: &str, sources: &str) -> std::path::PathBuf {
    let p = dir.join("chainwatch.yaml");
    write(
        &p,
        &format!("version: 1\nprofiles: [{profile}]\nlabels: {{node: n1}}\nsources:\n{sources}"),
    );
    p
}

fn source(name: &str, kind: &str, url: &str) -> String {
    format!("  - name: {name}\n    type: {kind}\n    url: {url}\n    interval: 200ms\n    timeout: 150ms\n    max_body_bytes: 1048576\n")
}

fn scrape(s: &Sidecar) -> Samples {
    let (status, body) = s.get("/metrics");
    assert_eq!(status, 200, "/metrics keeps answering");
    parse(&body)
}

fn errors(m: &Samples, source: &str, kind: &str) -> f64 {
    value(
        m,
        "chainwatch_source_errors_total",
        &[("source", source), ("kind", kind)],
    )
    .expect("every error kind of a source is exported from the start")
}

fn up(m: &Samples, source: &str) -> Option<f64> {
    value(m, "chainwatch_source_up", &[("source", source)])
}

/// A series and the value it must keep.
type Want = (&'static str, &'static [(&'static str, &'static str)], f64);

fn holds(m: &Samples, want: &[Want]) -> Result<(), String> {
    for (name, labels, v) in want {
        let got = value(m, name, labels);
        if got != Some(*v) {
            return Err(format!("{name}{labels:?} = {got:?}, want {v}"));
        }
    }
    Ok(())
}

/// One hostile answer: what it is, how the server gives it, the error kind it must count as.
struct Hostile {
    what: &'static str,
    reply: Box<dyn Fn(&Request) -> Reply + Send + Sync>,
    kind: &'static str,
}

fn hostile(
    what: &'static str,
    kind: &'static str,
    reply: impl Fn(&Request) -> Reply + Send + Sync + 'static,
) -> Hostile {
    Hostile {
        what,
        reply: Box::new(reply),
        kind,
    }
}

/// The answers every polled source can get from its transport.
fn transport() -> Vec<Hostile> {
    vec![
        hostile("an answer past the timeout", "timeout", |_| {
            Reply::Slow(Duration::from_millis(600), "{}".into())
        }),
        hostile("a 500", "http_status", |_| {
            Reply::Status(500, "oops".into())
        }),
        hostile("a 100 MiB body", "too_large", |_| Reply::Huge(100 << 20)),
        hostile("a closed connection", "connect", |_| Reply::Hangup),
    ]
}

/// Serve `good` until the values in `want` are up, then each hostile answer in turn: it must be
/// counted as its kind with the source down, the values in `want` must be served all along (and
/// after two more polls of it), and the good answer must bring the source back up.
fn survive(
    s: &Sidecar,
    srv: &Server,
    source: &str,
    good: impl Fn(&Request) -> Reply + Send + Sync + Clone + 'static,
    want: &[Want],
    hostiles: Vec<Hostile>,
) {
    srv.set(good.clone());
    poll_until("the good values", || {
        let m = scrape(s);
        (up(&m, source) == Some(1.0) && holds(&m, want).is_ok()).then_some(())
    });
    for h in hostiles {
        let before = errors(&scrape(s), source, h.kind);
        srv.set(h.reply);
        poll_until(&format!("{}: counted as {}", h.what, h.kind), || {
            let m = scrape(s);
            if let Err(e) = holds(&m, want) {
                panic!("{}: a last good value was lost: {e}", h.what);
            }
            (errors(&m, source, h.kind) >= before + 2.0 && up(&m, source) == Some(0.0))
                .then_some(())
        });
        let (status, body) = s.get("/metrics");
        assert_eq!(status, 200);
        promtool_check_metrics(&body);
        let m = parse(&body);
        holds(&m, want).unwrap_or_else(|e| panic!("{}: {e}", h.what));
        let (_, health) = s.get("/health");
        assert!(health.contains("last_error"), "{health}");
        srv.set(good.clone());
        poll_until(&format!("{}: recovered", h.what), || {
            let m = scrape(s);
            (up(&m, source) == Some(1.0) && holds(&m, want).is_ok()).then_some(())
        });
    }
}

fn ok(body: &str) -> Reply {
    Reply::Ok(body.to_string())
}

const STATUS: &str = r#"{"rounds_completed": 8640, "proofs_processed": 43200, "pending_proofs": 12, "active_validators": 3, "total_validators": 4, "network_health": "DEGRADED", "view_changes": 3, "validators": [{"id": "node_1", "stake": 10000, "rounds": 120, "accuracy": 0.99, "rewards": 42.5}, {"id": "node_2", "stake": 9000, "rounds": 118, "accuracy": 0.97, "rewards": 40}]}"#;

const POP_WANT: &[Want] = &[
    ("chain_pop_rounds_total", &[], 8640.0),
    ("chain_pop_proofs_pending", &[], 12.0),
    ("chain_pop_network_health", &[("state", "degraded")], 1.0),
    (
        "chain_pop_validator_stake",
        &[("validator", "node_1")],
        10000.0,
    ),
    (
        "chain_pop_validator_stake",
        &[("validator", "node_2")],
        9000.0,
    ),
    (
        "chain_pop_validator_rounds_total",
        &[("validator", "node_2")],
        118.0,
    ),
];

#[test]
fn http_json_keeps_its_last_good_values() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(|_| ok(STATUS));
    let s = Sidecar::start(
        &config(
            dir.path(),
            "pop-validator",
            &source("pop", "http_json", &srv.url()),
        ),
        &[],
    );
    let many = format!(
        "{{\"validators\": [{}]}}",
        vec![r#"{"id": "v", "stake": 1}"#; 40_000].join(",")
    );
    let mut cases = transport();
    cases.extend([
        hostile("truncated JSON", "decode", |_| ok(&STATUS[..100])),
        hostile("not JSON", "decode", |_| ok("<html>502 Bad Gateway</html>")),
        hostile("not UTF-8", "decode", |_| Reply::Raw(b"{\"a\": \"\xff\"}".to_vec())),
        hostile("deeply nested garbage", "decode", |_| {
            ok(&format!("{}{}", "[".repeat(5000), "]".repeat(5000)))
        }),
        hostile("garbage nested where nothing is read", "decode", |_| {
            ok(&STATUS.replace(
                "\"view_changes\": 3",
                &format!("\"junk\": {}{}", "{\"a\":".repeat(3000), "}".repeat(3000)),
            ))
        }),
        hostile("wrong types everywhere", "decode", |_| {
            ok(r#"{"rounds_completed": "lots", "pending_proofs": [], "network_health": 7, "validators": 7}"#)
        }),
        hostile("a string for the whole document", "decode", |_| ok(r#""not an object""#)),
        hostile("an array for the whole document", "decode", |_| ok("[1, 2]")),
        // Partly readable: what can be read is the same as before, one validator is missing
        // and another's stake unreadable. Nothing may be removed or changed.
        hostile("NaN, Infinity and a missing validator", "decode", |_| {
            ok(r#"{"rounds_completed": 8640, "pending_proofs": "NaN", "network_health": "degraded", "validators": [{"id": "node_1", "stake": "Infinity", "rounds": 120}]}"#)
        }),
        hostile("a negative counter", "decode", |_| {
            ok(r#"{"rounds_completed": -5, "validators": []}"#)
        }),
        hostile("an unknown state", "decode", |_| {
            ok(r#"{"network_health": "ON FIRE", "validators": []}"#)
        }),
        hostile("a label value of 4 KiB", "decode", move |_| {
            ok(&format!(
                r#"{{"validators": [{{"id": "{}", "stake": 1}}]}}"#,
                "x".repeat(4096)
            ))
        }),
        hostile("more values than a document may keep", "too_large", move |_| {
            ok(&many)
        }),
    ]);
    survive(&s, &srv, "pop", |_| ok(STATUS), POP_WANT, cases);
    // A successful answer without node_2: now it is gone.
    srv.set(|_| {
        ok(&STATUS.replace(
            r#", {"id": "node_2", "stake": 9000, "rounds": 118, "accuracy": 0.97, "rewards": 40}"#,
            "",
        ))
    });
    poll_until("node_2 removed by a good answer", || {
        let m = scrape(&s);
        (value(&m, "chain_pop_validator_stake", &[("validator", "node_2")]).is_none()
            && value(&m, "chain_pop_validator_stake", &[("validator", "node_1")]) == Some(10000.0))
        .then_some(())
    });
}

/// Dilithion's RPC: the good answers, and per call what a hostile node says instead.
fn rpc(peerinfo: &'static str) -> impl Fn(&Request) -> Reply + Send + Sync + Clone + 'static {
    move |r: &Request| {
        let req: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let result = match req["method"].as_str().unwrap() {
            "getblockcount" => "1234",
            "getconnectioncount" => "3",
            "getpeerinfo" => peerinfo,
            _ => "null",
        };
        ok(&format!(
            r#"{{"result": {result}, "error": null, "id": "chainwatch"}}"#
        ))
    }
}

const PEERS: &str = r#"[{"addr": "188.166.255.63:8444", "pingtime": 0.182}, {"addr": "134.122.4.164:8444", "pingtime": 0.091}]"#;

const RPC_WANT: &[Want] = &[
    ("chain_block_height", &[], 1234.0),
    ("chain_peers", &[], 3.0),
    (
        "chain_peer_ping_seconds",
        &[("peer", "188.166.255.63:8444")],
        0.182,
    ),
    (
        "chain_peer_ping_seconds",
        &[("peer", "134.122.4.164:8444")],
        0.091,
    ),
];

#[test]
fn jsonrpc_keeps_its_last_good_values() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(rpc(PEERS));
    let s = Sidecar::start(
        &config(
            dir.path(),
            "dilithion",
            &source("rpc", "jsonrpc", &srv.url()),
        ),
        &[],
    );
    let many: &'static str = Box::leak(
        format!(
            "[{}]",
            vec![r#"{"addr": "a", "pingtime": 0.1}"#; 40_000].join(",")
        )
        .into_boxed_str(),
    );
    let deep: &'static str =
        Box::leak(format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_boxed_str());
    let mut cases = transport();
    cases.extend([
        hostile("getpeerinfo of the wrong type", "decode", rpc(r#""not a list""#)),
        hostile("getpeerinfo a number", "decode", rpc("7")),
        // One peer unreadable, the other missing: neither may change or vanish.
        hostile("a peer's ping not a number", "decode", rpc(r#"[{"addr": "188.166.255.63:8444", "pingtime": "slow"}]"#)),
        hostile("a NaN ping", "decode", rpc(r#"[{"addr": "188.166.255.63:8444", "pingtime": "NaN"}]"#)),
        hostile("an element of the wrong type", "decode", rpc(r#"[7, {"addr": "188.166.255.63:8444", "pingtime": 0.182}]"#)),
        hostile("deeply nested garbage", "decode", rpc(deep)),
        hostile("more peers than a document may keep", "too_large", rpc(many)),
        hostile("an RPC error for one call", "rpc", |r: &Request| {
            if r.body.contains("getpeerinfo") {
                Reply::Status(500, r#"{"result": null, "error": {"code": -28, "message": "Loading block index"}, "id": "chainwatch"}"#.into())
            } else {
                rpc(PEERS)(r)
            }
        }),
        hostile("no result", "decode", |_| ok(r#"{"error": null, "id": "chainwatch"}"#)),
        hostile("not JSON", "decode", |_| ok("Internal error")),
    ]);
    survive(&s, &srv, "rpc", rpc(PEERS), RPC_WANT, cases);
    srv.set(rpc(
        r#"[{"addr": "134.122.4.164:8444", "pingtime": 0.091}]"#,
    ));
    poll_until("the disconnected peer removed by a good answer", || {
        let m = scrape(&s);
        (value(
            &m,
            "chain_peer_ping_seconds",
            &[("peer", "188.166.255.63:8444")],
        )
        .is_none()
            && up(&m, "rpc") == Some(1.0))
        .then_some(())
    });
}

const NATIVE: &str = "# HELP bitcell_chain_height h\n# TYPE bitcell_chain_height gauge\nbitcell_chain_height 812\nbitcell_sync_progress 97.5\nbitcell_peer_count 5\nbitcell_dht_peer_count 40\nbitcell_txs_processed_total 1000\nbitcell_pending_txs 12\nbitcell_proofs_generated_total 30\nbitcell_proofs_verified_total 29\nbitcell_active_miners 4\nbitcell_banned_miners 1\nbitcell_bytes_sent_total 5e6\nbitcell_bytes_received_total 7e6\n";

const NATIVE_WANT: &[Want] = &[
    ("chain_block_height", &[], 812.0),
    ("chain_sync_progress_ratio", &[], 0.975),
    ("chain_peers", &[], 5.0),
    ("chain_dht_peers", &[], 40.0),
    ("chain_transactions_processed_total", &[], 1000.0),
    ("chain_miners_active", &[], 4.0),
    ("chain_network_transmit_bytes_total", &[], 5e6),
];

#[test]
fn prometheus_keeps_its_last_good_values() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(|_| ok(NATIVE));
    let s = Sidecar::start(
        &config(
            dir.path(),
            "bitcell",
            &source("native", "prometheus", &srv.url()),
        ),
        &[],
    );
    let mut cases = transport();
    cases.extend([
        hostile("an HTML error page", "decode", |_| {
            ok("<html><body>502 Bad Gateway</body></html>\n")
        }),
        hostile("an empty answer", "decode", |_| ok("")),
        hostile("not UTF-8", "decode", |_| {
            Reply::Raw(b"bitcell_peer_count 5\n\xff\xfe\n".to_vec())
        }),
        hostile("one line of garbage among good ones", "decode", |_| {
            ok(&NATIVE.replace(
                "bitcell_peer_count 5\n",
                "bitcell_peer_count 5\n}{ garbage\n",
            ))
        }),
        hostile("a value of the wrong type", "decode", |_| {
            ok(&NATIVE.replace("bitcell_dht_peer_count 40", "bitcell_dht_peer_count forty"))
        }),
        hostile("deeply nested garbage", "decode", |_| {
            ok(&format!("{}\n", "{".repeat(100_000)))
        }),
        // Readable lines are the same as before; the others keep their last values.
        hostile("NaN and +Inf samples", "decode", |_| {
            ok(&NATIVE
                .replace("bitcell_dht_peer_count 40", "bitcell_dht_peer_count NaN")
                .replace("bitcell_active_miners 4", "bitcell_active_miners +Inf")
                .replace(
                    "bitcell_bytes_sent_total 5e6",
                    "bitcell_bytes_sent_total -Inf",
                ))
        }),
        hostile("a negative counter", "decode", |_| {
            ok(&NATIVE.replace(
                "bitcell_txs_processed_total 1000",
                "bitcell_txs_processed_total -1",
            ))
        }),
        hostile("a summand that is NaN", "decode", |_| {
            ok(&format!("{NATIVE}bitcell_peer_count{{shard=\"2\"}} NaN\n"))
        }),
    ]);
    survive(&s, &srv, "native", |_| ok(NATIVE), NATIVE_WANT, cases);
    srv.set(|_| ok(&NATIVE.replace("bitcell_dht_peer_count 40\n", "")));
    poll_until("dht peers removed by a good answer", || {
        let m = scrape(&s);
        (value(&m, "chain_dht_peers", &[]).is_none() && up(&m, "native") == Some(1.0)).then_some(())
    });
}

#[test]
fn health_counts_its_failures_and_marks_the_node_down() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(|_| ok("OK"));
    let s = Sidecar::start(
        &config(
            dir.path(),
            "bitcell",
            &source("health", "health", &format!("{}/health", srv.url())),
        ),
        &[],
    );
    for (reply, kind) in [
        (Reply::Status(503, "down".into()), "http_status"),
        (
            Reply::Slow(Duration::from_millis(600), "OK".into()),
            "timeout",
        ),
        (Reply::Hangup, "connect"),
    ] {
        poll_until("up", || {
            let m = scrape(&s);
            (value(&m, "chain_node_up", &[]) == Some(1.0) && up(&m, "health") == Some(1.0))
                .then_some(())
        });
        let before = errors(&scrape(&s), "health", kind);
        srv.set(move |_| reply.clone());
        poll_until(kind, || {
            let m = scrape(&s);
            (errors(&m, "health", kind) > before
                && value(&m, "chain_node_up", &[]) == Some(0.0)
                && up(&m, "health") == Some(0.0))
            .then_some(())
        });
        srv.set(|_| ok("OK"));
    }
}
