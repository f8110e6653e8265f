//! The loop sleeps when nothing happens: its own file accesses (opens,
//! directory listings, checkpoint writes) do not wake it into writing more
//! checkpoints. The CPU it uses idle is printed here and measured by the
//! bench scripts; a test asserts no duration.

mod common;

use std::time::Duration;

use common::*;

fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    assert_eq!(rc, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

#[test]
fn idle_loop_uses_almost_no_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for i in 0..20 {
        append(&d.join(format!("f{i}.log")), &lines(i * 10..i * 10 + 10));
    }
    let mut cfg = config(vec![pat(d, "*.log"), pat(d, "missing/*.log")], true);
    cfg.poll_interval = Duration::from_millis(250);
    // Checkpoints land in the watched directory itself: the worst case.
    cfg.state_dir = Some(d.to_path_buf());
    cfg.checkpoint_interval = Duration::from_millis(100);
    let run = Running::start(cfg);
    append(&d.join("f0.log"), &line(1000));
    run.wait_lines(&[1000]);
    run.wait("a checkpoint", |r| {
        r.events.contains(&Ev::CheckpointWritten)
    });

    let before = cpu_time();
    let written_before = run.rec().count_events(|e| *e == Ev::CheckpointWritten);
    // A measurement window, not a synchronisation.
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_time() - before;
    let written = run.rec().count_events(|e| *e == Ev::CheckpointWritten) - written_before;
    eprintln!("idle: {used:?} CPU, {written} checkpoints");
    run.stop().assert_exact(&[1000]);
    assert!(
        written <= 1,
        "{written} checkpoints written while nothing changed"
    );
}
