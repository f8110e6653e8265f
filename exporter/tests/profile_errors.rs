//! A user's profile file: every mistake is refused at load with file, line and a clear message,
//! and exit code 2.

mod common;
use common::*;

/// Write `body` as a profile, replay with it, and return (exit code, stderr).
fn load(body: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.yaml");
    write(&path, body);
    let log = dir.path().join("x.log");
    write(&log, "hello\n");
    let out = replay(&["--profile", path.to_str().unwrap(), log.to_str().unwrap()]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        path.display().to_string(),
    )
}

const HEAD: &str = "version: 1\nname: mine\nrules:\n  - name: r\n";

fn assert_error(body: &str, line: usize, field: &str, message: &str) {
    let (code, err, path) = load(body);
    assert_eq!(code, 2, "{err}");
    let want = format!("{path}:{line}:");
    assert!(err.contains(&want), "expected {want} in: {err}");
    assert!(err.contains(field), "expected field {field} in: {err}");
    assert!(err.contains(message), "expected `{message}` in: {err}");
}

#[test]
fn unknown_metric() {
    assert_error(
        &format!("{HEAD}    regex: 'x'\n    actions:\n      - counter: chain_blocks_mind_total\n"),
        7,
        "rules[0].actions[0].counter",
        "unknown metric `chain_blocks_mind_total`: not in the catalog (`chainwatch-exporter catalog` lists them); did you mean `chain_blocks_mined_total`?",
    );
}

#[test]
fn op_that_does_not_fit_the_metric_type() {
    assert_error(
        &format!(
            "{HEAD}    regex: 'h=(?P<h>\\d+)'\n    actions:\n      - counter: chain_block_height\n"
        ),
        7,
        "rules[0].actions[0].counter",
        "`chain_block_height` is a gauge, so the action must be `gauge:`",
    );
}

#[test]
fn label_the_catalog_does_not_allow() {
    assert_error(
        &format!("{HEAD}    regex: 'x'\n    actions:\n      - counter: chain_blocks_mined_total\n        labels: {{miner: bob}}\n"),
        8,
        "rules[0].actions[0].labels.miner",
        "label `miner` is not allowed on `chain_blocks_mined_total` (allowed: none)",
    );
}

#[test]
fn constant_label_in_a_rule() {
    assert_error(
        &format!("{HEAD}    regex: 'x'\n    actions:\n      - counter: chain_blocks_mined_total\n        labels: {{region: eu}}\n"),
        8,
        "labels.region",
        "is a constant label",
    );
}

#[test]
fn regex_that_does_not_compile() {
    assert_error(&format!("{HEAD}    regex: 'Block (unclosed'\n    actions:\n      - counter: chain_blocks_mined_total\n"), 5, "rules[0].regex", "regex does not compile");
}

#[test]
fn capture_that_is_not_defined() {
    assert_error(
        &format!("{HEAD}    regex: 'height=(?P<h>\\d+)'\n    actions:\n      - gauge: chain_block_height\n        value: height\n"),
        8,
        "rules[0].actions[0].value",
        "capture `height` is not defined by the rule's regex (defined: h)",
    );
}

#[test]
fn example_that_does_not_match() {
    assert_error(
        &format!("{HEAD}    regex: 'BLOCK FOUND'\n    examples: ['block found']\n    actions:\n      - counter: chain_blocks_mined_total\n"),
        6,
        "rules[0].examples[0]",
        "example does not match",
    );
}

#[test]
fn unknown_field_and_bad_yaml() {
    assert_error(
        &format!("{HEAD}    regexp: 'x'\n    actions: []\n"),
        5,
        "rules[0]",
        "unknown field `regexp`",
    );
    let (code, err, path) = load("name: [unclosed\n");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{path}:")), "{err}");
}

#[test]
fn unknown_builtin_name() {
    let out = replay(&["--profile", "etherium", "/dev/null"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no built-in profile `etherium`") && err.contains("dilithion"),
        "{err}"
    );
}

#[test]
fn a_valid_user_profile_works_like_a_builtin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.yaml");
    write(
        &path,
        "version: 1\nname: mine\nrules:\n  - name: tip\n    regex: 'new tip (?P<h>\\d+) after (?P<ms>\\d+)ms'\n    actions:\n      - gauge: chain_block_height\n        value: h\n      - histogram: chain_block_propagation_seconds\n        value: ms\n        unit: ms\n",
    );
    let log = dir.path().join("x.log");
    write(
        &log,
        "new tip 41 after 100ms\nnoise\nnew tip 42 after 3000ms\n",
    );
    let out = replay(&["--profile", path.to_str().unwrap(), log.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = parse(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(value(&s, "chain_block_height", &[]), Some(42.0));
    assert_eq!(
        value(&s, "chain_block_propagation_seconds_sum", &[]),
        Some(3.1)
    );
}

#[test]
fn not_example_that_matches() {
    assert_error(
        &format!("{HEAD}    regex: 'queued'\n    not_examples: ['peers=15 queued=3']\n    actions:\n      - counter: chain_blocks_mined_total\n"),
        6,
        "rules[0].not_examples[0]",
        "matches this line it must not match",
    );
}
