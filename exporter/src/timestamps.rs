//! A line's own time, where the profiles say it is (`time:`), for `replay --timestamps`: a
//! syslog or journal prefix (`Jan  5 12:00:00`, no year, local time), ISO 8601 (`2025-01-05T12:00:00Z`,
//! `2025-01-05 12:00:00,123` as Python's logging writes it, `+0000` as `journalctl -o short-iso`
//! does; without an offset, local time), Unix seconds or milliseconds; at the start of a line,
//! in a regex's `time` capture, or in a field of a JSON line (seed 000's `"timestamp"`).
//! Local time is the zone of the machine replaying (`TZ=UTC` to read such times as UTC).

use chrono::{DateTime, Datelike, Local, NaiveDateTime, TimeZone};
use regex::bytes::Regex;

use crate::profile::{LoadErrors, Loaded};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Syslog,
    Iso8601,
    Unix,
    UnixMs,
}

impl Format {
    fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "syslog" => Format::Syslog,
            "iso8601" => Format::Iso8601,
            "unix" => Format::Unix,
            "unix_ms" => Format::UnixMs,
            _ => return None,
        })
    }

    /// The format's own pattern at the start of a line.
    fn pattern(self) -> &'static str {
        match self {
            Format::Syslog => r"^\[?(?P<time>[A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2}(?:\.\d+)?)",
            Format::Iso8601 => {
                r"^\[?(?P<time>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)"
            }
            Format::Unix => r"^\[?(?P<time>\d{9,10}(?:\.\d+)?)\b",
            Format::UnixMs => r"^\[?(?P<time>\d{12,13})\b",
        }
    }
}

enum How {
    Regex(Regex),
    Json(String),
}

struct One {
    how: How,
    format: Format,
}

/// The places the loaded profiles name, in order (profile by profile).
pub struct LineTime {
    specs: Vec<One>,
    now: DateTime<Local>,
}

impl LineTime {
    pub fn compile(profiles: &[Loaded]) -> Result<LineTime, LoadErrors> {
        let mut specs = Vec::new();
        let mut errs = Vec::new();
        for p in profiles {
            for (i, t) in p.spec.time.iter().enumerate() {
                let field = format!("time[{i}]");
                let Some(format) = Format::parse(&t.format) else {
                    errs.push(p.positions.error(
                        format!("{field}.format"),
                        format!(
                            "unknown time format `{}` (syslog, iso8601, unix, unix_ms)",
                            t.format
                        ),
                    ));
                    continue;
                };
                let how = match (&t.regex, &t.json) {
                    (Some(_), Some(_)) => {
                        errs.push(
                            p.positions
                                .error(&field, "give `regex` or `json`, not both"),
                        );
                        continue;
                    }
                    (None, Some(j)) => How::Json(j.clone()),
                    (r, None) => {
                        let src = r.as_deref().unwrap_or(format.pattern());
                        match Regex::new(src) {
                            Ok(re) if re.capture_names().any(|n| n == Some("time")) => {
                                How::Regex(re)
                            }
                            Ok(_) => {
                                errs.push(p.positions.error(
                                    format!("{field}.regex"),
                                    "the regex needs a capture named `time`",
                                ));
                                continue;
                            }
                            Err(e) => {
                                errs.push(
                                    p.positions.error(format!("{field}.regex"), e.to_string()),
                                );
                                continue;
                            }
                        }
                    }
                };
                specs.push(One { how, format });
            }
        }
        if !errs.is_empty() {
            return Err(LoadErrors::new(errs));
        }
        if specs.is_empty() {
            for f in [Format::Syslog, Format::Iso8601] {
                specs.push(One {
                    how: How::Regex(Regex::new(f.pattern()).expect("built-in pattern")),
                    format: f,
                });
            }
        }
        Ok(LineTime {
            specs,
            now: Local::now(),
        })
    }

    /// The line's time in milliseconds since the epoch, from the first place that parses.
    pub fn time_of(&self, line: &[u8]) -> Option<i64> {
        self.specs.iter().find_map(|s| self.one(s, line))
    }

