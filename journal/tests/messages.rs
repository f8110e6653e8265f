//! What a real journalctl prints for real journal files, byte for byte.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;

/// Strings, byte arrays (non-UTF-8, NUL, control characters), multi-line
/// messages, entries without a message, truncation, an over-long record;
/// and a first run only sees entries written after it started.
#[test]
fn messages_as_strings_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut jf = JournalFile::new(dir.path().join("x.journal"));
    // Before the reader starts: not delivered on a first run.
    jf.append(
        &(1000..1003)
            .map(|n| seq_entry("a.service", n))
            .collect::<Vec<_>>(),
    );

    let mut cfg = config("messages");
    cfg.directory = Some(dir.path().to_path_buf());
    cfg.max_line_bytes = 200;
    let r = Running::start(cfg);

    let long = format!("seq=5 {}", "x".repeat(500));
    let huge = [b"seq=6 ".to_vec(), vec![0xff; 70_000]].concat();
    let entries = vec![
        Entry::msg("a.service", "seq=0 hello wörld ⚖"),
        Entry::msg("a.service", &b"seq=1 bin \xff\xfe\x00 \x01 end"[..]),
        Entry::msg("a.service", "seq=2 first\nseq=3 second\n"),
        Entry::msg("a.service", "seq=4 tab\there \x1b[0m"),
        Entry {
            message: None,
            ..Entry::msg("a.service", "")
        },
        Entry::msg("a.service", ""),
        Entry::msg("a.service", long.clone()),
        Entry::msg("a.service", huge),
        Entry::msg("a.service", "seq=7 after the skipped record"),
    ];
    jf.append(&entries);
    r.wait("seq=7", |r| r.counts.contains_key(&7));
    let rec = r.stop();

    rec.assert_exact([0, 1, 2, 3, 4, 5, 7]);
    let want: Vec<Vec<u8>> = vec![
        "seq=0 hello wörld ⚖".into(),
        b"seq=1 bin \xff\xfe\x00 \x01 end".to_vec(),
        "seq=2 first".into(),
        "seq=3 second".into(),
        "seq=4 tab\there \x1b[0m".into(),
        Vec::new(),
        long.as_bytes()[..200].to_vec(),
        "seq=7 after the skipped record".into(),
    ];
    assert_eq!(rec.raw, want);
    assert_eq!(rec.count_events(|e| *e == Ev::LineTruncated), 1);
    let invalid: Vec<&Ev> = rec
        .events
        .iter()
        .filter(|e| matches!(e, Ev::InvalidEntry(_)))
        .collect();
    assert_eq!(invalid.len(), 1, "{:?}", rec.events);
    assert!(
        matches!(invalid[0], Ev::InvalidEntry(m) if m.contains("longer than")),
        "{invalid:?}"
    );
    assert_eq!(
        rec.count_events(|e| matches!(e, Ev::Error(_))),
        0,
        "{:?}",
        rec.events
    );
    assert_eq!(rec.count_events(|e| matches!(e, Ev::Exited(_))), 0);
}

/// The first run starts at `Ready`, not whenever journalctl gets round to
/// opening the journal: entries written in between are delivered (this is
/// what `--lines=0` would lose).
#[test]
fn entries_written_before_journalctl_is_up_are_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let mut jf = JournalFile::new(dir.path().join("x.journal"));
    jf.append(&[seq_entry("a.service", 1000)]);
    let slow = dir.path().join("slow-journalctl");
    std::fs::write(&slow, "#!/bin/sh\nsleep 1\nexec journalctl \"$@\"\n").unwrap();
    std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut cfg = config("slow");
    cfg.directory = Some(dir.path().to_path_buf());
    cfg.journalctl = slow;
    let r = Running::start(cfg);
    // Written while the wrapper is still sleeping.
    jf.append(
        &(0..20)
            .map(|n| seq_entry("a.service", n))
            .collect::<Vec<_>>(),
    );
    r.wait("all 20", |r| r.has_all(0..20));
    let rec = r.stop();
    rec.assert_exact(0..20);
}
