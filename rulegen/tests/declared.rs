//! Metrics declared outside the catalog (`chain_x_*`), in thresholds.yaml: by a profile and a
//! catalog extension file listed under `catalogs:`, and by the file's own `metrics:`. Alerts,
//! recording rules and panels on them render and pass the real promtool, their generated tests
//! feed each metric as its declared type needs, and every misuse is refused at its
//! `file:line:col` and field.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_chainwatch-rulegen");

fn declared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/declared")
}

fn shown(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn render(thresholds: &Path, out: &Path) -> Output {
    Command::new(BIN)
        .arg("--thresholds")
        .arg(thresholds)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run chainwatch-rulegen")
}

fn yml_under(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(yml_under(&p));
        } else if p.extension().is_some_and(|x| x == "yml") {
            v.push(p);
        }
    }
    v.sort();
    v
}

fn promtool(args: &[&str], files: &[PathBuf]) {
    let o = Command::new("promtool")
        .args(args)
        .args(files)
        .output()
        .expect("promtool: install Debian's `prometheus` package (scripts/test.sh does)");
    assert!(o.status.success(), "promtool {args:?}:\n{}", shown(&o));
}

#[test]
fn declared_metrics_render_rules_tests_and_panels_that_promtool_passes() {
    let out = tempfile::tempdir().unwrap();
    let o = render(&declared().join("thresholds.yaml"), out.path());
    assert!(o.status.success(), "{}", shown(&o));
    let root = out.path();
    let rules = yml_under(&root.join("prometheus/rules"));
    let tests = yml_under(&root.join("prometheus/tests"));
    assert_eq!(rules.len(), 2);
    assert_eq!(tests.len(), 7, "{tests:?}");
    promtool(&["check", "rules"], &rules);
    promtool(&["test", "rules"], &tests);

    // Each metric is fed as its declared type needs: the counter only grows, the histogram has
    // the declared buckets, the state metric is 0 or 1.
    let read = |p: &str| fs::read_to_string(root.join(p)).unwrap();
    let values_of = |file: &str, series: &str| -> Vec<String> {
        let doc: serde_norway::Value = serde_norway::from_str(&read(file)).unwrap();
        let mut v = Vec::new();
        for t in doc["tests"].as_sequence().unwrap() {
            for s in t["input_series"].as_sequence().unwrap() {
                if s["series"].as_str().unwrap().starts_with(series) {
                    v.push(s["values"].as_str().unwrap().to_string());
                }
            }
        }
        assert!(!v.is_empty(), "no {series} in {file}");
        v
    };
    for v in values_of(
        "prometheus/tests/alerts/MempoolEvictions.test.yml",
        "chain_x_mempool_evictions_total{",
    ) {
        assert!(!v.contains('-'), "a counter that decreases: {v}");
    }
    let hist = read("prometheus/tests/alerts/SlowRpc.test.yml");
    for le in ["0.01", "0.1", "0.5", "1", "5", "+Inf"] {
        assert!(
            hist.contains(&format!(
                r#"chain_x_rpc_latency_seconds_bucket{{chain=\"testchain\", le=\"{le}\""#
            )),
            "no bucket le={le} in:\n{hist}"
        );
    }
    for v in values_of(
        "prometheus/tests/alerts/NotSynced.test.yml",
        "chain_x_sync_phase{",
    ) {
        for x in v.split_whitespace() {
            let base = x.split(['x', '+']).next().unwrap();
            assert!(base == "0" || base == "1", "a state series at {x}: {v}");
        }
    }

    // The dashboard filters declared metrics by their labels like catalog ones, and the state
    // panel maps the declared states.
    let dash = read("grafana/dashboards/mempool.json");
    assert!(
        dash.contains(r#"chain_x_mempool_transactions{chain=~\"$chain\""#),
        "{dash}"
    );
    for state in ["headers", "blocks", "done"] {
        assert!(dash.contains(&format!("\"{state}\"")), "no state {state}");
    }
}

/// A copy of the testdata directory with thresholds.yaml edited by `edit`, rendered.
fn render_edited(
    edit: impl FnOnce(&Path, String) -> String,
) -> (Output, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for f in ["thresholds.yaml", "mempool.yaml", "extension.yaml"] {
        fs::copy(declared().join(f), dir.path().join(f)).unwrap();
    }
    let t = dir.path().join("thresholds.yaml");
    let text = edit(dir.path(), fs::read_to_string(&t).unwrap());
    fs::write(&t, &text).unwrap();
    let out = dir.path().join("out");
    let o = render(&t, &out);
    assert!(!out.exists(), "something was written:\n{}", text);
    (o, t, dir)
}

fn line_of(text: &str, needle: &str) -> usize {
    1 + text
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no `{needle}`"))
}

/// Refused with exit 2 and, among the errors, `FILE:LINE:` then `field: message`.
fn assert_refused(o: &Output, file: &Path, line: usize, field_message: &str) {
    assert_eq!(o.status.code(), Some(2), "{}", shown(o));
    let err = String::from_utf8_lossy(&o.stderr);
    let at = format!("error: {}:{line}:", file.display());
    assert!(
        err.lines()
            .any(|l| l.starts_with(&at) && l.ends_with(field_message)),
        "no `{at}…: {field_message}` in:\n{err}"
    );
}

#[test]
fn undeclared_metrics_are_refused_with_the_nearest_declared_name() {
    let undeclared = "not declared under `metrics:` or in a file of `catalogs:`";
    // An alert, a recording rule and a panel, each with a misspelt declared metric.
    let cases = [
        (
            "metric: 'chain_x_mempool_evictions_total{reason=\"sizelimit\"}'",
            "metric: 'chain_x_mempool_eviction_total{reason=\"sizelimit\"}'",
            format!("alerts[0].value.metric: unknown metric `chain_x_mempool_eviction_total`: {undeclared}; did you mean `chain_x_mempool_evictions_total`?"),
        ),
        (
            "value: {metric: chain_x_mempool_evictions_total, function: rate",
            "value: {metric: chain_x_mempool_evicted_total, function: rate",
            format!("recording_rules[0].value.metric: unknown metric `chain_x_mempool_evicted_total`: {undeclared}; did you mean `chain_x_mempool_evictions_total`?"),
        ),
        (
            "queries: [{expr: chain_x_mempool_transactions}]",
            "queries: [{expr: chain_x_mempool_transaction}]",
            format!("dashboards[0].panels[0].queries[0].expr: unknown metric `chain_x_mempool_transaction`: {undeclared}; did you mean `chain_x_mempool_transactions`?"),
        ),
        (
            "quantile: {histogram: chain_x_rpc_latency_seconds,",
            "quantile: {histogram: chain_x_rpc_latency_second,",
            format!("alerts[3].quantile.histogram: unknown metric `chain_x_rpc_latency_second`: {undeclared}; did you mean `chain_x_rpc_latency_seconds`?"),
        ),
    ];
    for (from, to, want) in cases {
        let (o, t, _dir) = render_edited(|_, s| s.replace(from, to));
        let text = fs::read_to_string(&t).unwrap();
        assert_refused(&o, &t, line_of(&text, to), &want);
    }

    // Without the profile under `catalogs:`, its metrics are unknown here.
    let (o, t, _dir) = render_edited(|_, s| {
        s.replace(
            "catalogs: [mempool.yaml, extension.yaml]",
            "catalogs: [extension.yaml]",
        )
    });
    let text = fs::read_to_string(&t).unwrap();
    assert_refused(
        &o,
        &t,
        line_of(&text, "chain_x_rpc_latency_seconds,"),
        &format!("alerts[3].quantile.histogram: unknown metric `chain_x_rpc_latency_seconds`: {undeclared}"),
    );
}

#[test]
fn declared_labels_states_and_types_hold_in_selectors() {
    for (from, to, field, want) in [
        (
            "{reason=\"sizelimit\"}'",
            "{cause=\"sizelimit\"}'",
            "alerts[0].value.metric",
            "`chain_x_mempool_evictions_total` has no label `cause` (its labels: chain, instance, job, network, node, reason, region)",
        ),
        (
            "{phase=\"done\"}'",
            "{phase=\"finished\"}'",
            "alerts[4].value.metric",
            "`chain_x_sync_phase` has no phase `finished` (states: headers, blocks, done)",
        ),
        (
            "quantile: {histogram: chain_x_rpc_latency_seconds,",
            "quantile: {histogram: chain_x_mempool_transactions,",
            "alerts[3].quantile.histogram",
            "`chain_x_mempool_transactions` is not a histogram of the catalog",
        ),
    ] {
        let (o, t, _dir) = render_edited(|_, s| s.replace(from, to));
        let text = fs::read_to_string(&t).unwrap();
        assert_refused(&o, &t, line_of(&text, to), &format!("{field}: {want}"));
    }
}

#[test]
fn bad_declarations_are_refused_where_they_are_written() {
    // In thresholds.yaml's own `metrics:`: the catalog's naming rules.
    let (o, t, _dir) = render_edited(|_, s| {
        s.replace(
            "name: chain_x_orphan_blocks_total",
            "name: chain_x_orphan_blocks",
        )
    });
    let text = fs::read_to_string(&t).unwrap();
    assert_refused(
        &o,
        &t,
        line_of(&text, "name: chain_x_orphan_blocks"),
        "metrics[0].name: `chain_x_orphan_blocks` is a counter: its name ends in `_total`",
    );

    // In a file of `catalogs:`: the error points into that file.
    let (o, _t, dir) = render_edited(|dir, s| {
        let p = dir.join("mempool.yaml");
        let profile = fs::read_to_string(&p).unwrap();
        fs::write(
            &p,
            profile.replace("state_label: phase", "state_label: Phase"),
        )
        .unwrap();
        s
    });
    let profile = dir.path().join("mempool.yaml");
    let ptext = fs::read_to_string(&profile).unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", shown(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let at = format!(
        "{}:{}:",
        profile.display(),
        line_of(&ptext, "state_label: Phase")
    );
    assert!(
        err.contains(&at) && err.contains("metrics[2].state_label"),
        "no `{at}` metrics[2].state_label in:\n{err}"
    );

    // A file of `catalogs:` that is not there: the full path tried.
    let (o, t, dir) = render_edited(|_, s| {
        s.replace(
            "catalogs: [mempool.yaml, extension.yaml]",
            "catalogs: [mempool.yaml, no-such.yaml]",
        )
    });
    let text = fs::read_to_string(&t).unwrap();
    let tried = dir.path().canonicalize().unwrap().join("no-such.yaml");
    assert_refused(
        &o,
        &t,
        line_of(&text, "catalogs: ["),
        &format!(
            "catalogs[1]: cannot read {}: No such file or directory (os error 2)",
            tried.display()
        ),
    );

    // One metric declared twice, differently: both places.
    let (o, t, dir) = render_edited(|_, s| {
        s.replace(
            "metrics:\n  - name: chain_x_orphan_blocks_total",
            "metrics:\n  - name: chain_x_mempool_transactions\n    type: gauge\n    help: Transactions in the mempool.\n  - name: chain_x_orphan_blocks_total",
        )
    });
    let text = fs::read_to_string(&t).unwrap();
    let ext = dir.path().join("extension.yaml");
    assert_refused(
        &o,
        &t,
        line_of(&text, "- name: chain_x_mempool_transactions"),
        &format!(
            "metrics[0].name: `chain_x_mempool_transactions` is already declared differently at {}:4; declare a metric once (or identically)",
            ext.display()
        ),
    );
}
