//! journalctl dying and the application restarting: every entry exactly once.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::*;

fn seq_entries(unit: &str, range: std::ops::Range<u64>) -> Vec<Entry> {
    range.map(|n| seq_entry(unit, n)).collect()
}

/// journalctl is SIGKILLed while it is in the middle of printing a large
/// burst; entries appended while it is down are delivered once after the
/// restart, and so are those appended after it.
#[test]
fn journalctl_killed_mid_stream() {
    const BURST: u64 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let jf = Arc::new(Mutex::new(JournalFile::new(dir.path().join("x.journal"))));
    lock(&jf).append(&[seq_entry("a.service", 1_000_000)]);

    let mut cfg = config("killed");
    cfg.directory = Some(dir.path().to_path_buf());
    cfg.state_dir = Some(state.path().to_path_buf());

    let killed = Arc::new(AtomicBool::new(false));
    let appended_while_down = Arc::new(AtomicBool::new(false));
    let hooks = Hooks {
        // Inside the sink: the reader is busy with the first chunk, so
        // journalctl is blocked writing the rest of the burst.
        on_lines: Some(Box::new({
            let killed = killed.clone();
            move |rec| {
                if !killed.swap(true, Ordering::SeqCst) {
                    kill(*rec.pids().last().unwrap(), libc::SIGKILL);
                }
            }
        })),
        // Also inside the sink: journalctl is dead and cannot be restarted
        // before this returns.
        on_exited: Some(Box::new({
            let (jf, flag) = (jf.clone(), appended_while_down.clone());
            move |_| {
                if !flag.swap(true, Ordering::SeqCst) {
                    lock(&jf).append(&seq_entries("a.service", BURST..BURST + 1000));
                }
            }
        })),
    };
    let r = Running::start_with(cfg, hooks);
    lock(&jf).append(&seq_entries("a.service", 0..BURST));
    r.wait("second journalctl", |rec| rec.pids().len() >= 2);
    r.wait("burst and the entries written while down", |rec| {
        rec.has_all(0..BURST + 1000)
    });
    lock(&jf).append(&seq_entries("a.service", BURST + 1000..BURST + 1100));
    r.wait("entries after the restart", |rec| {
        rec.has_all(BURST + 1000..BURST + 1100)
    });
    let rec = r.stop();

    rec.assert_exact(0..BURST + 1100);
    assert!(load(&appended_while_down));
    let at_exit = rec.seq_at_exit.unwrap();
    assert!(
        at_exit < BURST as usize,
        "journalctl was not killed mid-stream: {at_exit} of {BURST} delivered before it exited"
    );
    let exits: Vec<&Ev> = rec
        .events
        .iter()
        .filter(|e| matches!(e, Ev::Exited(_)))
        .collect();
    assert_eq!(exits.len(), 1, "{:?}", rec.events);
    assert!(
        matches!(exits[0], Ev::Exited(s) if s.contains("SIGKILL")),
        "{exits:?}"
    );
    assert!(rec.events.iter().any(|e| matches!(e, Ev::Restarting(_))));
    let pids = rec.pids();
    assert_eq!(pids.len(), 2, "{:?}", rec.events);
    for pid in pids {
        assert!(
            !process_exists(pid),
            "journalctl {pid} left behind (zombie or running)"
        );
    }
    // The final checkpoint names the last entry.
    let last = last_cursor(&dir.path().join("x.journal"));
    assert_eq!(read_cursor_file(state.path(), "killed")["cursor"], last);
}

