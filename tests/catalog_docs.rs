//! docs/metrics.md is generated from the catalog; it must never drift from it.

#[test]
fn docs_metrics_md_is_fresh() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md");
    let committed = std::fs::read_to_string(path).expect("docs/metrics.md exists");
    let fresh = chainwatch_catalog::to_markdown();
    assert!(
        committed == fresh,
        "docs/metrics.md is stale: run `cargo run -p chainwatch-exporter -- catalog > docs/metrics.md`"
    );
}

#[test]
fn every_catalog_metric_is_documented() {
    let doc = chainwatch_catalog::to_markdown();
    for m in chainwatch_catalog::CATALOG {
        assert!(
            doc.contains(&format!("| `{}` |", m.name)),
            "{} missing",
            m.name
        );
    }
}
