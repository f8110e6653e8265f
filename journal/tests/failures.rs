//! Things going wrong: a corrupt cursor file, no journalctl, a journalctl
//! that keeps failing, a sink that panics.

mod common;

use std::time::{Duration, Instant};

use chainwatch_journal::{JournalReader, Sink};
use common::*;

/// A cursor file that cannot be trusted is reported and the reader starts
/// as on a first run (only new entries); the next checkpoint replaces it.
#[test]
fn corrupt_cursor_file() {
    let cases: [(&str, &[u8]); 4] = [
        ("garbage", b"\x00{not json"),
        ("bad cursor", br#"{"version":1,"cursor":"not-a-cursor"}"#),
        ("future version", br#"{"version":2,"cursor":"t=1"}"#),
        ("empty", b""),
    ];
    for (what, content) in cases {
        let dir = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let mut jf = JournalFile::new(dir.path().join("x.journal"));
        jf.append(
            &(1000..1010)
                .map(|n| seq_entry("a.service", n))
                .collect::<Vec<_>>(),
        );
        let cursor_file = chainwatch_journal::cursor_path(state.path(), "corrupt");
        std::fs::write(&cursor_file, content).unwrap();

        let mut cfg = config("corrupt");
        cfg.directory = Some(dir.path().to_path_buf());
        cfg.state_dir = Some(state.path().to_path_buf());
        let r = Running::start(cfg.clone());
        jf.append(
            &(0..10)
                .map(|n| seq_entry("a.service", n))
                .collect::<Vec<_>>(),
        );
        r.wait("new entries", |rec| rec.has_all(0..10));
        let rec = r.stop();
        rec.assert_exact(0..10);
        let errors: Vec<&Ev> = rec
            .events
            .iter()
            .filter(|e| matches!(e, Ev::Error(_)))
            .collect();
        assert_eq!(errors.len(), 1, "{what}: {:?}", rec.events);
        let Ev::Error(msg) = errors[0] else {
            unreachable!()
        };
        assert!(
            msg.contains(&cursor_file.display().to_string()) && msg.contains("starting from now"),
            "{what}: {msg}"
        );
        // Ready comes after the report, so an application sees it first.
        let pos = |f: &dyn Fn(&Ev) -> bool| rec.events.iter().position(f).unwrap();
        assert!(pos(&|e| matches!(e, Ev::Error(_))) < pos(&|e| *e == Ev::Ready));
        assert_eq!(
            read_cursor_file(state.path(), "corrupt")["version"],
            1,
            "{what}"
        );

        // Replaced by a good one: the next run resumes without complaint.
        jf.append(
            &(10..15)
                .map(|n| seq_entry("a.service", n))
                .collect::<Vec<_>>(),
        );
        let r = Running::start(cfg);
        r.wait("resumed entries", |rec| rec.has_all(10..15));
        let rec = r.stop();
        rec.assert_exact(10..15);
        assert_eq!(
            rec.count_events(|e| matches!(e, Ev::Error(_))),
            0,
            "{what}: {:?}",
            rec.events
        );
    }
}

/// No journalctl binary: reported as an error on every attempt, retried
/// with exponential backoff, no panic, and stop() works at any moment.
#[test]
fn journalctl_missing() {
    let mut cfg = config("missing");
    cfg.journalctl = "/nonexistent/bin/journalctl".into();
    cfg.backoff_min = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(160);
    let r = Running::start(cfg.clone());
    r.wait("several attempts", |rec| {
        rec.count_events(|e| matches!(e, Ev::Restarting(_))) >= 6
    });
    let rec = r.stop();
    let delays: Vec<u64> = rec
        .events
        .iter()
        .filter_map(|e| match e {
            Ev::Restarting(d) => Some(d.as_millis() as u64),
            _ => None,
        })
        .collect();
    assert_eq!(delays[..6], [20, 40, 80, 160, 160, 160], "{delays:?}");
    assert!(rec.pids().is_empty());
    let errors: Vec<&String> = rec
        .events
        .iter()
        .filter_map(|e| match e {
            Ev::Error(m) => Some(m),
            _ => None,
        })
        .collect();
    assert!(errors.len() >= 6, "{:?}", rec.events);
    for m in &errors {
        assert!(
            m.contains("cannot start /nonexistent/bin/journalctl") && m.contains("No such file"),
            "{m}"
        );
    }

    // Stopped in the middle of a long backoff: returns at once.
    cfg.backoff_min = Duration::from_secs(3600);
    cfg.backoff_max = Duration::from_secs(3600);
    let r = Running::start(cfg);
    r.wait("backing off", |rec| {
        rec.events
            .contains(&Ev::Restarting(Duration::from_secs(3600)))
    });
    let t0 = Instant::now();
    let _ = r.stop();
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
}

/// journalctl itself fails (a directory that does not exist): its stderr
/// and exit status are reported, and it is retried with backoff.
#[test]
fn journalctl_failing_is_reported_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config("failing");
    cfg.directory = Some(dir.path().join("does-not-exist"));
    let r = Running::start(cfg);
    r.wait("three exits", |rec| {
        rec.count_events(|e| matches!(e, Ev::Exited(_))) >= 3
    });
    let rec = r.stop();
    assert!(
        rec.events
            .iter()
            .any(|e| matches!(e, Ev::Exited(s) if s == "exit status: 1")),
        "{:?}",
        rec.events
    );
    assert!(
        rec.events
            .iter()
            .any(|e| matches!(e, Ev::Stderr(l) if l.contains("does-not-exist"))),
        "{:?}",
        rec.events
    );
    let delays: Vec<Duration> = rec
        .events
        .iter()
        .filter_map(|e| match e {
            Ev::Restarting(d) => Some(*d),
            _ => None,
        })
        .collect();
    assert_eq!(
        delays[..3],
        [50, 100, 200].map(Duration::from_millis),
        "{:?}",
        rec.events
    );
    for pid in rec.pids() {
        assert!(!process_exists(pid), "journalctl {pid} left behind");
    }
    assert_eq!(
        rec.count_events(|e| *e == Ev::Healthy),
        0,
        "{:?}",
        rec.events
    );
}

/// A journalctl that keeps running is reported healthy once per run, after
/// `healthy_run`, also when the journal is quiet.
#[test]
fn a_running_journalctl_is_reported_healthy_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut jf = JournalFile::new(dir.path().join("x.journal"));
    jf.append(&[seq_entry("a.service", 1000)]);
    let mut cfg = config("healthy");
    cfg.directory = Some(dir.path().to_path_buf());
    cfg.healthy_run = Duration::from_millis(300);
    let r = Running::start(cfg);
    r.wait("healthy", |rec| rec.events.contains(&Ev::Healthy));
    let started = r
        .rec()
        .events
        .iter()
        .position(|e| matches!(e, Ev::Started(_)));
    std::thread::sleep(Duration::from_millis(600));
    let rec = r.stop();
    let healthy = rec.events.iter().position(|e| *e == Ev::Healthy);
    assert!(started.is_some() && started < healthy, "{:?}", rec.events);
    assert_eq!(
        rec.count_events(|e| *e == Ev::Healthy),
        1,
        "{:?}",
        rec.events
    );
    assert_eq!(rec.pids().len(), 1, "{:?}", rec.events);
}

