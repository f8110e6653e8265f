//! Prometheus's template functions that format a sample value — `humanize`,
//! `humanizePercentage`, `humanizeDuration` — as Prometheus 2 renders them (Go's `%.4g`), so a
//! generated test can expect an annotation holding `{{ $value | humanize }}` exactly.

use crate::model::ValueFormat;

/// `{{ $value | <function> }}`
pub fn template(f: ValueFormat) -> String {
    format!("{{{{ $value | {} }}}}", f.function())
}

/// The value as the template function renders it.
pub fn render(f: ValueFormat, v: f64) -> String {
    match f {
        ValueFormat::Number => humanize(v),
        ValueFormat::Percent => format!("{}%", g4(v * 100.0)),
        ValueFormat::Duration => humanize_duration(v),
    }
}

/// `{{ $value | f }}` (spaces as written) → the format `f`; `None` for anything else.
pub fn value_template(inner: &str) -> Option<ValueFormat> {
    let (v, f) = inner.split_once('|')?;
    if v.trim() != "$value" {
        return None;
    }
    ValueFormat::ALL
        .into_iter()
        .find(|x| x.function() == f.trim())
}

/// Go's `fmt.Sprintf("%.4g", v)`: 4 significant digits, trailing zeros dropped, an exponent
/// (`1.235e+06`) below 1e-4 and from 1e4 on.
fn g4(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let e = format!("{v:.3e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..4).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim_zeros(mantissa), exp.abs())
    } else {
        let decimals = (3 - exp) as usize;
        trim_zeros(&format!("{v:.decimals$}"))
    }
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// Down by thousands with the prefixes below 1 (`m`, `u`, …), as `humanize` does.
fn small(mut v: f64) -> (f64, &'static str) {
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    (v, prefix)
}

fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return g4(v);
    }
    if v.abs() >= 1.0 {
        let mut prefix = "";
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
        return format!("{}{prefix}", g4(v));
    }
    let (v, prefix) = small(v);
    format!("{}{prefix}", g4(v))
}

fn humanize_duration(mut v: f64) -> String {
    if !v.is_finite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() < 1.0 {
        let (v, prefix) = small(v);
        return format!("{}{prefix}s", g4(v));
    }
    let sign = if v < 0.0 { "-" } else { "" };
    v = v.abs();
    let d = v as i64;
    let (s, m, h, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
    if days != 0 {
        format!("{sign}{days}d {h}h {m}m {s}s")
    } else if h != 0 {
        format!("{sign}{h}h {m}m {s}s")
    } else if m != 0 {
        format!("{sign}{m}m {s}s")
    } else {
        format!("{sign}{}s", g4(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values as Prometheus 2.42 renders them (read back from promtool with an alert whose
    /// annotations hold the three functions).
    #[test]
    fn renders_as_prometheus() {
        let cases: &[(f64, &str, &str, &str)] = &[
            (0.0, "0", "0%", "0s"),
            (1.0, "1", "100%", "1s"),
            (0.5, "500m", "50%", "500ms"),
            (0.428571428571, "428.6m", "42.86%", "428.6ms"),
            (999.95, "1000", "1e+05%", "16m 39s"),
            (1234567.0, "1.235M", "1.235e+08%", "14d 6h 56m 7s"),
            (0.00012345, "123.4u", "0.01234%", "123.4us"),
            (12345.678, "12.35k", "1.235e+06%", "3h 25m 45s"),
            (90000.0, "90k", "9e+06%", "1d 1h 0m 0s"),
            (1e-9, "1n", "1e-07%", "1ns"),
            (-0.5, "-500m", "-50%", "-500ms"),
            (0.99995, "1000m", "100%", "1000ms"),
            (0.12345, "123.5m", "12.35%", "123.5ms"),
        ];
        for (v, h, p, d) in cases {
            assert_eq!(render(ValueFormat::Number, *v), *h, "humanize {v}");
            assert_eq!(
                render(ValueFormat::Percent, *v),
                *p,
                "humanizePercentage {v}"
            );
            assert_eq!(
                render(ValueFormat::Duration, *v),
                *d,
                "humanizeDuration {v}"
            );
        }
    }

    #[test]
    fn templates_parse() {
        assert_eq!(
            value_template("$value | humanizePercentage"),
            Some(ValueFormat::Percent)
        );
        assert_eq!(value_template("$value|humanize"), Some(ValueFormat::Number));
        assert_eq!(value_template("$value"), None);
        assert_eq!(value_template("$labels.node | humanize"), None);
    }
}
