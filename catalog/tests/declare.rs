//! Metrics declared outside the compiled table: the declaration format, its checks (the catalog's
//! own naming and type rules), and the catalog it extends — what the sidecar and rulegen both read.

use std::path::Path;

use chainwatch_catalog::{declare, Catalog, Kind, Unit};

const GOOD: &str = "\
version: 1
name: mynode           # a profile: keys other than `metrics` are not the catalog's business
rules: []
metrics:
  - name: chain_x_mempool_evictions_total
    type: counter
    help: Transactions evicted from the mempool.
    labels: [reason]
  - name: chain_x_rpc_latency_seconds
    type: histogram
    unit: seconds
    buckets: [0.01, 0.1, 1, 10]
    help: Latency of the node's RPC answers.
  - name: chain_x_sync_phase
    type: state
    state_label: phase
    states: [headers, blocks, done]
    help: Sync phase; the series of the current phase is 1.
  - name: chain_x_orphan_rate_ratio
    type: gauge
    unit: ratio
    help: Share of orphaned blocks, 0 to 1.
";

#[test]
fn a_declaration_extends_the_catalog() {
    let c = declare::from_str(Path::new("mynode.yaml"), GOOD).unwrap();
    let m = c.lookup("chain_x_mempool_evictions_total").unwrap();
    assert_eq!(m.kind, Kind::Counter);
    assert_eq!(m.labels, &["reason"]);
    assert!(m.is_node_metric());
    let h = c
        .resolve_series("chain_x_rpc_latency_seconds_bucket")
        .unwrap();
    assert_eq!(
        h.kind,
        Kind::Histogram {
            buckets: &[0.01, 0.1, 1.0, 10.0]
        }
    );
    assert_eq!(h.unit, Unit::Seconds);
    let s = c.lookup("chain_x_sync_phase").unwrap();
    assert_eq!(
        s.kind,
        Kind::State {
            label: "phase",
            states: &["headers", "blocks", "done"]
        }
    );
    assert_eq!(s.all_labels().last(), Some(&"phase"));
    // The compiled table is still there, and nothing else is.
    assert!(c.lookup("chain_block_height").is_some());
    assert!(c.lookup("chain_x_nothing").is_none());
    assert_eq!(c.declared().count(), 4);
    assert_eq!(c.declared_at("chain_x_sync_phase"), Some("mynode.yaml:14"));
    // `catalog` documents them in a section of their own, with where they were declared.
    let md = c.to_markdown();
    assert!(md.contains("## Declared by the loaded profiles"), "{md}");
    assert!(md.contains(
        "| `chain_x_rpc_latency_seconds` | histogram (buckets 0.01, 0.1, 1, 10), unit seconds |  | Latency of the node's RPC answers. | mynode.yaml:9 |"
    ), "{md}");
    assert!(!chainwatch_catalog::to_markdown().contains("chain_x_mempool"));
}

#[test]
fn a_histogram_without_buckets_gets_prometheus_defaults() {
    let c = declare::from_str(
        Path::new("x.yaml"),
        "metrics:\n  - {name: chain_x_wait_seconds, type: histogram, unit: seconds, help: Wait.}\n",
    )
    .unwrap();
    let Kind::Histogram { buckets } = c.lookup("chain_x_wait_seconds").unwrap().kind else {
        panic!()
    };
    assert_eq!(buckets, declare::DEFAULT_BUCKETS);
}

