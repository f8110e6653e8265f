//! Prometheus durations, the one grammar every chainwatch file uses (sidecar config, thresholds,
//! simulated fleets): `[0-9]+` followed by a unit, units from largest to smallest and each at most
//! once: `1y2w3d4h5m6s7ms`. `0` alone is zero. This is exactly what Prometheus's
//! `model.ParseDuration` accepts, so a value copied between a chainwatch file and a Prometheus
//! configuration means the same in both.

use std::fmt;

/// A duration in whole milliseconds, Prometheus's own resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub u64);

/// Why a text is not a duration. The messages are what the users' error lines show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("empty duration")]
    Empty,
    #[error("`{0}` is not a duration (use a number and a unit: ms, s, m, h, d, w, y; e.g. `90s`, `1h30m`)")]
    Syntax(String),
    #[error("`{0}`: units must go from largest to smallest, each once")]
    Order(String),
    #[error("`{0}` is too long (at most about 292 years)")]
    Overflow(String),
}

/// Units from largest to smallest with their length in milliseconds.
const UNITS: &[(&str, u64)] = &[
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Prometheus keeps durations as int64 nanoseconds; anything longer is refused there, so here too.
const MAX_MS: u64 = (i64::MAX as u64) / 1_000_000;

impl Duration {
    pub const ZERO: Duration = Duration(0);

    pub fn parse(s: &str) -> Result<Duration, Error> {
        let s = s.trim();
        if s == "0" {
            return Ok(Duration::ZERO);
        }
        if s.is_empty() {
            return Err(Error::Empty);
        }
        let syntax = || Error::Syntax(s.to_string());
        let mut total: u64 = 0;
        let mut rest = s;
        let mut next_unit = 0; // index into UNITS of the largest unit still allowed
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(syntax());
            }
            let n: u64 = rest[..digits]
                .parse()
                .map_err(|_| Error::Overflow(s.to_string()))?;
            rest = &rest[digits..];
            // The longest unit name that starts here ("ms" before "m").
            let (idx, (name, mult)) = UNITS
                .iter()
                .enumerate()
                .filter(|(_, (u, _))| rest.starts_with(u))
                .max_by_key(|(_, (u, _))| u.len())
                .ok_or_else(syntax)?;
            if idx < next_unit {
                return Err(Error::Order(s.to_string()));
            }
            next_unit = idx + 1;
            rest = &rest[name.len()..];
            total = n
                .checked_mul(*mult)
                .and_then(|v| total.checked_add(v))
                .filter(|t| *t <= MAX_MS)
                .ok_or_else(|| Error::Overflow(s.to_string()))?;
        }
        Ok(Duration(total))
    }

    pub fn from_millis(ms: u64) -> Duration {
        Duration(ms)
    }

    pub fn from_secs(s: u64) -> Duration {
        Duration(s * 1000)
    }

    pub fn ms(self) -> u64 {
        self.0
    }

    pub fn secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn times(self, k: u64) -> Duration {
        Duration(self.0 * k)
    }

    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0)
    }
}

/// Parse straight to a `std::time::Duration`, what the run-time code (timers, sleeps) wants.
pub fn parse_std(s: &str) -> Result<std::time::Duration, Error> {
    Duration::parse(s).map(Duration::to_std)
}

/// Print a `std::time::Duration` in the canonical form (whole milliseconds).
pub fn format_std(d: std::time::Duration) -> String {
    Duration(d.as_millis().min(u128::from(MAX_MS)) as u64).to_string()
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Duration {
        Duration(d.as_millis().min(u128::from(MAX_MS)) as u64)
    }
}

/// The canonical form Prometheus itself prints: `90s` → `1m30s`, zero → `0s`.
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

impl std::str::FromStr for Duration {
    type Err = Error;
    fn from_str(s: &str) -> Result<Duration, Error> {
        Duration::parse(s)
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
    fn parses_the_prometheus_grammar_and_prints_canonically() {
        for (s, ms, canon) in [
            ("15s", 15_000, "15s"),
            ("90s", 90_000, "1m30s"),
            ("1h30m", 5_400_000, "1h30m"),
            ("5d", 432_000_000, "5d"),
            ("1w", 604_800_000, "1w"),
            ("1y2w3d4h5m6s7ms", 33_019_506_007, "1y2w3d4h5m6s7ms"),
            ("500ms", 500, "500ms"),
            ("250ms", 250, "250ms"),
            ("0s", 0, "0s"),
            ("0", 0, "0s"),
            (" 5m ", 300_000, "5m"),
        ] {
            let d = Duration::parse(s).unwrap();
            assert_eq!(d.ms(), ms, "{s}");
            assert_eq!(d.to_string(), canon, "{s}");
        }
    }

    #[test]
    fn rejects_what_prometheus_rejects() {
        for s in [
            "", "5", "5 m", "m5", "1.5m", "5x", "30m1h", "1m1m", "-1m", "1ms1s", "1sm", "1h 30m",
        ] {
            assert!(Duration::parse(s).is_err(), "{s} should not parse");
        }
        assert_eq!(Duration::parse("30m1h"), Err(Error::Order("30m1h".into())));
        assert_eq!(
            Duration::parse("5 minutes").unwrap_err().to_string(),
            "`5 minutes` is not a duration (use a number and a unit: ms, s, m, h, d, w, y; e.g. `90s`, `1h30m`)"
        );
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        assert!(Duration::parse("292y").is_ok());
        assert!(matches!(Duration::parse("293y"), Err(Error::Overflow(_))));
        assert!(matches!(
            Duration::parse("99999999999999999999999s"),
            Err(Error::Overflow(_))
        ));
        assert!(matches!(
            Duration::parse("18446744073709551615ms"),
            Err(Error::Overflow(_))
        ));
    }

    #[test]
    fn std_round_trip() {
        assert_eq!(
            parse_std("1m30s").unwrap(),
            std::time::Duration::from_secs(90)
        );
        assert_eq!(
            format_std(std::time::Duration::from_millis(1500)),
            "1s500ms"
        );
        assert_eq!(format_std(std::time::Duration::from_secs(1)), "1s");
    }
}
