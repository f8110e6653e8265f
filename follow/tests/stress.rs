//! 200,000 numbered lines while rotating by rename every 10,000 lines and by
//! copytruncate every 25,000: every line exactly once.

mod common;

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use common::*;

const TOTAL: u64 = 200_000;
const RENAME_EVERY: u64 = 10_000;
const COPYTRUNCATE_EVERY: u64 = 25_000;
/// Lines written to the old handle after each rename.
const LATE: u64 = 7;
const PACE_EVERY: u64 = 100;

/// Buffers lines and writes them in ~4 KiB pieces that usually end in the
/// middle of a line, like a real logger's buffer flushes.
struct Out {
    file: File,
    buf: Vec<u8>,
}

impl Out {
    fn open(path: &Path) -> Out {
        Out {
            file: open_append(path),
            buf: Vec::with_capacity(8192),
        }
    }

    fn line(&mut self, n: u64) {
        self.buf.extend_from_slice(line(n).as_bytes());
        if self.buf.len() >= 4096 {
            let keep = 13.min(self.buf.len());
            let cut = self.buf.len() - keep;
            self.file.write_all(&self.buf[..cut]).unwrap();
            self.buf.drain(..cut);
        }
    }

    fn flush(&mut self) {
        self.file.write_all(&self.buf).unwrap();
        self.buf.clear();
    }
}

struct Pause {
    at: u64,
    until: Arc<AtomicBool>,
}

fn spawn_writer(dir: PathBuf, progress: Arc<AtomicU64>, pause: Option<Pause>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let log = dir.join("node.log");
        let mut out = Out::open(&log);
        let mut n = 0;
        while n < TOTAL {
            if let Some(p) = &pause {
                if n == p.at {
                    out.flush();
                    wait_for("first follower stopped", || p.until.load(Ordering::SeqCst));
                }
            }
            out.line(n);
            n += 1;
            if n % PACE_EVERY == 0 {
                // Pacing (not an assertion): keeps the follower racing the
                // writer instead of finding finished files afterwards.
                std::thread::sleep(std::time::Duration::from_micros(300));
            }
            if n % COPYTRUNCATE_EVERY == 0 {
                out.flush();
                let copy = dir.join(format!("node.log.c{}", n / COPYTRUNCATE_EVERY));
                fs::copy(&log, copy).unwrap();
                out.file.set_len(0).unwrap();
            }
            if n % RENAME_EVERY == 0 && n < TOTAL {
                out.flush();
                fs::rename(&log, dir.join(format!("node.log.{}", n / RENAME_EVERY))).unwrap();
                for _ in 0..LATE {
                    out.file.write_all(line(n).as_bytes()).unwrap();
                    n += 1;
                }
                out = Out::open(&log);
            }
            progress.store(n, Ordering::Relaxed);
        }
        out.flush();
        progress.store(n, Ordering::SeqCst);
    })
}

fn stress(inotify: bool, restart: bool) {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let mut cfg = config(vec![pat(&d, "node.log*")], inotify);
    cfg.state_dir = Some(state.path().to_path_buf());
    let first = Running::start_with(cfg.clone(), None, false);
    let progress = Arc::new(AtomicU64::new(0));
    let stopped = Arc::new(AtomicBool::new(false));
    let pause = restart.then(|| Pause {
        at: 100_000,
        until: stopped.clone(),
    });
    let writer = spawn_writer(d.clone(), progress.clone(), pause);

    let all = range(0..TOTAL);
    let rec = if restart {
        first.wait("60,000 lines", |r| r.counts.len() >= 60_000);
        let rec1 = first.stop();
        stopped.store(true, Ordering::SeqCst);
        let at_stop = progress.load(Ordering::SeqCst);
        wait_for("writing while down", || {
            progress.load(Ordering::SeqCst) >= (at_stop + 30_000).min(TOTAL)
        });
        let second = Running::start_with(cfg, None, false);
        writer.join().unwrap();
        let rest: Vec<u64> = all.iter().copied().filter(|n| !rec1.seen(*n)).collect();
        second.wait_lines(&rest);
        let mut rec = second.stop();
        rec.merge(&rec1);
        rec
    } else {
        writer.join().unwrap();
        first.wait_lines(&all);
        first.stop()
    };
    eprintln!(
        "events: truncated={} rotated={} opened={} closed={} errors={:?}",
        rec.count_events(|e| matches!(e, Ev::Truncated(_))),
        rec.count_events(|e| matches!(e, Ev::Rotated(_))),
        rec.count_events(|e| matches!(e, Ev::Opened(..))),
        rec.count_events(|e| matches!(e, Ev::Closed(_))),
        rec.events
            .iter()
            .filter(|e| matches!(e, Ev::Error(..)))
            .collect::<Vec<_>>(),
    );
    rec.assert_exact(&all);
    assert!(
        rec.other.is_empty(),
        "garbled lines: {:?}",
        &rec.other[..rec.other.len().min(5)]
    );
}

#[test]
fn stress_inotify() {
    stress(true, false);
}

#[test]
fn stress_polling() {
    stress(false, false);
}

#[test]
fn stress_restart() {
    stress(true, true);
}
