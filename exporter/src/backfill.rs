//! `replay --timestamps --format openmetrics`: a log replayed as the history a sidecar that had
//! been running would have left in Prometheus, ready for
//! `promtool tsdb create-blocks-from openmetrics`.
//!
//! Each line counts at its own time (the profiles' `time:`; an entry of `journalctl -o json` or
//! `-o export` at its `__REALTIME_TIMESTAMP`). The series are sampled every `resolution` (a
//! scrape interval), each sample the state after every line up to that instant — counters as
//! they would have been scraped, the first sample one interval before the first line (the
//! scrape before it). A line without a time of its own is counted at the time of the line
//! before it (a continuation of the same message) and reported; before any timed line it is
//! not counted at all, and reported; nothing is ever placed at "now". A line older than one
//! before it counts at the later time (time does not go back) and is reported.
//!
//! Memory holds each series' changes, not its samples: a week at 15s of a quiet counter is one
//! value. Only `chain_*` series are written: the sidecar's own would be history it never had.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chainwatch_follow::LineAssembler;
use chainwatch_journal::{json_entry, ExportReader};

use crate::engine::{Scratch, SourceStats};
use crate::pipeline::Pipeline;
use crate::timestamps::LineTime;

/// How the input is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Told by the first bytes: `journalctl -o json`, `-o export`, else lines of text.
    Auto,
    Text,
    JournalJson,
    JournalExport,
}

/// What the replay found, for the report on stderr.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub lines: u64,
    /// Lines counted at the time of the line before them (no time of their own).
    pub inherited: u64,
    /// Lines before any timed line: not counted.
    pub untimed_dropped: u64,
    /// Lines older than one before them, counted at the later time.
    pub out_of_order: u64,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    pub series: usize,
    pub samples: u64,
}

impl Report {
    pub fn text(&self) -> String {
        let t = |ms: Option<i64>| {
            ms.map(|m| {
                chrono::DateTime::from_timestamp_millis(m)
                    .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default()
            })
            .unwrap_or_else(|| "-".into())
        };
        format!(
            "replay: {} lines from {} to {}; {} series, {} samples; {} line(s) without a time of their own counted at the time of the line before them, {} before any timed line not counted, {} older than a line before them counted at the later time",
            self.lines,
            t(self.first_ms),
            t(self.last_ms),
            self.series,
            self.samples,
            self.inherited,
            self.untimed_dropped,
            self.out_of_order
        )
    }
}

/// One series' history: the tick of its first sample and its value at each change.
struct History {
    first: u64,
    changes: Vec<(u64, f64)>,
}

struct Timeline {
    resolution: i64,
    /// Time of tick 0 (ms).
    start: Option<i64>,
    /// Next tick to sample.
    next: u64,
    /// Lines processed since the last sample.
    dirty: bool,
    clock: i64,
    series: BTreeMap<String, History>,
}

impl Timeline {
    fn tick_time(&self, k: u64) -> i64 {
        self.start.unwrap_or(0) + k as i64 * self.resolution
    }

