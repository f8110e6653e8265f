//! `chainwatch-gate check --output json` as the tests read it.

use std::process::Output;

use serde_json::Value;

/// The exit code and the JSON report of a finished `chainwatch-gate check --output json`; the
/// report's `exit_code` must be the process's.
pub fn report(out: &Output) -> (i32, Value) {
    let code = out
        .status
        .code()
        .expect("chainwatch-gate exited by a signal");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "chainwatch-gate printed no JSON ({e}), exit {code}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(
        report["exit_code"].as_i64(),
        Some(code as i64),
        "{report:#}"
    );
    (code, report)
}

/// The condition `name` of the report's first group.
pub fn condition<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["groups"][0]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no condition {name:?} in {report:#}"))
}
