//! Issue 13's copytruncate reproduction through the real binary, live and across a restart with
//! --state.dir, and compressed rotated files skipped and counted. (The real logrotate drives the
//! follower in follow/tests/logrotate.rs.)

mod common;
use common::process::{poll_until, Sidecar};
use common::*;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A profile counting `seq=N` lines.
const PROFILE: &str = "version: 1\nname: seq\nrules:\n  - name: seq\n    regex: '^seq=\\d+ '\n    examples: ['seq=1 x']\n    actions:\n      - counter: chain_blocks_received_total\n";

fn config(dir: &Path) -> PathBuf {
    let profile = dir.join("seq.yaml");
    write(&profile, PROFILE);
    let p = dir.join("chainwatch.yaml");
    write(
        &p,
        &format!(
            "version: 1\nprofiles: [\"{}\"]\nsources:\n  - name: app\n    type: file\n    paths: [\"{}/app.log*\"]\n    poll_interval: 50ms\n    rotate_wait: 1s\n",
            profile.display(),
            dir.display()
        ),
    );
    p
}

fn append_seq(path: &Path, range: std::ops::Range<u32>) {
    let text: String = range.map(|n| format!("seq={n} payload\n")).collect();
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

fn truncate(path: &Path) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(0)
        .unwrap();
}

fn metric(s: &Sidecar, name: &str) -> f64 {
    value(&s.metrics(), name, &[("source", "app")]).unwrap_or(0.0)
}

fn counted(s: &Sidecar) -> f64 {
    value(&s.metrics(), "chain_blocks_received_total", &[]).unwrap_or(0.0)
}

/// Polls until the counter is `want` and `cond` holds; a value above `want` fails at once.
fn wait_count(s: &Sidecar, want: f64, what: &str, cond: impl Fn(&Sidecar) -> bool) {
    poll_until(what, || {
        let got = counted(s);
        assert!(
            got <= want,
            "{what}: counted {got} > {want}: lines counted twice"
        );
        (got == want && cond(s)).then_some(())
    });
}

/// app.log holds 100 lines, so the sidecar starts at its end. `cp app.log app.log.1`; 10 more
/// lines are counted; `truncate -s 0 app.log`; 10 more: exactly 20 (the old follower deferred the
/// copy, shorter than its offset, and read it from 0 once rotate_wait expired: 120).
#[test]
fn copy_shorter_than_the_offset_counts_20_not_120() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append_seq(&log, 0..100);
    let s = Sidecar::start(&config(dir.path()), &[]);
    s.wait_ready();
    fs::copy(&log, dir.path().join("app.log.1")).unwrap();
    append_seq(&log, 100..110);
    wait_count(&s, 10.0, "the lines after the copy", |_| true);
    truncate(&log);
    append_seq(&log, 110..120);
    wait_count(&s, 20.0, "the copy adopted", |s| {
        metric(s, "chainwatch_files_followed") == 2.0
    });
    // Read in a pass after the copy's adoption, so whatever the copy could add is in by then.
    append_seq(&log, 120..121);
    wait_count(&s, 21.0, "a line after the adoption", |_| true);
    assert_eq!(metric(&s, "chainwatch_file_truncations_total"), 1.0);
    let (code, _) = s.terminate();
    assert_eq!(code, 0);
}

/// The same with the sidecar stopped after the 10 lines following the copy and the truncation
/// done while it is down: the copy is resumed at its end, not taken for a new file.
#[test]
fn copy_shorter_than_the_checkpoint_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let state = dir.path().join("state");
    let state = state.to_str().unwrap();
    let cfg = config(dir.path());
    append_seq(&log, 0..100);
    let first = Sidecar::start(&cfg, &["--state.dir", state]);
    first.wait_ready();
    fs::copy(&log, dir.path().join("app.log.1")).unwrap();
    append_seq(&log, 100..110);
    wait_count(&first, 10.0, "the lines after the copy", |_| true);
    let (code, _) = first.terminate();
    assert_eq!(code, 0);

    truncate(&log);
    append_seq(&log, 110..120);
    let second = Sidecar::start(&cfg, &["--state.dir", state]);
    second.wait_ready();
    wait_count(&second, 10.0, "the truncated file's new lines", |s| {
        metric(s, "chainwatch_files_followed") == 2.0
    });
    append_seq(&log, 120..121);
    wait_count(&second, 11.0, "a line after the restart", |_| true);
    let (code, _) = second.terminate();
    assert_eq!(code, 0);
}

/// gzip'd rotations matched by `app.log*` (one there at start, one appearing later, one without a
/// telling name) are not read and are counted once each; a plain file named `.gz` is read.
#[test]
fn compressed_rotated_files_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("app.log");
    append_seq(&log, 0..100);
    let gz = |name: &str| {
        let out = std::process::Command::new("gzip")
            .args(["-k", "-c"])
            .arg(&log)
            .output()
            .expect("gzip");
        assert!(out.status.success());
        fs::write(d.join(name), out.stdout).unwrap();
    };
    gz("app.log.2.gz");
    let s = Sidecar::start(&config(d), &[]);
    s.wait_ready();
    gz("app.log.1.gz");
    gz("app.log.old");
    append_seq(&d.join("app.log.3.gz"), 1000..1005);
    wait_count(&s, 5.0, "the plain .gz file", |s| {
        metric(s, "chainwatch_file_skipped_compressed_total") == 3.0
    });
    append_seq(&log, 100..101);
    wait_count(&s, 6.0, "a line after the skips", |_| true);
    assert_eq!(metric(&s, "chainwatch_file_skipped_compressed_total"), 3.0);
    let (code, _) = s.terminate();
    assert_eq!(code, 0);
}
