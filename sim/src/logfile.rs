//! Journal-style log files (`Nov 21 10:00:01 <host> <unit>[pid]: message`), appended a line at a
//! time with one write each, so a follower never sees a partial line for long.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

pub struct LogFile {
    pub path: PathBuf,
    file: File,
}

impl LogFile {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(LogFile {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Append one line (the newline is added).
    pub fn write_line(&mut self, line: &str) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        self.file.write_all(&buf)
    }
}

/// `Nov 21 10:00:01`, the syslog/journal short timestamp, in UTC.
pub fn syslog_timestamp(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (_, m, d) = civil_from_days(days);
    format!(
        "{} {:2} {:02}:{:02}:{:02}",
        MONTHS[(m - 1) as usize],
        d,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A small deterministic generator (xorshift64*): values vary, runs are reproducible per node.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn seeded(s: &str) -> Self {
        // FNV-1a of the seed string; never zero.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in s.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Rng(h | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in [lo, hi].
    pub fn int(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    pub fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(n);
        s
    }
}

/// Deterministic events at a fraction `rate`: `hit()` is true for exactly ⌊n·rate⌋ (or one more)
/// of n calls, evenly spread, so a test can rely on the ratio.
#[derive(Debug, Clone, Default)]
pub struct Accumulator(f64);

impl Accumulator {
    pub fn hit(&mut self, rate: f64) -> bool {
        self.0 += rate;
        if self.0 >= 1.0 - 1e-9 {
            self.0 -= 1.0;
            true
        } else {
            false
        }
    }

    /// How many of `n` events are hit.
    pub fn hits(&mut self, rate: f64, n: u64) -> u64 {
        (0..n).filter(|_| self.hit(rate)).count() as u64
    }

    pub fn reset(&mut self) {
        self.0 = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_journal_style() {
        // 2025-11-21T10:00:01Z
        let t = UNIX_EPOCH + Duration::from_secs(1_763_719_201);
        assert_eq!(syslog_timestamp(t), "Nov 21 10:00:01");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_251_199); // 2024-02-29T23:59:59Z
        assert_eq!(syslog_timestamp(t), "Feb 29 23:59:59");
        let t = UNIX_EPOCH + Duration::from_secs(1_704_067_200); // 2024-01-01
        assert_eq!(syslog_timestamp(t), "Jan  1 00:00:00");
    }

    #[test]
    fn accumulator_is_exact() {
        let mut a = Accumulator::default();
        assert_eq!(a.hits(0.25, 100), 25);
        let mut a = Accumulator::default();
        assert_eq!(a.hits(0.1, 1000), 100);
        let mut a = Accumulator::default();
        assert_eq!(a.hits(1.0, 7), 7);
    }

    #[test]
    fn rng_is_reproducible() {
        let (mut a, mut b) = (Rng::seeded("n1"), Rng::seeded("n1"));
        assert_eq!(a.next_u64(), b.next_u64());
        for _ in 0..1000 {
            let x = a.range(2.0, 3.0);
            assert!((2.0..3.0).contains(&x));
            let i = a.int(3, 5);
            assert!((3..=5).contains(&i));
        }
    }
}
