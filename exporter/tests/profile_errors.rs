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

/// Every mistake of a file in one run, each with its own `file:line:col` and field — not one
/// error per attempt.
#[test]
fn all_errors_of_a_profile_at_once() {
    let body = "\
version: 1
name: mine
rules:
  - name: a
    regex: 'Block (unclosed'
    actions:
      - counter: chain_blocks_mined_total
  - name: b
    regex: 'h=(?P<h>\\d+)'
    examples: ['height 5']
    actions:
      - counter: chain_blocks_mind_total
      - gauge: chain_block_height
        value: height
  - name: c
    regex: 'x'
    unless: '(oops'
    actions:
      - counter: chain_blocks_mined_total
        labels: {miner: bob}
";
    let (code, err, path) = load(body);
    assert_eq!(code, 2, "{err}");
    let want = [
        (5, "rules[0].regex", "regex does not compile"),
        (10, "rules[1].examples[0]", "example does not match"),
        (
            12,
            "rules[1].actions[0].counter",
            "unknown metric `chain_blocks_mind_total`",
        ),
        (
            14,
            "rules[1].actions[1].value",
            "capture `height` is not defined",
        ),
        (17, "rules[2].unless", "regex does not compile"),
        (
            20,
            "rules[2].actions[0].labels.miner",
            "label `miner` is not allowed",
        ),
    ];
    for (line, field, msg) in want {
        let hit = err.lines().any(|l| {
            l.contains(&format!("{path}:{line}:"))
                && l.contains(&format!("{field}: "))
                && l.contains(msg)
        });
        assert!(hit, "no `{path}:{line}:…{field}: …{msg}` in:\n{err}");
    }
    assert_eq!(
        err.matches(&format!("{path}:")).count(),
        want.len(),
        "{err}"
    );
}

#[test]
fn past_a_sensible_number_the_rest_is_summed_up() {
    let mut body = String::from("version: 1\nname: mine\nrules:\n");
    for i in 0..40 {
        body.push_str(&format!(
            "  - name: r{i}\n    regex: 'x{i}'\n    actions:\n      - counter: chain_nope_total\n"
        ));
    }
    let (code, err, _) = load(&body);
    assert_eq!(code, 2);
    assert_eq!(
        err.matches("unknown metric `chain_nope_total`").count(),
        25,
        "{err}"
    );
    assert!(err.trim_end().ends_with("… and 15 more errors"), "{err}");
}

#[test]
fn combine_must_name_rules_that_write_the_metric() {
    let rules = "version: 1\nname: mine\nrules:\n  - name: tip\n    regex: 'tip (?P<h>\\d+)'\n    actions:\n      - gauge: chain_block_height\n        value: h\n  - name: found\n    regex: 'found'\n    actions:\n      - counter: chain_blocks_mined_total\ncombine:\n";
    let cases = [
        (
            "  chain_block_height: {prefer: [nope]}\n",
            14,
            "combine.chain_block_height.prefer[0]",
            "no rule `mine/nope` among the loaded profiles",
        ),
        (
            "  chain_block_height: {only: [found]}\n",
            14,
            "combine.chain_block_height.only[0]",
            "`mine/found` does not update `chain_block_height`",
        ),
        (
            "  chain_blocks_mined_total: {latest: true}\n",
            14,
            "combine.chain_blocks_mined_total.latest",
            "`latest` is for gauges and states",
        ),
        (
            "  chain_block_height: {prefer: [tip], latest: true}\n",
            14,
            "combine.chain_block_height",
            "give exactly one of `prefer: [rules]`, `only: [rules]` or `latest: true`",
        ),
        (
            "  chain_blocks_minde_total: {only: [found]}\n",
            14,
            "combine.chain_blocks_minde_total",
            "unknown metric",
        ),
    ];
    for (combine, line, field, msg) in cases {
        assert_error(&format!("{rules}{combine}"), line, field, msg);
    }
}

/// Two profiles that both say how one metric combines must say the same.
#[test]
fn two_profiles_combining_one_metric_differently_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    write(&a, "version: 1\nname: a\nrules:\n  - name: tip\n    regex: 'tip (?P<h>\\d+)'\n    actions:\n      - gauge: chain_block_height\n        value: h\ncombine:\n  chain_block_height: {latest: true}\n");
    write(&b, "version: 1\nname: b\nrules:\n  - name: best\n    regex: 'best (?P<h>\\d+)'\n    actions:\n      - gauge: chain_block_height\n        value: h\ncombine:\n  chain_block_height: {prefer: [best]}\n");
    let out = replay(&[
        "--profile",
        a.to_str().unwrap(),
        "--profile",
        b.to_str().unwrap(),
        "/dev/null",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:10:", b.display()))
            && err.contains(&format!(
                "how `chain_block_height` combines is already declared differently at {}:10",
                a.display()
            )),
        "{err}"
    );
}
