//! Times on the command line: `now`, RFC 3339 (`2026-01-05T12:00:00Z`), or Unix seconds — the
//! forms Prometheus's API takes.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Unix seconds.
pub fn parse(s: &str) -> Result<f64, String> {
    if s == "now" {
        return Ok(now());
    }
    if let Ok(v) = s.parse::<f64>() {
        if v.is_finite() && v >= 0.0 {
            return Ok(v);
        }
    }
    let t = humantime::parse_rfc3339_weak(s).map_err(|e| {
        format!("`{s}` is not a time (now, RFC 3339 such as 2026-01-05T12:00:00Z, or Unix seconds): {e}")
    })?;
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .map_err(|_| format!("`{s}` is before 1970"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_the_forms_prometheus_takes() {
        assert_eq!(parse("1700000000.5").unwrap(), 1_700_000_000.5);
        assert_eq!(parse("2023-11-14T22:13:20Z").unwrap(), 1_700_000_000.0);
        assert!(parse("yesterday").is_err());
        assert!(parse("-5").is_err());
        assert!((parse("now").unwrap() - now()).abs() < 60.0);
    }
}
