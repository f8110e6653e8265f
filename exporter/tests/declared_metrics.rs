//! Metrics of a profile's own, without a rebuild: declared under `chain_x_` with type, unit, help
//! and labels, held to the catalog's naming rules, served by the running sidecar, documented by
//! `catalog`.

mod common;
use common::process::{poll_until, Sidecar};
use common::*;

use std::fs::OpenOptions;
use std::io::Write;
use std::process::Command;

const MINE: &str = r#"version: 1
name: mempool
chain: mychain
metrics:
  - name: chain_x_mempool_evictions_total
    type: counter
    help: Transactions evicted from the mempool, by reason.
    labels: [reason]
  - name: chain_x_rpc_latency_seconds
    type: histogram
    unit: seconds
    buckets: [0.01, 0.1, 1]
    help: Latency of the node's RPC answers.
  - name: chain_x_sync_phase
    type: state
    state_label: phase
    states: [headers, blocks, done]
    help: Sync phase; the series of the current phase is 1.
rules:
  - name: evicted
    regex: 'evicted (?P<n>\d+) txs \((?P<reason>\w+)\)'
    examples: ['mempool: evicted 3 txs (expiry)']
    actions:
      - counter: chain_x_mempool_evictions_total
        by: n
        labels: {reason: $reason}
  - name: rpc
    regex: 'RPC \w+ answered in (?P<ms>\d+)ms'
    actions:
      - histogram: chain_x_rpc_latency_seconds
        value: ms
        unit: ms
  - name: phase
    regex: 'sync phase: (?P<p>\w+)'
    actions:
      - state: chain_x_sync_phase
        value: p
tests:
  - lines: ['mempool: evicted 3 txs (expiry)', 'RPC getinfo answered in 20ms', 'sync phase: blocks']
    expect:
      'chain_x_mempool_evictions_total{reason="expiry"}': 3
      chain_x_rpc_latency_seconds_count: 1
      chain_x_rpc_latency_seconds_sum: 0.02
      'chain_x_sync_phase{phase="headers"}': 0
      'chain_x_sync_phase{phase="blocks"}': 1
      'chain_x_sync_phase{phase="done"}': 0
"#;

