//! The real logrotate (Debian package `logrotate`, installed by scripts/test.sh), run with `-f`
//! and a private state file again and again under a writer of 25,000 lines/s, with a follower
//! restart (checkpoint in a state directory) in the middle and one rotation while it is down.
//!
//! The check is exact on sets, not on timing: every line carries a unique sequence number; the
//! test reads every file after each logrotate run and at the end (decompressing the `.gz`
//! copies), and what it finds there — "the lines that reached a file on disk" — must all have
//! been counted, exactly once, and nothing else. The only lines allowed to be counted without
//! being found are those copytruncate destroys: written to the original between logrotate's
//! copy and its truncation. logrotate(8) says so ("Note that there is a very small time slice
//! between copying the file and truncating it, so some logging data might be lost"); the
//! follower counts those it read before the truncation, once, and cannot see the others.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;

const LINES_PER_SEC: f64 = 25_000.0;

struct Scenario {
    /// logrotate directives for the one log file.
    directives: &'static str,
    /// The application reopens its log after a rotation (what a postrotate signal asks of it);
    /// with copytruncate it never does.
    reopen: bool,
    rotations: usize,
    /// Between two logrotate runs; dateext names have a resolution of one second.
    spacing: Duration,
}

/// Debian installs it in /usr/sbin, which is not on an ordinary user's PATH.
const LOGROTATE: [&str; 2] = ["/usr/sbin/logrotate", "/sbin/logrotate"];

fn logrotate(conf: &Path, state: &Path) {
    let bin = LOGROTATE
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("logrotate"));
    let out = Command::new(bin)
        .arg("-f")
        .arg("-s")
        .arg(state)
        .arg(conf)
        .output()
        .expect("logrotate not found: install Debian's `logrotate` package (scripts/test.sh does)");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "logrotate failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The sequence number of a line exactly as the writer writes it, else None.
fn seq_of(l: &[u8]) -> Option<u64> {
    let n = parse_seq(l)?;
    (l == line(n).as_bytes()).then_some(n)
}

/// Every complete, well-formed line now in the log directory, `.gz` files decompressed by the
/// real gzip. A cut-off last line (being written, or a copy taken mid-write) is not a line.
fn on_disk(dir: &Path) -> BTreeSet<u64> {
    let mut seqs = BTreeSet::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let Ok(bytes) = fs::read(&path) else {
            continue; // deleted meanwhile: it was read by an earlier snapshot
        };
        let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
            let out = Command::new("gzip").arg("-dc").arg(&path).output().unwrap();
            assert!(out.status.success(), "gzip -dc {}", path.display());
            out.stdout
        } else {
            bytes
        };
        let complete = match memchr_last_newline(&bytes) {
            Some(end) => &bytes[..=end],
            None => continue,
        };
        for l in complete.split_inclusive(|&b| b == b'\n') {
            let n = seq_of(l).unwrap_or_else(|| {
                panic!(
                    "{}: malformed line {:?}",
                    path.display(),
                    String::from_utf8_lossy(l)
                )
            });
            seqs.insert(n);
        }
    }
    seqs
}

fn memchr_last_newline(b: &[u8]) -> Option<usize> {
    b.iter().rposition(|&c| c == b'\n')
}

