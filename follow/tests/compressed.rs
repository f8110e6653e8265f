//! Compressed files a glob matches (logrotate's `compress`) are skipped by
//! their magic bytes, whatever their name, and reported once each.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip (part of every Debian system)");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

fn skipped(rec: &Recorder) -> Vec<(PathBuf, &'static str)> {
    rec.events
        .iter()
        .filter_map(|e| match e {
            Ev::SkippedCompressed(p, f) => Some((p.clone(), *f)),
            _ => None,
        })
        .collect()
}

/// Writes a sentinel line to `log` and waits for it: the pass that read it
/// began with a scan that saw everything created before.
fn sync(run: &Running, log: &Path, n: u64) {
    append(log, &line(n));
    run.wait_lines(&[n]);
}

fn compressed_files_are_skipped(inotify: bool) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("app.log");
    let text = lines(1000..1100);
    // Present at start: skipped too, not positioned at its end.
    fs::write(d.join("app.log.3.gz"), gzip(text.as_bytes())).unwrap();
    let run = Running::start(config(vec![pat(d, "app.log*")], inotify));
    sync(&run, &log, 0);

    // Real gzip output under a rotated name, and under a name that says
    // nothing (only the magic tells); hand-written headers of the other
    // formats (their specs' magic numbers); a plain file named .gz is text.
    fs::write(d.join("app.log.2.gz"), gzip(text.as_bytes())).unwrap();
    fs::write(d.join("app.log.old"), gzip(text.as_bytes())).unwrap();
    let mut xz = b"\xfd7zXZ\x00\x00\x04\xe6\xd6\xb4\x46\n".to_vec();
    xz.extend_from_slice(text.as_bytes());
    fs::write(d.join("app.log.4.xz"), &xz).unwrap();
    let mut zst = b"\x28\xb5\x2f\xfd\x24\x00\n".to_vec();
    zst.extend_from_slice(text.as_bytes());
    fs::write(d.join("app.log.5.zst"), &zst).unwrap();
    let mut bz = b"BZh91AY&SY\n".to_vec();
    bz.extend_from_slice(text.as_bytes());
    fs::write(d.join("app.log.6.bz2"), &bz).unwrap();
    fs::write(d.join("app.log.7.gz"), lines(10..20)).unwrap();
    run.wait_lines(&range(10..20));
    sync(&run, &log, 1);

    // A gzip file seen while only its first two bytes are written is not
    // read as text once it is complete, and is reported once.
    let slow = d.join("app.log.8.gz");
    let gz = gzip(text.as_bytes());
    append_bytes(&slow, &gz[..2]);
    sync(&run, &log, 2);
    append_bytes(&slow, &gz[2..]);
    sync(&run, &log, 3);

    // Renamed (rotate N shifting names): the same file, not reported again.
    fs::rename(d.join("app.log.2.gz"), d.join("app.log.9.gz")).unwrap();
    sync(&run, &log, 4);

    let rec = run.stop();
    rec.assert_exact(&[range(0..5), range(10..20)].concat());
    let mut got = skipped(&rec);
    got.sort();
    let want: Vec<(PathBuf, &str)> = [
        ("app.log.2.gz", "gzip"),
        ("app.log.3.gz", "gzip"),
        ("app.log.4.xz", "xz"),
        ("app.log.5.zst", "zstd"),
        ("app.log.6.bz2", "bzip2"),
        ("app.log.8.gz", "gzip"),
        ("app.log.old", "gzip"),
    ]
    .iter()
    .map(|(n, f)| (d.join(n), *f))
    .collect();
    assert_eq!(got, want, "{:?}", rec.events);
}

/// After a restart, compressed files (old and new) are still skipped, not
/// taken for files that appeared while down.
fn compressed_files_are_skipped_after_restart(inotify: bool) {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("app.log");
    let mut cfg = config(vec![pat(d, "app.log*")], inotify);
    cfg.state_dir = Some(state.path().to_path_buf());
    fs::write(d.join("app.log.1.gz"), gzip(lines(1000..1100).as_bytes())).unwrap();
    let first = Running::start(cfg.clone());
    sync(&first, &log, 0);
    let rec1 = first.stop();
    fs::write(d.join("app.log.2.gz"), gzip(lines(2000..2100).as_bytes())).unwrap();
    append(&log, &lines(1..10));
    let second = Running::start(cfg);
    second.wait_lines(&range(1..10));
    let mut rec = second.stop();
    let got = skipped(&rec).len();
    assert_eq!(got, 2, "{:?}", rec.events);
    rec.merge(&rec1);
    rec.assert_exact(&range(0..10));
}

both_modes!(
    compressed_files_are_skipped,
    compressed_files_are_skipped_after_restart,
);
