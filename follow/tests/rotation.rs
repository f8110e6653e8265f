//! Rotation in all its forms, each in inotify and polling mode.

mod common;

use std::fs;
use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;

/// node.log -> node.log.1 (still matching) with writes landing on the old
/// handle after the rename, interleaved with writes to the new file.
fn rename_rotation_with_late_writes(inotify: bool) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = d.join("node.log");
    let run = Running::start(config(vec![pat(d, "node.log*")], inotify));
    let mut old = open_append(&f);
    old.write_all(lines(0..1000).as_bytes()).unwrap();
    run.wait_lines(&[0]);
    fs::rename(&f, d.join("node.log.1")).unwrap();
    old.write_all(lines(1000..1100).as_bytes()).unwrap();
    append(&f, &lines(1100..2000));
    old.write_all(lines(2000..2050).as_bytes()).unwrap();
    append(&f, &lines(2050..2100));
    run.wait_lines(&range(0..2100));
    let rec = run.stop();
    rec.assert_exact(&range(0..2100));
    assert!(
        rec.events.contains(&Ev::Rotated(f.clone())),
        "{:?}",
        rec.events
    );
}

/// Renamed out of the pattern: drained (late writes counted), then closed
/// once idle at EOF for rotate_wait.
fn rename_away_is_drained_then_closed(inotify: bool) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = d.join("node.log");
    let run = Running::start(config(vec![f.display().to_string()], inotify));
    let mut old = open_append(&f);
    old.write_all(lines(0..100).as_bytes()).unwrap();
    run.wait_lines(&[0]);
    let archived = d.join("archived.old");
    fs::rename(&f, &archived).unwrap();
    old.write_all(lines(100..200).as_bytes()).unwrap();
    append(&f, &lines(200..300));
    run.wait_lines(&range(0..300));
    run.wait("old file closed", |r| {
        r.events.iter().any(|e| matches!(e, Ev::Closed(_)))
    });
    let rec = run.stop();
    rec.assert_exact(&range(0..300));
    let rotated = rec.events.iter().position(|e| *e == Ev::Rotated(f.clone()));
    let closed = rec.events.iter().position(|e| matches!(e, Ev::Closed(_)));
    assert!(rotated.is_some() && rotated < closed, "{:?}", rec.events);
}

/// copy to node.log.c1, truncate node.log, keep writing (less than before).
fn copytruncate(inotify: bool) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = d.join("node.log");
    let run = Running::start(config(vec![pat(d, "node.log*")], inotify));
    let mut w = open_append(&f);
    w.write_all(lines(0..500).as_bytes()).unwrap();
    run.wait_lines(&range(0..500));
    // Probably unread when the truncation happens: only the copy has them.
    w.write_all(lines(500..1000).as_bytes()).unwrap();
    fs::copy(&f, d.join("node.log.c1")).unwrap();
    w.set_len(0).unwrap();
    w.write_all(lines(1000..1100).as_bytes()).unwrap();
    run.wait_lines(&range(0..1100));
    w.write_all(line(1100).as_bytes()).unwrap();
    run.wait_lines(&range(0..1101));
    let rec = run.stop();
    rec.assert_exact(&range(0..1101));
}

/// The follower is paused inside the sink while lines are written, the file
/// is copied, truncated and refilled past its old size: on resuming it must
/// notice the new head, take the unread lines from the copy and the new
/// content from offset 0.
fn copytruncate_refilled_while_paused(inotify: bool) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = d.join("node.log");
    let gate = Arc::new(Mutex::new(()));
    let run = Running::start_with(
        config(vec![pat(d, "node.log*")], inotify),
        Some(gate.clone()),
        true,
    );
    let mut w = open_append(&f);
    w.write_all(lines(0..10).as_bytes()).unwrap();
    run.wait_lines(&range(0..10));
    let entered = run.entered.load(std::sync::atomic::Ordering::SeqCst);
    let held = lock(&gate);
    w.write_all(lines(10..20).as_bytes()).unwrap();
    wait_for("follower blocked in the sink", || {
        run.entered.load(std::sync::atomic::Ordering::SeqCst) > entered
    });
    w.write_all(lines(20..100).as_bytes()).unwrap();
    fs::copy(&f, d.join("node.log.c1")).unwrap();
    w.set_len(0).unwrap();
    w.write_all(lines(1000..1400).as_bytes()).unwrap();
    assert!(w.metadata().unwrap().len() > lines(0..100).len() as u64);
    drop(held);
    run.wait_lines(&[range(0..100), range(1000..1400)].concat());
    let rec = run.stop();
    rec.assert_exact(&[range(0..100), range(1000..1400)].concat());
    assert!(
        rec.events.contains(&Ev::Truncated(f.clone())),
        "{:?}",
        rec.events
    );
}

