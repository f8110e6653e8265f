//! `replay` over a log rotated by the real logrotate with `compress`: the `.gz` rotations are read
//! decompressed (told by their bytes, not their names), so the counts cover every line once; other
//! compressions are refused with a clear error rather than matched as text.

mod common;
use common::*;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::Command;

fn blocks(path: &Path, from: usize, n: usize) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for i in from..from + n {
        writeln!(
            f,
            "2025-11-08 23:20:01 [INFO] BLOCK FOUND! height={i} hash=0000a1b2"
        )
        .unwrap();
    }
}

fn logrotate(dir: &Path) {
    let out = Command::new("logrotate")
        .arg("-s")
        .arg(dir.join("logrotate.state"))
        .arg("-f")
        .arg(dir.join("logrotate.conf"))
        .output()
        .expect("logrotate not found: install Debian's `logrotate` (scripts/test.sh does)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mined(args: &[&str]) -> f64 {
    let out = replay(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    value(&parse(&text), "chain_blocks_mined_total", &[]).unwrap()
}

#[test]
fn rotations_compressed_by_logrotate_are_read_decompressed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("node.log");
    write(
        &d.join("logrotate.conf"),
        &format!(
            "{} {{\n  rotate 5\n  compress\n  missingok\n}}\n",
            log.display()
        ),
    );
    blocks(&log, 0, 300);
    logrotate(d);
    blocks(&log, 300, 200);
    logrotate(d);
    blocks(&log, 500, 7);
    let (two, one) = (d.join("node.log.2.gz"), d.join("node.log.1.gz"));
    assert!(
        two.exists() && one.exists(),
        "logrotate wrote no .gz rotations"
    );
    let all = mined(&[
        "--profile",
        "dilithion",
        two.to_str().unwrap(),
        one.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    assert_eq!(all, 507.0);
    // Gzip is told by its first bytes, whatever the name.
    let renamed = d.join("old-rotation");
    std::fs::copy(&one, &renamed).unwrap();
    assert_eq!(
        mined(&["--profile", "dilithion", renamed.to_str().unwrap()]),
        200.0
    );
    // Two gzip members in one file (what `cat a.gz b.gz` makes) are both read.
    let both = d.join("both.gz");
    let mut bytes = std::fs::read(&two).unwrap();
    bytes.extend(std::fs::read(&one).unwrap());
    std::fs::write(&both, bytes).unwrap();
    assert_eq!(
        mined(&["--profile", "dilithion", both.to_str().unwrap()]),
        500.0
    );
    // And `--unmatched` reads them the same way.
    let out = replay(&[
        "--profile",
        "dilithion",
        "--unmatched",
        two.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("# 0 of 300 lines"));
}

#[test]
fn other_compressions_and_broken_gzip_are_errors_not_text() {
    let dir = tempfile::tempdir().unwrap();
    let zst = dir.path().join("node.log.1.zst");
    std::fs::write(&zst, [0x28, 0xb5, 0x2f, 0xfd, 0x24, 0x00, 0x01, 0x00]).unwrap();
    let out = replay(&["--profile", "dilithion", zst.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{} is zstd-compressed; only gzip is read",
            zst.display()
        )),
        "{err}"
    );
    // A truncated gzip (a rotation copied while being written) fails loudly, not silently short.
    let gz = dir.path().join("node.log.1.gz");
    let log = dir.path().join("plain.log");
    blocks(&log, 0, 1000);
    let st = Command::new("gzip").arg("-k").arg(&log).status().unwrap();
    assert!(st.success());
    let full = std::fs::read(dir.path().join("plain.log.gz")).unwrap();
    std::fs::write(&gz, &full[..full.len() / 2]).unwrap();
    let out = replay(&["--profile", "dilithion", gz.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("reading {}", gz.display())),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