/// Every mistake at once, each at its own line and field: the rules the built-in table is held to.
#[test]
fn every_rule_of_the_catalog_applies_and_all_errors_come_at_once() {
    let text = "\
metrics:
  - name: mempool_evictions_total
    type: counter
    help: No prefix.
  - name: chain_x_evictions
    type: counter
    help: A counter without _total.
  - name: chain_x_peers_total
    type: gauge
    help: A gauge with _total.
  - name: chain_x_wait_ms
    type: gauge
    help: Not a base unit.
  - name: chain_x_wait
    type: gauge
    unit: seconds
    help: Unit but no suffix.
  - name: chain_x_lag_seconds
    type: gauge
    help: Suffix but no unit.
  - name: chain_x_up
    type: gauge
    help: no final stop
  - name: chain_x_reorgs_total
    type: counter
    labels: [node, Depth, depth, depth]
    help: Bad labels.
  - name: chain_x_height
    type: gauge
    buckets: [1, 2]
    help: Buckets on a gauge.
  - name: chain_x_size_bytes
    type: histogram
    unit: bytes
    buckets: [10, 5]
    help: Buckets that go down.
  - name: chain_x_phase
    type: state
    states: []
    help: No states.
  - name: chain_x_mood
    type: feeling
    help: Unknown type.
";
    let errs = declare::from_str(Path::new("ext.yaml"), text).unwrap_err();
    // A type the format does not know is a syntax-level error: reported alone, at its line.
    assert_eq!(errs.len(), 1);
    assert_eq!(
        (errs[0].line, errs[0].field.as_str()),
        (42, "metrics[11].type"),
        "{}",
        errs[0]
    );
    assert!(
        errs[0].message.contains("unknown variant `feeling`"),
        "{}",
        errs[0]
    );

    let text = text.replace("type: feeling", "type: gauge");
    let errs = declare::from_str(Path::new("ext.yaml"), &text).unwrap_err();
    let got: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    let want = [
        ("ext.yaml:2:", "metrics[0].name", "starts with `chain_x_`"),
        (
            "ext.yaml:5:",
            "metrics[1].name",
            "is a counter: its name ends in `_total`",
        ),
        (
            "ext.yaml:8:",
            "metrics[2].name",
            "only counters end in `_total`",
        ),
        ("ext.yaml:11:", "metrics[3].name", "non-base unit (`ms`)"),
        (
            "ext.yaml:14:",
            "metrics[4].name",
            "has unit seconds: the name ends in `_seconds`",
        ),
        ("ext.yaml:18:", "metrics[5].unit", "declare `unit: seconds`"),
        ("ext.yaml:23:", "metrics[6].help", "ending in `.`"),
        (
            "ext.yaml:26:",
            "metrics[7].labels[0]",
            "`node` is a constant label",
        ),
        (
            "ext.yaml:26:",
            "metrics[7].labels[1]",
            "label `Depth` is not snake_case",
        ),
        (
            "ext.yaml:26:",
            "metrics[7].labels[3]",
            "label `depth` is listed twice",
        ),
        (
            "ext.yaml:30:",
            "metrics[8].buckets",
            "`buckets` belongs to histogram metrics",
        ),
        (
            "ext.yaml:35:",
            "metrics[9].buckets",
            "must increase strictly",
        ),
        ("ext.yaml:39:", "metrics[10].states", "at least one state"),
    ];
    for (at, field, msg) in want {
        assert!(
            got.iter().any(|e| e.starts_with(at)
                && e.contains(&format!(" {field}: "))
                && e.contains(msg)),
            "no `{at} {field}: …{msg}…` among:\n{}",
            got.join("\n")
        );
    }
    assert_eq!(got.len(), want.len(), "{}", got.join("\n"));
}

#[test]
fn the_same_metric_declared_twice_must_be_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    let c = dir.path().join("c.yaml");
    let decl = "metrics:\n  - {name: chain_x_forks_total, type: counter, help: Forks seen.}\n";
    std::fs::write(&a, decl).unwrap();
    std::fs::write(&b, format!("version: 1\n{decl}")).unwrap();
    std::fs::write(
        &c,
        "metrics:\n  - {name: chain_x_forks_total, type: counter, help: Other forks.}\n",
    )
    .unwrap();
    // Identical declarations (two profiles sharing one extension) are one metric.
    let cat = declare::load_files(&[&a, &b]).unwrap();
    assert_eq!(cat.declared().count(), 1);
    // A different one is refused, naming where the first one is.
    let errs = declare::load_files(&[&a, &c]).unwrap_err();
    assert_eq!(errs.len(), 1);
    let e = errs[0].to_string();
    assert!(e.starts_with(&format!("{}:2:", c.display())), "{e}");
    assert!(
        e.contains(&format!(
            "already declared differently at {}:2",
            a.display()
        )),
        "{e}"
    );
    // A file that is not there is an error too, with the others'.
    let errs = declare::load_files(&[&c, &dir.path().join("none.yaml"), &a]).unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].message.contains("cannot read"), "{errs:?}");
}

#[test]
fn a_builtin_name_cannot_be_declared() {
    let mut c = Catalog::builtin();
    let (doc, pos): (serde_norway::Value, _) = chainwatch_yaml::from_str(
        Path::new("x.yaml"),
        "metrics:\n  - {name: chain_block_height, type: gauge, help: Height.}\n",
    )
    .unwrap();
    let decls: Vec<chainwatch_catalog::MetricDecl> =
        serde_norway::from_value(doc["metrics"].clone()).unwrap();
    let errs = c.declare(&decls, &pos, "metrics").unwrap_err();
    assert!(
        errs[0].message.contains("starts with `chain_x_`"),
        "{errs:?}"
    );
    assert_eq!(c.declared().count(), 0);
}
