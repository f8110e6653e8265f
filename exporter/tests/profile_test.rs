//! `chainwatch-exporter test`, the `promtool test rules` of profiles: every built-in profile's own
//! cases pass through the real binary (this is how CI runs them), a failing case exits 1 with its
//! diff, test files beside a profile work like a profile's `tests:`, and `replay --unmatched`
//! shows what a profile misses.

mod common;
use common::*;

use std::process::{Command, Output};

fn test_cmd(args: &[&str]) -> Output {
    Command::new(bin()).arg("test").args(args).output().unwrap()
}

#[test]
fn every_builtin_profile_passes_its_own_tests() {
    let names: Vec<&str> = chainwatch_exporter::profile::BUILTINS
        .iter()
        .map(|b| b.name)
        .collect();
    let out = test_cmd(&names);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for n in &names {
        // Every built-in carries cases: "no test cases" is a failure, so SUCCESS means some ran.
        assert!(
            text.contains(&format!("Unit Testing: {n}\n  SUCCESS (")),
            "{n}:\n{text}"
        );
    }
}

const MINE: &str = "\
version: 1
name: mine
rules:
  - name: tip
    regex: 'new tip (?P<h>\\d+)'
    actions:
      - gauge: chain_block_height
        value: h
      - counter: chain_blocks_received_total
tests:
  - name: two tips
    lines: ['new tip 41', 'noise', 'new tip 42']
    expect:
      chain_block_height: 42
      chain_blocks_received_total: 3
    matched: {tip: 1}
  - name: noise matches nothing
    lines: ['noise']
    expect: {}
    matched: {}
";

#[test]
fn a_failing_case_exits_1_with_its_diff() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("mine.yaml");
    write(&p, MINE);
    let out = test_cmd(&[p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let want = format!(
        "Unit Testing: {p}
  FAILED:
    {p}:11: tests[0] \"two tips\":
      series (- expected, + got):
        chain_block_height 42
      - chain_blocks_received_total 3
      + chain_blocks_received_total 2
      rules matched (lines) (- expected, + got):
      - mine/tip 1
      + mine/tip 2
",
        p = p.display()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    // Fixed, it passes.
    write(
        &p,
        &MINE
            .replace(
                "chain_blocks_received_total: 3",
                "chain_blocks_received_total: 2",
            )
            .replace("matched: {tip: 1}", "matched: {tip: 2}"),
    );
    let out = test_cmd(&[p.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("Unit Testing: {}\n  SUCCESS (2 test cases)\n", p.display())
    );
}

#[test]
fn a_line_that_must_match_nothing_fails_when_a_rule_takes_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("mine.yaml");
    write(
        &p,
        &MINE.replace("lines: ['noise']", "lines: ['new tip 7']"),
    );
    let out = test_cmd(&[p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("tests[1] \"noise matches nothing\":\n      series (- expected, + got):\n      + chain_block_height 7\n      + chain_blocks_received_total 1\n      rules matched (lines) (- expected, + got):\n      + mine/tip 1\n"), "{text}");
}

/// Cases beside the profiles they test: paths relative to the test file, profiles merged as a
/// configuration merges them, constant labels as in `labels:`.
#[test]
fn a_test_file_beside_its_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("profiles");
    std::fs::create_dir(&sub).unwrap();
    write(
        &sub.join("mine.yaml"),
        &MINE[..MINE.find("tests:").unwrap()],
    );
    let t = sub.join("mine_test.yaml");
    write(
        &t,
        "profiles: [mine.yaml, pop-validator]\nlabels: {chain: mine}\ntests:\n  - lines: ['new tip 5', 'WARNING Round 14 timed out after 10s']\n    expect:\n      chain_block_height: 5\n      chain_blocks_received_total: 1\n      chain_pop_round_failures_total: 1\n    matched: {tip: 1, pop-validator/round_failed: 1}\n",
    );
    // Run from elsewhere: the paths are the test file's.
    let out = Command::new(bin())
        .current_dir("/")
        .args(["test", t.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A broken test file is invalid input: exit 2, with where.
    write(
        &t,
        "profiles: [mine.yaml]\ntests:\n  - lines: ['x']\n    expect: {'chain_peers{x=1}': 1}\n",
    );
    let out = test_cmd(&[t.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:4:", t.display())) && err.contains("is not a series"),
        "{err}"
    );
    let out = test_cmd(&[dir.path().join("none.yaml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[test]
fn replay_lists_the_most_frequent_lines_no_rule_matched() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("node.log");
    let mut text = String::new();
    for i in 0..5 {
        text.push_str(&format!(
            "2025-11-08 23:20:0{i} [INFO] BLOCK FOUND! height={i} hash=0000a1b{i}\n"
        ));
        text.push_str(&format!(
            "2025-11-08 23:20:0{i} [INFO] RPC getblockcount from 127.0.0.{i}\n"
        ));
    }
    for i in 0..3 {
        text.push_str(&format!(
            "2025-11-08 23:21:0{i} [INFO] Loaded wallet with {i} keys\n"
        ));
    }
    write(&log, &text);
    let out = replay(&[
        "--profile",
        "dilithion",
        "--unmatched",
        "--top",
        "1",
        log.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "# 8 of 13 lines (61.5%) matched no rule, in 2 shapes; the most frequent:
        5  <n>-<n>-<n> <n>:<n>:<n> [INFO] RPC getblockcount from <n>.<n>.<n>.<n>
           e.g. 2025-11-08 23:20:00 [INFO] RPC getblockcount from 127.0.0.0
"
    );
}

/// The README's example profile, with the test cases it shows, passes; and the failing run it
/// shows is what the binary prints.
#[test]
fn the_readme_example_profile_passes_its_tests() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let block = |start: &str| -> String {
        let i = readme
            .find(start)
            .unwrap_or_else(|| panic!("README has no `{start}`"));
        let body = &readme[i..];
        body[..body.find("\n```").unwrap() + 1].to_string()
    };
    let profile = block("version: 1\nname: mynode\n")
        + &block("tests:                                 # of the profile");
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("mynode.yaml"), &profile);
    let run = || {
        Command::new(bin())
            .current_dir(dir.path())
            .args(["test", "mynode.yaml"])
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    write(
        &dir.path().join("mynode.yaml"),
        &profile.replace(
            "      chain_blocks_received_total: 2",
            "      chain_blocks_received_total: 3",
        ),
    );
    let out = run();
    assert_eq!(out.status.code(), Some(1));
    let shown = block("Unit Testing: mynode.yaml\n  FAILED:");
    assert_eq!(String::from_utf8_lossy(&out.stdout), shown);
}
