//! Discovery, positioning and line handling, each in inotify and polling mode.

mod common;

use std::fs;

use common::*;

/// Existing files start at their end (an in-progress line counts once it is
/// completed); files created later are read from the start; non-matching
/// files are ignored.
fn glob_existing_from_end_new_from_start(inotify: bool) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = d.join("a.log");
    let b = d.join("b.log");
    append(&a, &lines(0..10));
    append(&a, "seq=10 in prog");
    append(&b, &lines(100..105));
    let run = Running::start(config(vec![pat(d, "*.log")], inotify));

    append(&a, "ress\n");
    append(&a, &lines(11..20));
    append(&b, &lines(105..110));
    let c = d.join("c.log");
    append(&c, &lines(200..210));
    append(&d.join("other.txt"), &lines(900..910));

    let mut want = range(10..20);
    want.extend(105..110);
    want.extend(200..210);
    run.wait_lines(&want);
    // A sentinel written last proves the follower went past everything else.
    append(&c, &line(210));
    want.push(210);
    run.wait_lines(&want);
    let rec = run.stop();
    rec.assert_exact(&want);
    assert!(rec.raw.contains(&b"seq=10 in progress\n".to_vec()));
    let opened_c = rec
        .events
        .iter()
        .any(|e| matches!(e, Ev::Opened(p, 0) if *p == c));
    assert!(opened_c, "{:?}", rec.events);
    let ready = rec.events.iter().position(|e| *e == Ev::Ready).unwrap();
    let opened_a = rec
        .events
        .iter()
        .position(|e| matches!(e, Ev::Opened(p, _) if *p == a))
        .unwrap();
    assert!(
        opened_a < ready,
        "existing files are positioned before Ready"
    );
}

/// Neither the file nor its directories exist at start.
fn missing_file_and_directory(inotify: bool) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = Running::start(config(
        vec![pat(d, "x/y/*.log"), pat(d, "later.log")],
        inotify,
    ));
    fs::create_dir(d.join("x")).unwrap();
    fs::create_dir(d.join("x/y")).unwrap();
    append(&d.join("x/y/node.log"), &lines(0..50));
    append(&d.join("later.log"), &lines(50..60));
    run.wait_lines(&range(0..60));
    append(&d.join("x/y/node.log"), &lines(60..70));
    run.wait_lines(&range(0..70));
    let rec = run.stop();
    rec.assert_exact(&range(0..70));
    assert!(
        !rec.events.iter().any(|e| matches!(e, Ev::Error(..))),
        "a missing path is not an error: {:?}",
        rec.events
    );
}

fn partial_line_is_held(inotify: bool) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.log");
    let run = Running::start(config(vec![f.display().to_string()], inotify));
    // One write, so the read that delivers line 1 also sees the partial one.
    append(&f, "seq=1 whole\nseq=2 hal");
    run.wait_lines(&[1]);
    append(&f, "f and half\n");
    run.wait_lines(&[1, 2]);
    let rec = run.stop();
    rec.assert_exact(&[1, 2]);
    assert_eq!(
        rec.raw,
        vec![b"seq=1 whole\n".to_vec(), b"seq=2 half and half\n".to_vec()]
    );
}

fn crlf_and_nul_pass_through(inotify: bool) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.log");
    let run = Running::start(config(vec![f.display().to_string()], inotify));
    let data: &[u8] = b"seq=1 dos\r\nseq=2 a\0b\nseq=3 \0\0\r\n\0\n";
    append_bytes(&f, data);
    run.wait_lines(&[1, 2, 3]);
    run.wait("NUL-only line", |r| r.other.len() == 1);
    let rec = run.stop();
    rec.assert_exact(&[1, 2, 3]);
    assert_eq!(rec.raw.concat(), data.to_vec());
}

fn overlong_line_is_truncated(inotify: bool) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.log");
    let mut cfg = config(vec![f.display().to_string()], inotify);
    cfg.max_line_bytes = 100;
    // Small reads so the long line spans many of them.
    cfg.read_buffer_bytes = 64;
    let run = Running::start(cfg);
    let mut long = String::from("seq=2 ");
    long.push_str(&"x".repeat(50_000));
    append(&f, &line(1));
    append(&f, &long[..20_000]);
    append(&f, &long[20_000..]);
    append(&f, "\n");
    append(&f, &line(3));
    run.wait_lines(&[1, 2, 3]);
    let rec = run.stop();
    rec.assert_exact(&[1, 2, 3]);
    let mut want = long.as_bytes()[..100].to_vec();
    want.push(b'\n');
    assert_eq!(rec.raw[1], want);
    assert_eq!(rec.raw[2], line(3).into_bytes());
    assert_eq!(rec.count_events(|e| matches!(e, Ev::LineTruncated(_))), 1);
}