/// A panicking sink unwinds through `run`: journalctl is killed and reaped
/// on drop, not left behind.
#[test]
fn sink_panic_kills_journalctl() {
    struct Panics(std::sync::Arc<std::sync::Mutex<Vec<u32>>>);
    impl Sink for Panics {
        fn lines(&mut self, _chunk: &[u8]) {
            panic!("sink failure (expected by the test)");
        }
        fn event(&mut self, e: chainwatch_journal::Event<'_>) {
            if let chainwatch_journal::Event::Started { pid } = e {
                lock(&self.0).push(pid);
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut jf = JournalFile::new(dir.path().join("x.journal"));
    jf.append(&[seq_entry("a.service", 1000)]);
    let mut cfg = config("panic");
    cfg.directory = Some(dir.path().to_path_buf());
    let reader = JournalReader::new(cfg).unwrap();
    let pids = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let thread = {
        let pids = pids.clone();
        std::thread::spawn(move || reader.run(&mut Panics(pids)))
    };
    wait_for("journalctl started", || !lock(&pids).is_empty());
    let pid = lock(&pids)[0];
    assert!(process_exists(pid));
    jf.append(&[seq_entry("a.service", 0)]);
    assert!(thread.join().is_err(), "the sink's panic propagates");
    assert!(!process_exists(pid), "journalctl {pid} survived the panic");
}

fn fake_journalctl(dir: &std::path::Path, script: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("fake-journalctl");
    std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// A journalctl that exits while a process it started still holds its
/// output open: the leftover is killed with journalctl's process group, so
/// the exit is seen at once, and nothing is left running.
#[test]
fn leftovers_of_an_exited_journalctl_are_killed() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("leftover.pid");
    let mut cfg = config("leftover");
    cfg.backoff_min = Duration::from_secs(3600);
    cfg.backoff_max = Duration::from_secs(3600);
    cfg.journalctl = fake_journalctl(
        dir.path(),
        &format!("sleep 1000 &\necho $! > {}\nexit 3", pidfile.display()),
    );
    let r = Running::start(cfg);
    r.wait("exit", |rec| {
        rec.events.iter().any(|e| matches!(e, Ev::Exited(_)))
    });
    let rec = r.stop();
    assert!(
        rec.events.contains(&Ev::Exited("exit status: 3".into())),
        "{:?}",
        rec.events
    );
    let leftover: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_for("leftover killed", || !process_alive(leftover));
}

/// A journalctl that closes its output but does not exit gets SIGTERM
/// after the grace period, and is restarted.
#[test]
fn journalctl_closing_its_output_is_terminated() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config("closed");
    cfg.journalctl = fake_journalctl(dir.path(), "exec >&- 2>&-\nexec sleep 1000");
    let r = Running::start(cfg);
    r.wait("terminated", |rec| {
        rec.events.iter().any(|e| matches!(e, Ev::Exited(_)))
    });
    let rec = r.stop();
    assert!(
        rec.events
            .contains(&Ev::Exited("signal: 15 (SIGTERM)".into())),
        "{:?}",
        rec.events
    );
    for pid in rec.pids() {
        assert!(!process_exists(pid), "{pid} left behind");
    }
}

/// The cursor cannot be written: reported and retried while running, and
/// the final failure is what `run` returns.
#[test]
fn checkpoint_write_failure() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().join("state");
    let mut jf = JournalFile::new(dir.path().join("x.journal"));
    jf.append(&[seq_entry("a.service", 1000)]);
    let mut cfg = config("ckpt");
    cfg.directory = Some(dir.path().to_path_buf());
    cfg.state_dir = Some(state_dir.clone());
    let r = Running::start(cfg);
    std::fs::remove_dir_all(&state_dir).unwrap();
    jf.append(&[seq_entry("a.service", 0)]);
    r.wait("a failed checkpoint", |rec| {
        rec.events
            .iter()
            .any(|e| matches!(e, Ev::Error(m) if m.contains("retrying")))
    });
    let (rec, result) = r.stop_result();
    rec.assert_exact([0]);
    let err = result.unwrap_err();
    assert!(
        matches!(err, chainwatch_journal::JournalError::Checkpoint { .. }),
        "{err}"
    );
}