/// The application stops and starts again (same state_dir) while entries
/// keep being appended: each entry exactly once across the two runs, and the
/// first run's cursor names exactly the last entry it delivered.
#[test]
fn reader_restart_while_appending_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.journal");
    let mut jf = JournalFile::new(path.clone());
    jf.append(&[seq_entry("a.service", 1_000_000)]);

    let mut cfg = config("restart");
    cfg.files = vec![path.clone()];
    cfg.state_dir = Some(state.path().to_path_buf());
    let first = Running::start(cfg.clone());

    let next = Arc::new(AtomicU64::new(0));
    let appends = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (next, appends, done) = (next.clone(), appends.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                let n = next.load(Ordering::SeqCst);
                jf.append(&seq_entries("a.service", n..n + 50));
                next.store(n + 50, Ordering::SeqCst);
                appends.fetch_add(1, Ordering::SeqCst);
            }
        })
    };

    first.wait("a few hundred entries", |rec| rec.total_seq_lines >= 300);
    let rec1 = first.stop();
    let saved = read_cursor_file(state.path(), "restart");
    assert_eq!(saved["version"], 1);
    // Everything up to and including the saved cursor was delivered by the
    // first run, and nothing after it.
    let entries = journal_entries(&path);
    let upto = entries
        .iter()
        .position(|(c, _)| *c == saved["cursor"])
        .expect("saved cursor is an entry of the journal");
    let covered: Vec<u64> = entries[..=upto]
        .iter()
        .filter_map(|(_, n)| *n)
        .filter(|&n| n < 1_000_000)
        .collect();
    let mut delivered: Vec<u64> = rec1.counts.keys().copied().collect();
    delivered.sort_unstable();
    assert_eq!(covered, delivered);

    // Appending goes on while nobody follows.
    let a = appends.load(Ordering::SeqCst);
    wait_for("appends while down", || {
        appends.load(Ordering::SeqCst) >= a + 3
    });
    let second = Running::start(cfg);
    let a = appends.load(Ordering::SeqCst);
    wait_for("appends after restart", || {
        appends.load(Ordering::SeqCst) >= a + 3
    });
    done.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    let total = next.load(Ordering::SeqCst);
    second.wait("everything", |rec| {
        (0..total).all(|n| rec.counts.contains_key(&n) || rec1.counts.contains_key(&n))
    });
    let rec2 = second.stop();
    assert!(rec2.total_seq_lines > 0);
    assert_eq!(
        rec2.count_events(|e| matches!(e, Ev::Error(_))),
        0,
        "{:?}",
        rec2.events
    );
    let mut all = Recorder::default();
    all.merge(&rec1);
    all.merge(&rec2);
    all.assert_exact(0..total);
}

/// The saved cursor is in an earlier boot than the newest entries: the
/// rest of that boot is delivered too (`--follow` alone implies `--boot`).
#[test]
fn restart_across_a_reboot_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut jf = JournalFile::new(dir.path().join("x.journal"));
    jf.append(&[seq_entry("a.service", 1_000_000)]);
    let mut cfg = config("reboot");
    cfg.directory = Some(dir.path().to_path_buf());
    cfg.state_dir = Some(state.path().to_path_buf());

    let first = Running::start(cfg.clone());
    jf.append(&seq_entries("a.service", 0..10));
    first.wait("boot A", |rec| rec.has_all(0..10));
    let rec1 = first.stop();

    // The last lines of boot A, then the next boot.
    jf.append(&seq_entries("a.service", 10..20));
    let boot_b: Vec<Entry> = seq_entries("a.service", 20..30)
        .into_iter()
        .map(|e| Entry { boot: BOOT_B, ..e })
        .collect();
    jf.append(&boot_b);

    let second = Running::start(cfg);
    second.wait("boot B", |rec| rec.has_all(20..30));
    let rec2 = second.stop();
    let mut all = Recorder::default();
    all.merge(&rec1);
    all.merge(&rec2);
    all.assert_exact(0..30);
}

/// `(__CURSOR, seq)` of every entry of a journal file, in order, as the
/// real journalctl lists them.
fn journal_entries(path: &std::path::Path) -> Vec<(serde_json::Value, Option<u64>)> {
    let out = Command::new("journalctl")
        .arg(format!("--file={}", path.display()))
        .args([
            "--output=json",
            "--output-fields=MESSAGE",
            "--no-pager",
            "--all",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_slice(l).unwrap();
            let seq = v["MESSAGE"].as_str().and_then(|m| parse_seq(m.as_bytes()));
            (v["__CURSOR"].clone(), seq)
        })
        .collect()
}

fn last_cursor(path: &std::path::Path) -> serde_json::Value {
    journal_entries(path).pop().unwrap().0
}