/// A matched name that cannot be read (a symlink loop: fails for root too) is
/// an unresolved read problem until it is gone; the other files are read all
/// along.
fn unreadable_path_is_a_problem_until_resolved(inotify: bool) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let looped = d.join("loop.log");
    std::os::unix::fs::symlink(&looped, &looped).unwrap();
    let run = Running::start(config(vec![pat(d, "*.log")], inotify));
    run.wait("the read problem", |r| {
        r.events.contains(&Ev::Problems(1, 0, 0))
    });
    let a = d.join("a.log");
    append(&a, &lines(0..10));
    run.wait_lines(&range(0..10));
    fs::remove_file(&looped).unwrap();
    // A wake for the scan to notice (inotify sees the unlink, polling ticks).
    append(&a, &line(10));
    // The scan may report the problem resolved before the appended line is read: wait for both.
    run.wait_lines(&range(0..11));
    run.wait("resolved", |r| r.events.contains(&Ev::Problems(0, 0, 0)));
    let rec = run.stop();
    rec.assert_exact(&range(0..11));
    let first = rec
        .events
        .iter()
        .position(|e| matches!(e, Ev::Error(p, _) if *p == looped));
    let problems = rec.events.iter().position(|e| *e == Ev::Problems(1, 0, 0));
    assert!(first.is_some() && first < problems, "{:?}", rec.events);
}

both_modes!(
    unreadable_path_is_a_problem_until_resolved,
    glob_existing_from_end_new_from_start,
    missing_file_and_directory,
    partial_line_is_held,
    crlf_and_nul_pass_through,
    overlong_line_is_truncated,
);

/// With an hour-long poll tick, only inotify can deliver these in time:
/// watches follow directories as they appear.
#[test]
fn inotify_alone_wakes_the_loop() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut cfg = config(vec![pat(d, "x/y/node.log*")], true);
    cfg.poll_interval = std::time::Duration::from_secs(3600);
    let run = Running::start(cfg);
    fs::create_dir_all(d.join("x/y")).unwrap();
    let f = d.join("x/y/node.log");
    append(&f, &lines(0..10));
    run.wait_lines(&range(0..10));
    append(&f, &lines(10..20));
    run.wait_lines(&range(0..20));
    fs::rename(&f, d.join("x/y/node.log.1")).unwrap();
    append(&f, &lines(20..30));
    run.wait_lines(&range(0..30));
    run.stop().assert_exact(&range(0..30));
}

/// stop() wakes the loop at once even when nothing else would for an hour,
/// and the final checkpoint is written on the way out.
#[test]
fn stop_wakes_the_loop() {
    use chainwatch_follow::{Event, Follower, Sink};
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    struct ReadySink(Arc<AtomicBool>);
    impl Sink for ReadySink {
        fn lines(&mut self, _: &Path, _: &[u8]) {}
        fn event(&mut self, e: Event<'_>) {
            if e == Event::Ready {
                self.0.store(true, Ordering::SeqCst);
            }
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut cfg = config(vec![pat(dir.path(), "*.log")], false);
    cfg.poll_interval = std::time::Duration::from_secs(3600);
    cfg.checkpoint_interval = std::time::Duration::from_secs(3600);
    cfg.state_dir = Some(state.path().to_path_buf());
    let follower = Follower::new(cfg).unwrap();
    let stop = follower.stop_handle();
    let ready = Arc::new(AtomicBool::new(false));
    let mut sink = ReadySink(ready.clone());
    let t = std::thread::spawn(move || follower.run(&mut sink));
    wait_for("Ready", || ready.load(Ordering::SeqCst));
    stop.stop();
    wait_for("run() to return after stop()", || t.is_finished());
    t.join().unwrap().unwrap();
    assert_eq!(read_checkpoint(state.path())["version"], 1);
}