/// The reproduction, as logrotate's copytruncate does it: the copy is
/// taken, the writer goes on and the follower reads on from the original,
/// then the original is truncated. The copy is shorter than the offset; all
/// of it was counted, so it is adopted at its end and never read from 0 (the
/// old code deferred it and, when rotate_wait expired, read 100 lines again).
fn copy_shorter_than_offset_is_adopted_at_its_end(inotify: bool) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = d.join("app.log");
    append(&f, &lines(0..100));
    let run = Running::start(config(vec![pat(d, "app.log*")], inotify));
    let copy = d.join("app.log.1");
    fs::copy(&f, &copy).unwrap();
    append(&f, &lines(100..110));
    run.wait_lines(&range(100..110));
    fs::OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&f, &lines(110..120));
    run.wait_lines(&range(110..120));
    run.wait("the copy adopted", |r| {
        r.events
            .iter()
            .any(|e| matches!(e, Ev::Opened(p, _) if *p == copy))
    });
    // A line in a pass after the adoption: whatever the copy could add is in.
    append(&f, &line(120));
    run.wait_lines(&[120]);
    let rec = run.stop();
    rec.assert_exact(&range(100..121));
    let copy_size = lines(0..100).len() as u64;
    assert!(
        rec.events.contains(&Ev::Opened(copy.clone(), copy_size)),
        "{:?}",
        rec.events
    );
    assert!(
        rec.events.contains(&Ev::Truncated(f.clone())),
        "{:?}",
        rec.events
    );
}

/// The copy ends in the middle of a line (logrotate copied while the writer
/// was writing it; the line was finished in the original, then truncated).
/// When the copy is closed, that fragment is not emitted as a line.
fn copy_fragment_is_not_a_line(inotify: bool) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = d.join("app.log");
    let run = Running::start(config(vec![pat(d, "app.log*")], inotify));
    append(&f, &lines(0..10));
    run.wait_lines(&range(0..10));
    let copy = d.join("app.log.1");
    append(&copy, &format!("{}seq=20 pay", lines(0..20)));
    fs::OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(0)
        .unwrap();
    run.wait_lines(&range(10..20));
    fs::remove_file(&copy).unwrap();
    run.wait("the copy closed", |r| {
        r.events.contains(&Ev::Closed(copy.clone()))
    });
    append(&f, &lines(100..110));
    run.wait_lines(&range(100..110));
    let rec = run.stop();
    rec.assert_exact(&[range(0..20), range(100..110)].concat());
    assert!(rec.other.is_empty(), "{:?}", rec.other);
}

/// Deleted while being written, then recreated: the old handle is drained
/// (including writes racing the unlink) and the new file read from 0.
fn delete_and_recreate(inotify: bool) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = d.join("node.log");
    let run = Running::start(config(vec![f.display().to_string()], inotify));
    let mut old = open_append(&f);
    old.write_all(lines(0..100).as_bytes()).unwrap();
    run.wait_lines(&[0]);
    fs::remove_file(&f).unwrap();
    old.write_all(lines(100..110).as_bytes()).unwrap();
    append(&f, &lines(110..200));
    run.wait_lines(&range(0..200));
    run.wait("deleted file closed", |r| {
        r.events.iter().any(|e| matches!(e, Ev::Closed(_)))
    });
    append(&f, &line(200));
    run.wait_lines(&range(0..201));
    let rec = run.stop();
    rec.assert_exact(&range(0..201));
}

/// A copy that is still being written must not be read from 0 while its
/// original is live; once the original is truncated it resumes where the
/// original had got to.
fn copy_in_progress_is_deferred(inotify: bool) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = d.join("node.log");
    let run = Running::start(config(vec![pat(d, "node.log*")], inotify));
    let mut w = open_append(&f);
    w.write_all(lines(0..100).as_bytes()).unwrap();
    run.wait_lines(&range(0..100));
    let content = fs::read(&f).unwrap();
    let copy = d.join("node.log.c1");
    append_bytes(&copy, &content[..content.len() / 2]);
    // Let the follower see the half copy: a sentinel in the live file is
    // read in a pass that also scanned the copy (scan precedes reads).
    w.write_all(line(100).as_bytes()).unwrap();
    run.wait_lines(&[100]);
    w.write_all(line(101).as_bytes()).unwrap();
    run.wait_lines(&[101]);
    let full = fs::read(&f).unwrap();
    append_bytes(&copy, &full[content.len() / 2..]);
    w.set_len(0).unwrap();
    w.write_all(lines(200..300).as_bytes()).unwrap();
    run.wait_lines(&range(200..300));
    w.write_all(line(300).as_bytes()).unwrap();
    run.wait_lines(&[300]);
    let rec = run.stop();
    rec.assert_exact(&[range(0..102), range(200..301)].concat());
}

/// Two unrelated files that happen to share a first line must both be read.
fn same_first_line_but_unrelated(inotify: bool) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = Running::start(config(vec![pat(d, "*.log")], inotify));
    append(&d.join("a.log"), &format!("HEADER\n{}", lines(0..10)));
    run.wait_lines(&range(0..10));
    append(&d.join("b.log"), &format!("HEADER\n{}", lines(10..20)));
    run.wait_lines(&range(0..20));
    let rec = run.stop();
    rec.assert_exact(&range(0..20));
    assert_eq!(rec.other.len(), 2);
}

both_modes!(
    rename_rotation_with_late_writes,
    rename_away_is_drained_then_closed,
    copytruncate,
    copytruncate_refilled_while_paused,
    delete_and_recreate,
    copy_in_progress_is_deferred,
    same_first_line_but_unrelated,
    copy_shorter_than_offset_is_adopted_at_its_end,
    copy_fragment_is_not_a_line,
);