/// One write(2) per line, O_APPEND, paced at LINES_PER_SEC (catching up in bursts when the
/// machine is slow); reopens the log when `reopen` is raised.
fn spawn_writer(
    log: PathBuf,
    written: Arc<AtomicU64>,
    reopen: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Duration> {
    std::thread::spawn(move || {
        let mut f = open_append(&log);
        let start = Instant::now();
        let mut n = 0u64;
        while !stop.load(Ordering::SeqCst) {
            let due = (start.elapsed().as_secs_f64() * LINES_PER_SEC) as u64;
            while n < due {
                if reopen.swap(false, Ordering::SeqCst) {
                    f = open_append(&log);
                }
                f.write_all(line(n).as_bytes()).unwrap();
                n += 1;
                written.store(n, Ordering::SeqCst);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        start.elapsed()
    })
}

/// Seqs counted by the runs so far, each with how often.
fn counted(before: &HashMap<u64, u32>, run: &Running) -> HashMap<u64, u32> {
    let mut all = before.clone();
    for (&n, &c) in &run.rec().counts {
        *all.entry(n).or_default() += c;
    }
    all
}

/// Waits until every seq of `want` has been counted.
fn wait_counted(before: &HashMap<u64, u32>, run: &Running, want: &BTreeSet<u64>, what: &str) {
    let start = Instant::now();
    loop {
        let all = counted(before, run);
        let missing: Vec<u64> = want
            .iter()
            .filter(|n| !all.contains_key(n))
            .copied()
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: {} lines on disk never counted (first {:?}); events: {:?}",
            missing.len(),
            &missing[..missing.len().min(10)],
            run.rec()
                .events
                .iter()
                .filter(|e| !matches!(e, Ev::CheckpointWritten))
                .take(60)
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn run_scenario(s: Scenario) {
    let logs = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let lr = tempfile::tempdir().unwrap();
    let log = logs.path().join("app.log");
    let conf = lr.path().join("logrotate.conf");
    let lr_state = lr.path().join("status");
    fs::write(
        &conf,
        format!("\"{}\" {{\n{}\n}}\n", log.display(), s.directives),
    )
    .unwrap();
    fs::write(&log, b"").unwrap();

    let mut cfg = config(vec![pat(logs.path(), "app.log*")], true);
    cfg.state_dir = Some(state.path().to_path_buf());
    let mut run = Running::start_with(cfg.clone(), None, true);

    let written = Arc::new(AtomicU64::new(0));
    let reopen = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = spawn_writer(log.clone(), written.clone(), reopen.clone(), stop.clone());

    let mut seen = BTreeSet::new();
    let mut before: HashMap<u64, u32> = HashMap::new();
    let mut first_run = Vec::new();
    let restart_at = s.rotations / 2;
    for k in 0..s.rotations {
        // Pacing, not an assertion.
        std::thread::sleep(s.spacing);
        // What is on disk now was reached by the follower before this run may compress or
        // delete it (in production it has a whole rotation period, hours, for that).
        wait_counted(&before, &run, &seen, "before a rotation");
        if k == restart_at {
            let rec = run.stop();
            for (&n, &c) in &rec.counts {
                *before.entry(n).or_default() += c;
            }
            first_run = rec.raw;
            // One rotation while nobody follows, then writing goes on.
            logrotate(&conf, &lr_state);
            if s.reopen {
                reopen.store(true, Ordering::SeqCst);
            }
            seen.extend(on_disk(logs.path()));
            std::thread::sleep(s.spacing / 2);
            run = Running::start_with(cfg.clone(), None, true);
            continue;
        }
        logrotate(&conf, &lr_state);
        if s.reopen {
            reopen.store(true, Ordering::SeqCst);
        }
        seen.extend(on_disk(logs.path()));
    }
    std::thread::sleep(s.spacing);
    stop.store(true, Ordering::SeqCst);
    let elapsed = writer.join().unwrap();
    let total = written.load(Ordering::SeqCst);
    seen.extend(on_disk(logs.path()));
    wait_counted(&before, &run, &seen, "at the end");
    // Past every pending copy's expiry (rotate_wait), where the old follower read a copy it had
    // deferred from offset 0; then one more line, read in a later pass.
    std::thread::sleep(cfg.rotate_wait + Duration::from_millis(300));
    append(&log, &line(total));
    seen.insert(total);
    run.wait_lines(&[total]);
    let rec = run.stop();

    let all = {
        let mut all = before;
        for (&n, &c) in &rec.counts {
            *all.entry(n).or_default() += c;
        }
        all
    };
    for l in first_run.iter().chain(&rec.raw) {
        assert!(
            seq_of(l).is_some(),
            "garbled line counted: {:?}",
            String::from_utf8_lossy(l)
        );
    }
    let mut dup: Vec<(u64, u32)> = all
        .iter()
        .filter(|(_, &c)| c > 1)
        .map(|(&n, &c)| (n, c))
        .collect();
    dup.sort_unstable();
    let invented: Vec<u64> = all.keys().filter(|&&n| n > total).copied().collect();
    let destroyed: BTreeSet<u64> = (0..total).filter(|n| !seen.contains(n)).collect();
    let destroyed_counted = destroyed.iter().filter(|n| all.contains_key(n)).count();
    eprintln!(
        "{:?}: {total} lines in {elapsed:.1?} ({:.0} lines/s), {} on disk, {} counted; \
         {} destroyed by copytruncate between copy and truncation, {destroyed_counted} of them \
         counted (read before the truncation); events: truncated={} rotated={} opened={} closed={} skipped_compressed={}",
        s.directives.replace('\n', " "),
        total as f64 / elapsed.as_secs_f64(),
        seen.len(),
        all.len(),
        destroyed.len(),
        rec.count_events(|e| matches!(e, Ev::Truncated(_))),
        rec.count_events(|e| matches!(e, Ev::Rotated(_))),
        rec.count_events(|e| matches!(e, Ev::Opened(..))),
        rec.count_events(|e| matches!(e, Ev::Closed(_))),
        rec.count_events(|e| matches!(e, Ev::SkippedCompressed(..))),
    );
    assert!(
        dup.is_empty(),
        "{} lines counted twice (first {:?})",
        dup.len(),
        &dup[..dup.len().min(10)]
    );
    assert!(invented.is_empty(), "never written: {invented:?}");
    // Counted == on disk, plus only lines that copytruncate destroyed.
    let lost: Vec<u64> = seen
        .iter()
        .filter(|n| !all.contains_key(n))
        .copied()
        .collect();
    assert!(
        lost.is_empty(),
        "{} lines on disk never counted",
        lost.len()
    );
    if !s.directives.contains("copytruncate") {
        // Nothing destroys a line under `create`: the oracle itself is exact there.
        assert!(
            destroyed.is_empty(),
            "{} lines missing from disk",
            destroyed.len()
        );
        assert_eq!(all.len() as u64, total + 1);
    }
}

#[test]
fn create_rotate_3() {
    run_scenario(Scenario {
        directives: "create\nrotate 3",
        reopen: true,
        rotations: 5,
        spacing: Duration::from_millis(300),
    });
}

#[test]
fn copytruncate_rotate_3() {
    run_scenario(Scenario {
        directives: "copytruncate\nrotate 3",
        reopen: false,
        rotations: 5,
        spacing: Duration::from_millis(300),
    });
}

#[test]
fn create_compress_delaycompress() {
    run_scenario(Scenario {
        directives: "create\ncompress\ndelaycompress\nrotate 3",
        reopen: true,
        rotations: 5,
        spacing: Duration::from_millis(300),
    });
}

#[test]
fn copytruncate_compress_delaycompress() {
    run_scenario(Scenario {
        directives: "copytruncate\ncompress\ndelaycompress\nrotate 3",
        reopen: false,
        rotations: 5,
        spacing: Duration::from_millis(300),
    });
}

#[test]
fn copytruncate_dateext_compress_delaycompress() {
    run_scenario(Scenario {
        directives:
            "copytruncate\ndateext\ndateformat -%Y%m%d-%H%M%S\ncompress\ndelaycompress\nrotate 3",
        reopen: false,
        rotations: 3,
        spacing: Duration::from_millis(1050),
    });
}