#[test]
fn a_declared_metric_is_served_like_a_catalog_one() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("mempool.yaml");
    write(&profile, MINE);
    let log = dir.path().join("node.log");
    let cfg = dir.path().join("chainwatch.yaml");
    write(
        &cfg,
        &format!(
            "version: 1\nprofiles: [\"{}\"]\nlabels: {{node: n1}}\nsources:\n  - name: node-log\n    type: file\n    paths: [\"{}\"]\n",
            profile.display(),
            log.display()
        ),
    );
    let s = Sidecar::start(&cfg, &[]);
    s.wait_ready();
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(b"mempool: evicted 3 txs (expiry)\nmempool: evicted 2 txs (sizelimit)\nRPC getinfo answered in 20ms\nsync phase: blocks\n")
        .unwrap();
    let body = poll_until("the declared metrics", || {
        let (_, body) = s.get("/metrics");
        let m = parse(&body);
        (value(&m, "chain_x_sync_phase", &[("phase", "blocks")]) == Some(1.0)
            && value(
                &m,
                "chain_x_mempool_evictions_total",
                &[("reason", "sizelimit")],
            )
            .is_some()
            && value(&m, "chain_x_rpc_latency_seconds_count", &[]) == Some(1.0))
        .then_some(body)
    });
    promtool_check_metrics(&body);
    let m = parse(&body);
    assert_eq!(
        value(
            &m,
            "chain_x_mempool_evictions_total",
            &[("reason", "expiry"), ("chain", "mychain"), ("node", "n1")]
        ),
        Some(3.0)
    );
    assert_eq!(
        value(&m, "chain_x_rpc_latency_seconds_bucket", &[("le", "0.1")]),
        Some(1.0)
    );
    for line in [
        "# HELP chain_x_mempool_evictions_total Transactions evicted from the mempool, by reason.",
        "# TYPE chain_x_mempool_evictions_total counter",
        "# TYPE chain_x_rpc_latency_seconds histogram",
        "# TYPE chain_x_sync_phase gauge",
    ] {
        assert!(body.lines().any(|l| l == line), "no `{line}` in:\n{body}");
    }
    let (code, _) = s.terminate();
    assert_eq!(code, 0);

    // Its own tests run like a built-in's.
    let out = Command::new(bin())
        .args(["test", profile.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // `catalog` documents them, with where they were declared; alone, it prints the compiled table.
    let out = Command::new(bin())
        .args(["catalog", "--profile", profile.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = String::from_utf8(out.stdout).unwrap();
    assert!(doc.starts_with(&chainwatch_catalog::to_markdown()), "{doc}");
    assert!(
        doc.contains(&format!(
            "| `chain_x_mempool_evictions_total` | counter | `reason` | Transactions evicted from the mempool, by reason. | {}:5 |",
            profile.display()
        )),
        "{doc}"
    );
    assert!(
        doc.contains(
            "| `chain_x_sync_phase` | state gauge (phase: headers, blocks, done) | `phase` |"
        ),
        "{doc}"
    );
}

/// The catalog's naming and type rules hold for declarations; a rule may use only what is
/// declared, with the labels declared.
#[test]
fn declarations_and_their_use_are_checked_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.yaml");
    let bad = MINE
        .replace(
            "chain_x_mempool_evictions_total\n    type: counter",
            "chain_x_mempool_evictions\n    type: counter",
        )
        .replace("labels: {reason: $reason}", "labels: {kind: $reason}")
        .replace("state: chain_x_sync_phase", "state: chain_x_sync_stage");
    write(&p, &bad);
    let line_of =
        |text: &str, needle: &str| 1 + text.lines().position(|l| l.contains(needle)).unwrap();
    let out = replay(&["--profile", p.to_str().unwrap(), "/dev/null"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let f = p.display();
    for want in [
        format!("{f}:5:"),
        "metrics[0].name: `chain_x_mempool_evictions` is a counter: its name ends in `_total`".to_string(),
        format!("{f}:{}:", line_of(&bad, "state: chain_x_sync_stage")),
        "rules[2].actions[0].state: unknown metric `chain_x_sync_stage`: not declared under `metrics:` of a loaded profile; did you mean `chain_x_sync_phase`?".to_string(),
    ] {
        assert!(err.contains(&want), "no `{want}` in:\n{err}");
    }
    // A label the declaration does not allow.
    let bad = MINE.replace("labels: {reason: $reason}", "labels: {kind: $reason}");
    write(&p, &bad);
    let out = replay(&["--profile", p.to_str().unwrap(), "/dev/null"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{f}:{}:", line_of(&bad, "labels: {kind"))) && err.contains("label `kind` is not allowed on `chain_x_mempool_evictions_total` (allowed: reason)"),
        "{err}"
    );
}

/// A profile whose polled stats API feeds metrics it declares, like log rules do.
const MEMPOOL_API: &str = r#"version: 1
name: mempool-api
chain: mychain
metrics:
  - name: chain_x_mempool_transactions
    type: gauge
    help: Transactions waiting in the mempool, by pool.
    labels: [pool]
  - name: chain_x_mempool_evictions_total
    type: counter
    help: Transactions evicted from the mempool, by reason.
    labels: [reason]
apis:
  mempool:
    type: http_json
    path: /mempool
    metrics:
      - gauge: chain_x_mempool_transactions
        pointer: /pending
        labels: {pool: main}
      - each: /evicted
        metrics:
          - counter: chain_x_mempool_evictions_total
            pointer: /count
            labels: {reason: /reason}
"#;

#[test]
fn a_polled_api_feeds_declared_metrics() {
    use common::httpd::{Reply, Server};
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(|r| {
        if r.path == "/mempool" {
            Reply::Ok(r#"{"pending": 412, "evicted": [{"reason": "expiry", "count": 7}, {"reason": "sizelimit", "count": 2}]}"#.into())
        } else {
            Reply::Status(404, "{}".into())
        }
    });
    let profile = dir.path().join("mempool-api.yaml");
    write(&profile, MEMPOOL_API);
    let cfg = dir.path().join("chainwatch.yaml");
    write(
        &cfg,
        &format!(
            "version: 1\nprofiles: [\"{}\"]\nlabels: {{node: n1}}\nsources:\n  - name: api\n    type: http_json\n    url: {}\n    interval: 200ms\n    timeout: 150ms\n",
            profile.display(),
            srv.url()
        ),
    );
    let s = Sidecar::start(&cfg, &[]);
    let body = poll_until("the mapped declared metrics", || {
        let (_, body) = s.get("/metrics");
        let m = parse(&body);
        (value(
            &m,
            "chain_x_mempool_evictions_total",
            &[("reason", "sizelimit")],
        ) == Some(2.0))
        .then_some(body)
    });
    promtool_check_metrics(&body);
    let m = parse(&body);
    assert_eq!(
        value(
            &m,
            "chain_x_mempool_transactions",
            &[("pool", "main"), ("chain", "mychain")]
        ),
        Some(412.0)
    );
    assert_eq!(
        value(
            &m,
            "chain_x_mempool_evictions_total",
            &[("reason", "expiry")]
        ),
        Some(7.0)
    );
    assert!(
        body.lines()
            .any(|l| l == "# TYPE chain_x_mempool_evictions_total counter"),
        "{body}"
    );
    let (code, _) = s.terminate();
    assert_eq!(code, 0);

    // A mapping may name only what is declared, with the declared labels and type.
    for (from, to, field, want) in [
        (
            "gauge: chain_x_mempool_transactions",
            "gauge: chain_x_mempool_transaction",
            "apis.mempool.metrics[0].gauge",
            "unknown metric `chain_x_mempool_transaction`: not declared under `metrics:` of a loaded profile; did you mean `chain_x_mempool_transactions`?",
        ),
        (
            "labels: {pool: main}",
            "labels: {queue: main}",
            "apis.mempool.metrics[0].labels.queue",
            "label `queue` is not allowed on `chain_x_mempool_transactions` (allowed: pool)",
        ),
        (
            "counter: chain_x_mempool_evictions_total",
            "gauge: chain_x_mempool_evictions_total",
            "apis.mempool.metrics[1].metrics[0].gauge",
            "`chain_x_mempool_evictions_total` is a counter, it cannot be mapped with `gauge:`",
        ),
    ] {
        let bad = MEMPOOL_API.replace(from, to);
        write(&profile, &bad);
        let line = 1 + bad.lines().position(|l| l.contains(to)).unwrap();
        let out = replay(&["--profile", profile.to_str().unwrap(), "/dev/null"]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{}:{line}:", profile.display()))
                && err.contains(&format!("{field}: {want}")),
            "no `{field}: {want}` at line {line} in:\n{err}"
        );
    }
}