    fn one(&self, s: &One, line: &[u8]) -> Option<i64> {
        match &s.how {
            How::Regex(re) => {
                let c = re.captures(line)?;
                let t = std::str::from_utf8(c.name("time")?.as_bytes()).ok()?;
                parse(t, s.format, self.now)
            }
            How::Json(field) => {
                let start = line.iter().position(|&b| b == b'{')?;
                let v: serde_json::Value = serde_json::from_slice(&line[start..]).ok()?;
                let x = if field.starts_with('/') {
                    v.pointer(field)?
                } else {
                    v.get(field)?
                };
                match x {
                    serde_json::Value::String(t) => parse(t, s.format, self.now),
                    serde_json::Value::Number(n) => {
                        let f = n.as_f64()?;
                        Some(match s.format {
                            Format::UnixMs => f as i64,
                            _ => (f * 1000.0) as i64,
                        })
                    }
                    _ => None,
                }
            }
        }
    }
}

fn local_ms(t: NaiveDateTime) -> Option<i64> {
    Local
        .from_local_datetime(&t)
        .earliest()
        .map(|d| d.timestamp_millis())
}

/// `t` read as `format`; `now` decides the year a syslog time leaves out (this year, unless that
/// puts it more than a day into the future: then last year, as for a December log read in
/// January).
pub fn parse(t: &str, format: Format, now: DateTime<Local>) -> Option<i64> {
    match format {
        Format::Unix => t.parse::<f64>().ok().map(|s| (s * 1000.0).round() as i64),
        Format::UnixMs => t.parse::<i64>().ok(),
        Format::Iso8601 => {
            let t = t.replace(',', ".").replacen(' ', "T", 1);
            if let Ok(d) = DateTime::parse_from_rfc3339(&t) {
                return Some(d.timestamp_millis());
            }
            if let Ok(d) = DateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f%z") {
                return Some(d.timestamp_millis());
            }
            let n = NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
            local_ms(n)
        }
        Format::Syslog => {
            let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
            let this = now.year();
            for year in [this, this - 1] {
                let n =
                    NaiveDateTime::parse_from_str(&format!("{year} {t}"), "%Y %b %d %H:%M:%S%.f")
                        .ok()?;
                let ms = local_ms(n)?;
                if ms <= now.timestamp_millis() + 86_400_000 {
                    return Some(ms);
                }
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc_now() -> DateTime<Local> {
        Local::now()
    }

    #[test]
    fn iso_8601_in_the_forms_logs_write() {
        let n = utc_now();
        let at = |s| parse(s, Format::Iso8601, n);
        assert_eq!(at("2025-10-30T12:00:00Z"), Some(1_761_825_600_000));
        assert_eq!(at("2025-10-30T14:00:00+02:00"), Some(1_761_825_600_000));
        assert_eq!(at("2025-10-30T12:00:00+0000"), Some(1_761_825_600_000));
        assert_eq!(at("2025-10-30T12:00:00.250Z"), Some(1_761_825_600_250));
        assert_eq!(at("2025-10-30 12:00:00,250Z"), Some(1_761_825_600_250));
        assert_eq!(at("2025-13-30T12:00:00Z"), None);
        assert_eq!(
            parse("1761825600.5", Format::Unix, n),
            Some(1_761_825_600_500)
        );
    }

    #[test]
    fn syslog_times_take_the_year_that_is_not_in_the_future() {
        let now = Local.with_ymd_and_hms(2026, 1, 3, 12, 0, 0).unwrap();
        let dec = parse("Dec 30 23:59:59", Format::Syslog, now).unwrap();
        let jan = parse("Jan  2 00:00:01", Format::Syslog, now).unwrap();
        let want_dec = local_ms(
            NaiveDateTime::parse_from_str("2025-12-30 23:59:59", "%Y-%m-%d %H:%M:%S").unwrap(),
        )
        .unwrap();
        assert_eq!(dec, want_dec);
        assert_eq!(jan - dec, (24 + 24) * 3_600_000 + 2_000);
        assert_eq!(parse("Foo 30 23:59:59", Format::Syslog, now), None);
    }
}
