//! Prometheus durations (`90s`, `1m30s`, `2h`, `1w`), parsed to milliseconds and printed back in
//! the canonical form Prometheus itself prints.

use std::fmt;

/// A duration in whole milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub u64);

const UNITS: &[(&str, u64)] = &[
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

impl Duration {
    pub const ZERO: Duration = Duration(0);

    pub fn ms(self) -> u64 {
        self.0
    }

    pub fn secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Parse `1h30m`, `15s`, `500ms`, `0s` (and `0`). Units must be in decreasing order, each once.
    pub fn parse(s: &str) -> Result<Duration, String> {
        let s = s.trim();
        if s == "0" {
            return Ok(Duration(0));
        }
        if s.is_empty() {
            return Err("empty duration".into());
        }
        let bad = || {
            format!("`{s}` is not a duration (use a number and a unit: ms, s, m, h, d, w, y; e.g. `90s`, `1h30m`)")
        };
        let mut total: u64 = 0;
        let mut rest = s;
        let mut last_unit = usize::MAX;
        while !rest.is_empty() {
            let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 {
                return Err(bad());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            // "ms" before "m".
            let (idx, len, mult) = if rest.starts_with("ms") {
                (6, 2, 1)
            } else {
                match UNITS
                    .iter()
                    .position(|(u, _)| u.len() == 1 && rest.starts_with(u))
                {
                    Some(i) => (i, 1, UNITS[i].1),
                    None => return Err(bad()),
                }
            };
            if last_unit != usize::MAX && idx <= last_unit {
                return Err(format!(
                    "`{s}`: units must go from largest to smallest, each once"
                ));
            }
            last_unit = idx;
            rest = &rest[len..];
            total = n
                .checked_mul(mult)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| format!("`{s}` is too long"))?;
        }
        Ok(Duration(total))
    }

    pub fn from_secs(s: u64) -> Duration {
        Duration(s * 1000)
    }

    pub fn times(self, k: u64) -> Duration {
        Duration(self.0 * k)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        let mut ms = self.0;
        for (u, mult) in UNITS {
            if ms >= *mult {
                write!(f, "{}{}", ms / mult, u)?;
                ms %= mult;
            }
        }
        Ok(())
    }
}

impl std::ops::Add for Duration {
    type Output = Duration;
    fn add(self, o: Duration) -> Duration {
        Duration(self.0 + o.0)
    }
}

pub fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_canonically() {
        for (s, ms, canon) in [
            ("15s", 15_000, "15s"),
            ("90s", 90_000, "1m30s"),
            ("1h30m", 5_400_000, "1h30m"),
            ("1w", 604_800_000, "1w"),
            ("500ms", 500, "500ms"),
            ("0s", 0, "0s"),
            ("0", 0, "0s"),
        ] {
            let d = Duration::parse(s).unwrap();
            assert_eq!(d.ms(), ms, "{s}");
            assert_eq!(d.to_string(), canon, "{s}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "5", "5 m", "m5", "1.5m", "5x", "30m1h", "1m1m", "-1m"] {
            assert!(Duration::parse(s).is_err(), "{s} should not parse");
        }
    }
}
