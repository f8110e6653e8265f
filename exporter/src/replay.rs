//! `replay`: read logs start to EOF through the profiles and print the metrics — how a user tests a
//! profile on a real log before deploying it. Rotated files compressed by logrotate (`.gz`) are
//! read decompressed; which files are compressed is told by their first bytes, not their names.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use chainwatch_follow::{Compression, LineAssembler};

use crate::engine::split_lines;
use crate::pipeline::Pipeline;

/// Read every log and return the metrics in the text format.
pub fn replay(p: &mut Pipeline, logs: &[PathBuf], max_line_bytes: usize) -> Result<String> {
    let stats = p.engine.source_stats(&mut p.metrics, "replay")?;
    let engine = &p.engine;
    let mut scratch = engine.scratch();
    for log in logs {
        let truncated = read_lines(log, max_line_bytes, &mut |chunk| {
            engine.process(chunk, &stats, &mut scratch)
        })?;
        stats.truncated.inc_by(truncated as f64);
    }
    Ok(p.metrics.encode())
}

/// Shapes of lines kept at most; lines of further shapes are counted together.
pub const MAX_SHAPES: usize = 10_000;

/// Read every log and report the most frequent shapes of the lines no rule matched (`top` of
/// them): what a profile misses on this node's log.
pub fn unmatched(
    p: &mut Pipeline,
    logs: &[PathBuf],
    max_line_bytes: usize,
    top: usize,
) -> Result<String> {
    let stats = p.engine.source_stats(&mut p.metrics, "replay")?;
    let engine = &p.engine;
    let mut scratch = engine.scratch();
    let mut shapes = Shapes::default();
    let mut lines = 0u64;
    for log in logs {
        read_lines(log, max_line_bytes, &mut |chunk| {
            for line in split_lines(chunk) {
                lines += 1;
                if !engine.process_line(line, &stats, &mut scratch) {
                    shapes.add(line);
                }
            }
        })?;
    }
    Ok(shapes.report(lines, top))
}

/// Feed `out` chunks of whole lines of `log`, decompressed if it is gzip. Returns how many lines
/// were truncated at `max_line_bytes`.
fn read_lines(log: &Path, max_line_bytes: usize, out: &mut dyn FnMut(&[u8])) -> Result<usize> {
    let f = File::open(log).with_context(|| format!("opening {}", log.display()))?;
    let mut reader = open(log, f)?;
    let mut asm = LineAssembler::new(max_line_bytes);
    let mut buf = vec![0u8; 256 * 1024];
    let mut truncated = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", log.display())),
        };
        if n == 0 {
            break;
        }
        truncated += asm.push(&buf[..n], out);
    }
    truncated += asm.finish(out);
    Ok(truncated)
}

/// The file's bytes as text: gzip members (what logrotate's `compress` writes, also several
/// concatenated) are decompressed; other compressions are refused rather than matched as text.
/// The format is told by the first bytes, as the follower tells the rotations it skips.
pub(crate) fn open(log: &Path, f: File) -> Result<Box<dyn Read>> {
    let mut r = BufReader::with_capacity(256 * 1024, f);
    let head = r
        .fill_buf()
        .with_context(|| format!("reading {}", log.display()))?;
    let head = &head[..head.len().min(chainwatch_follow::SNIFF_BYTES)];
    match chainwatch_follow::compression_of(head) {
        None => Ok(Box::new(r)),
        Some(Compression::Gzip) => Ok(Box::new(flate2::bufread::MultiGzDecoder::new(r))),
        Some(other) => bail!(
            "{} is {}-compressed; only gzip is read: decompress it first (`{} -dc {} | …`, then replay the output)",
            log.display(),
            other.name(),
            other.name(),
            log.display()
        ),
    }
}

/// Counts of line shapes: a line with its variable parts (numbers, ids, hashes, addresses)
/// replaced, so that a thousand heartbeats are one shape.
#[derive(Default)]
struct Shapes {
    by_shape: HashMap<String, (u64, String)>,
    /// Lines whose shape came after `MAX_SHAPES` others.
    overflow: u64,
    total: u64,
}

impl Shapes {
    fn add(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.total += 1;
        let text = String::from_utf8_lossy(line);
        let s = shape(&text);
        if let Some(e) = self.by_shape.get_mut(&s) {
            e.0 += 1;
        } else if self.by_shape.len() < MAX_SHAPES {
            self.by_shape.insert(s, (1, clip(&text, 160)));
        } else {
            self.overflow += 1;
        }
    }

    fn report(&self, lines: u64, top: usize) -> String {
        let mut v: Vec<(&String, &(u64, String))> = self.by_shape.iter().collect();
        v.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(b.0)));
        let pct = if lines == 0 {
            0.0
        } else {
            100.0 * self.total as f64 / lines as f64
        };
        let mut out = format!(
            "# {} of {lines} lines ({pct:.1}%) matched no rule, in {} shapes{}; the most frequent:\n",
            self.total,
            self.by_shape.len(),
            if self.overflow > 0 {
                format!(" (+{} lines of shapes past the first {MAX_SHAPES})", self.overflow)
            } else {
                String::new()
            }
        );
        for (s, (n, example)) in v.into_iter().take(top) {
            out.push_str(&format!("{n:>9}  {s}\n           e.g. {example}\n"));
        }
        out
    }
}

/// `2025-11-08 23:20:01 [INFO] Received block 0000a1b2 at height 5` →
/// `<n>-<n>-<n> <n>:<n>:<n> [INFO] Received block <*> at height <n>`: runs of letters and digits
/// are kept when they hold no digit, `<n>` when they are all digits, `<*>` otherwise.
pub fn shape(line: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.is_empty() {
            return;
        }
        if word.chars().all(|c| c.is_ascii_digit()) {
            out.push_str("<n>");
        } else if word.chars().any(|c| c.is_ascii_digit()) {
            out.push_str("<*>");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in line.chars() {
        if c.is_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            // Runs of blanks are one blank: alignment padding is not a different shape.
            if c.is_whitespace() {
                if !out.ends_with(' ') {
                    out.push(' ');
                }
            } else {
                out.push(c);
            }
        }
    }
    flush(&mut word, &mut out);
    clip(out.trim(), 200)
}

fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_hide_what_varies() {
        assert_eq!(
            shape("2025-11-08 23:20:01 [INFO] Received block 0000a1b2 at height 5"),
            "<n>-<n>-<n> <n>:<n>:<n> [INFO] Received block <*> at height <n>"
        );
        assert_eq!(
            shape("peer 10.0.0.7:8444   disconnected"),
            "peer <n>.<n>.<n>.<n>:<n> disconnected"
        );
        assert_eq!(
            shape("📡 Broadcasting CID bafy2bzace"),
            "📡 Broadcasting CID <*>"
        );
    }
}