    /// Sample tick `k` from the registry (only when something changed since the last one).
    fn sample(&mut self, p: &Pipeline, k: u64) {
        if !self.dirty && k > 0 {
            return;
        }
        self.dirty = false;
        for line in p.metrics.encode().lines() {
            if !line.starts_with("chain_") {
                continue;
            }
            let Some((key, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let v = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                "NaN" => f64::NAN,
                x => match x.parse() {
                    Ok(v) => v,
                    Err(_) => continue,
                },
            };
            let h = self.series.entry(key.to_string()).or_insert(History {
                first: k,
                changes: Vec::new(),
            });
            let same = h
                .changes
                .last()
                .is_some_and(|(_, last)| last.to_bits() == v.to_bits());
            if !same {
                h.changes.push((k, v));
            }
        }
    }

    /// Sample every tick before `t`, then count the line at `t`.
    fn advance(&mut self, p: &Pipeline, t: i64) {
        if self.start.is_none() {
            // The scrape before the first line: the state the sidecar started with.
            self.start = Some(t - self.resolution);
            self.sample(p, 0);
            self.next = 1;
        }
        while self.tick_time(self.next) < t {
            let k = self.next;
            self.sample(p, k);
            self.next += 1;
        }
        self.clock = t;
    }
}

/// Replay `logs` with timestamps and write OpenMetrics to `out`.
pub fn backfill(
    p: &mut Pipeline,
    times: &LineTime,
    logs: &[PathBuf],
    input: Input,
    resolution_ms: u64,
    max_line_bytes: usize,
    out: &mut dyn Write,
) -> Result<Report> {
    let stats = p.engine.source_stats(&mut p.metrics, "replay")?;
    let mut scratch = p.engine.scratch();
    let mut tl = Timeline {
        resolution: resolution_ms.max(1) as i64,
        start: None,
        next: 0,
        dirty: false,
        clock: i64::MIN,
        series: BTreeMap::new(),
    };
    let mut rep = Report::default();
    for log in logs {
        let mut r = open(log)?;
        let kind = match input {
            Input::Auto => sniff(&mut r).with_context(|| format!("reading {}", log.display()))?,
            k => k,
        };
        let mut feed = |line: &[u8], entry_ms: Option<i64>| {
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            count_line(
                p,
                &stats,
                &mut scratch,
                times,
                &mut tl,
                &mut rep,
                line,
                entry_ms,
            );
        };
        match kind {
            Input::JournalExport => {
                let mut er = ExportReader::new(r, max_line_bytes);
                while let Some(e) = er
                    .next_entry()
                    .with_context(|| format!("reading {}", log.display()))?
                {
                    let ms = e.realtime_us.map(|us| (us / 1000) as i64);
                    for m in &e.messages {
                        for l in m.split(|&b| b == b'\n') {
                            feed(l, ms);
                        }
                    }
                }
            }
            Input::JournalJson => {
                lines(&mut r, max_line_bytes, log, &mut |rec| {
                    let rec = rec.strip_suffix(b"\n").unwrap_or(rec);
                    if rec.iter().all(u8::is_ascii_whitespace) {
                        return;
                    }
                    match json_entry(rec) {
                        Ok(e) => {
                            let ms = e.realtime_us.map(|us| (us / 1000) as i64);
                            for m in &e.messages {
                                for l in m.split(|&b| b == b'\n') {
                                    feed(l, ms);
                                }
                            }
                        }
                        // A record that is no entry is a line like any other (without a time).
                        Err(_) => feed(rec, None),
                    }
                })?;
            }
            Input::Text | Input::Auto => {
                lines(&mut r, max_line_bytes, log, &mut |l| feed(l, None))?;
            }
        }
    }
    // The state after the last line, at the first tick not before it.
    if rep.last_ms.is_some() {
        while tl.tick_time(tl.next) < tl.clock {
            let k = tl.next;
            tl.sample(p, k);
            tl.next += 1;
        }
        let k = tl.next;
        tl.sample(p, k);
        tl.next += 1;
    }
    write(&tl, &mut rep, out)?;
    Ok(rep)
}

#[allow(clippy::too_many_arguments)]
fn count_line(
    p: &Pipeline,
    stats: &SourceStats,
    scratch: &mut Scratch,
    times: &LineTime,
    tl: &mut Timeline,
    rep: &mut Report,
    line: &[u8],
    entry_ms: Option<i64>,
) {
    rep.lines += 1;
    let t = entry_ms.or_else(|| times.time_of(line));
    let t = match t {
        Some(t) => t,
        None if tl.start.is_some() => {
            rep.inherited += 1;
            tl.clock
        }
        None => {
            rep.untimed_dropped += 1;
            return;
        }
    };
    let t = if tl.start.is_some() && t < tl.clock {
        rep.out_of_order += 1;
        tl.clock
    } else {
        t
    };
    tl.advance(p, t);
    rep.first_ms.get_or_insert(t);
    rep.last_ms = Some(t);
    p.engine.process_line(line, stats, scratch);
    tl.dirty = true;
}

/// OpenMetrics: every series' samples in time order, series of one name together, `# EOF`.
fn write(tl: &Timeline, rep: &mut Report, out: &mut dyn Write) -> Result<()> {
    let last = tl.next.saturating_sub(1);
    let mut w = std::io::BufWriter::with_capacity(1 << 20, out);
    for (key, h) in &tl.series {
        rep.series += 1;
        let mut i = 0;
        for k in h.first..=last {
            while i + 1 < h.changes.len() && h.changes[i + 1].0 <= k {
                i += 1;
            }
            let Some(&(_, v)) = h.changes.get(i) else {
                continue;
            };
            let t = tl.tick_time(k);
            let (secs, ms) = (t.div_euclid(1000), t.rem_euclid(1000));
            writeln!(w, "{key} {} {secs}.{ms:03}", value(v)).context("writing the output")?;
            rep.samples += 1;
        }
    }
    writeln!(w, "# EOF").context("writing the output")?;
    w.flush().context("writing the output")?;
    Ok(())
}

fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// `-` is standard input; a gzip file is read decompressed (as `replay` reads it).
fn open(log: &Path) -> Result<Box<dyn BufRead>> {
    if log.as_os_str() == "-" {
        return Ok(Box::new(BufReader::with_capacity(
            256 * 1024,
            std::io::stdin(),
        )));
    }
    let f = File::open(log).with_context(|| format!("opening {}", log.display()))?;
    let r = crate::replay::open(log, f)?;
    Ok(Box::new(BufReader::with_capacity(256 * 1024, r)))
}

/// What the first bytes say the input is.
fn sniff(r: &mut Box<dyn BufRead>) -> std::io::Result<Input> {
    let head = r.fill_buf()?;
    let first = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
    Ok(
        if first.starts_with(b"__CURSOR=") || first.starts_with(b"__REALTIME_TIMESTAMP=") {
            Input::JournalExport
        } else if first.starts_with(b"{")
            && memchr::memmem::find(first, b"\"__REALTIME_TIMESTAMP\"").is_some()
        {
            Input::JournalJson
        } else {
            Input::Text
        },
    )
}

/// Whole lines of `r` (each with its newline), cut at `max_line_bytes`.
fn lines(
    r: &mut Box<dyn BufRead>,
    max_line_bytes: usize,
    log: &Path,
    out: &mut dyn FnMut(&[u8]),
) -> Result<()> {
    let mut asm = LineAssembler::new(max_line_bytes);
    let mut buf = vec![0u8; 256 * 1024];
    let mut each = |chunk: &[u8]| {
        for l in chunk.split_inclusive(|&b| b == b'\n') {
            out(l);
        }
    };
    loop {
        let n = match r.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", log.display())),
        };
        if n == 0 {
            break;
        }
        asm.push(&buf[..n], &mut each);
    }
    asm.finish(&mut each);
    Ok(())
}
