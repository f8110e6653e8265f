//! Real systemd journal files for tests: entries in export format, written by
//! `systemd-journal-remote`, as the sidecar's journal source reads them with `journalctl`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

pub fn journal_remote() -> PathBuf {
    ["/lib/systemd/systemd-journal-remote", "/usr/lib/systemd/systemd-journal-remote"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("systemd-journal-remote not found: install Debian's `systemd-journal-remote` (scripts/test.sh does)")
}

/// Append messages (as unit `unit`) to the journal file at `path`.
pub fn append(path: &Path, unit: &str, messages: &[Vec<u8>]) {
    let mut export = Vec::new();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    for (i, m) in messages.iter().enumerate() {
        write!(
            export,
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID=3a1f9c2e6b7d4e0f8a9b1c2d3e4f5a6b\n_SYSTEMD_UNIT={unit}.service\nSYSLOG_IDENTIFIER={unit}\n",
            now + i as u64,
            now + i as u64
        )
        .unwrap();
        if std::str::from_utf8(m).is_ok() && !m.contains(&b'\n') {
            export.extend_from_slice(b"MESSAGE=");
            export.extend_from_slice(m);
        } else {
            export.extend_from_slice(b"MESSAGE\n");
            export.extend_from_slice(&(m.len() as u64).to_le_bytes());
            export.extend_from_slice(m);
        }
        export.extend_from_slice(b"\n\n");
    }
    let mut child = Command::new(journal_remote())
        .arg(format!("--output={}", path.display()))
        .args(["--split-mode=none", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&export).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
