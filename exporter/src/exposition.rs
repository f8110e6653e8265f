//! The exposition formats: Prometheus's classic text format (`text/plain; version=0.0.4`) and
//! OpenMetrics 1.0 text (`application/openmetrics-text; version=1.0.0`), written straight from the
//! collected families, with the content negotiation of client_golang's promhttp.
//!
//! Why not the prometheus crate's `TextEncoder` over `Registry::gather`: for every series, gather
//! clones the registry's constant labels into the series and the encoder escapes and formats
//! through `fmt` one small string at a time — most of a scrape's cost at 10k series
//! (`exporter/examples/scrape_cost.rs` measures each step). Here the constant labels are
//! escaped once per registry, values go through `itoa`/`ryu`, and the crate has no OpenMetrics
//! encoder at all. Registration and collection stay the crate's.

use prometheus::proto::{LabelPair, Metric, MetricFamily, MetricType};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The classic text format, 0.0.4.
    Text,
    /// OpenMetrics text 1.0.0 (`# EOF`, counters as `_total` samples of a family without it,
    /// `# UNIT`).
    OpenMetrics,
}

pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }

    /// The format for an `Accept` header, as promhttp chooses with OpenMetrics enabled: the
    /// acceptable media ranges by descending quality (ties keep their order), the first one this
    /// sidecar speaks wins; the classic text format when nothing matches or nothing is asked.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let mut ranges: Vec<(f32, usize, Option<Format>)> = Vec::new();
        for (i, part) in accept.split(',').enumerate() {
            let mut params = part.split(';').map(str::trim);
            let media = params.next().unwrap_or("").to_ascii_lowercase();
            let (mut q, mut version) = (1.0f32, None);
            for p in params {
                if let Some((k, v)) = p.split_once('=') {
                    let v = v.trim().trim_matches('"');
                    match k.trim().to_ascii_lowercase().as_str() {
                        "q" => q = v.parse().unwrap_or(0.0),
                        "version" => version = Some(v.to_string()),
                        _ => {}
                    }
                }
            }
            if q <= 0.0 {
                continue;
            }
            let v = version.as_deref();
            let fmt = match media.as_str() {
                "application/openmetrics-text" if matches!(v, None | Some("1.0.0" | "0.0.1")) => {
                    Some(Format::OpenMetrics)
                }
                "text/plain" if matches!(v, None | Some("0.0.4")) => Some(Format::Text),
                // Anything else acceptable (`*/*`, protobuf, which is not served) falls to text.
                _ => None,
            };
            ranges.push((q, i, fmt));
        }
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        ranges
            .into_iter()
            .find_map(|(_, _, f)| f)
            .unwrap_or(Format::Text)
    }
}

/// Whether `Accept-Encoding` allows gzip (`gzip`, `gzip;q=0.5`, `*`; not `gzip;q=0`).
pub fn gzip_accepted(accept_encoding: Option<&str>) -> bool {
    let Some(h) = accept_encoding else {
        return false;
    };
    let mut star = None;
    for part in h.split(',') {
        let mut it = part.split(';').map(str::trim);
        let coding = it.next().unwrap_or("").to_ascii_lowercase();
        let q = it
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .map_or(1.0, |(_, v)| v.trim().parse::<f32>().unwrap_or(0.0));
        match coding.as_str() {
            "gzip" | "x-gzip" => return q > 0.0,
            "*" => star = Some(q > 0.0),
            _ => {}
        }
    }
    star.unwrap_or(false)
}

/// A writer of one exposition: families from one or more registries, then (OpenMetrics) `# EOF`.
pub struct Encoder {
    out: Vec<u8>,
    format: Format,
    /// Series by label values (`ordered`), or as collected.
    ordered: bool,
}

impl Encoder {
    pub fn new(format: Format, capacity: usize) -> Encoder {
        Encoder {
            out: Vec::with_capacity(capacity),
            format,
            ordered: true,
        }
    }

    /// Series of a family in collection order instead of by label values: what scrapes use.
    /// Neither format asks for an order and Prometheus does not need one, while ordering 10k
    /// series is a sixth of a scrape's CPU time; the order of a family's series only changes
    /// when series come or go. `replay` and `Metrics::encode` keep the ordered output.
    pub fn in_collection_order(mut self) -> Encoder {
        self.ordered = false;
        self
    }

    /// Write `families`, each series with the registry's constant labels `consts`. `unit` names
    /// a family's unit (`seconds`) for OpenMetrics' `# UNIT`; the catalog knows it.
    pub fn families(
        &mut self,
        families: &[MetricFamily],
        consts: &Labels,
        unit: &dyn Fn(&str) -> Option<&'static str>,
    ) {
        for mf in families {
            if !mf.get_metric().is_empty() {
                self.family(mf, consts, unit(mf.name()));
            }
        }
    }

    pub fn finish(mut self) -> Vec<u8> {
        if self.format == Format::OpenMetrics {
            self.out.extend_from_slice(b"# EOF\n");
        }
        self.out
    }

    fn family(&mut self, mf: &MetricFamily, consts: &Labels, unit: Option<&str>) {
        let kind_of = mf.get_field_type();
        let name = mf.name();
        let help = mf.help();
        let om = self.format == Format::OpenMetrics;
        // OpenMetrics names a counter family without its `_total`; its samples keep it.
        let family = match (om, kind_of) {
            (true, MetricType::COUNTER) => name.strip_suffix("_total").unwrap_or(name),
            _ => name,
        };
        let kind = match kind_of {
            MetricType::COUNTER => "counter",
            MetricType::GAUGE => "gauge",
            MetricType::HISTOGRAM => "histogram",
            // The registry holds only what the catalog defines: counters, gauges, histograms.
            MetricType::SUMMARY | MetricType::UNTYPED => return,
        };
        let o = &mut self.out;
        if !help.is_empty() {
            o.extend_from_slice(b"# HELP ");
            o.extend_from_slice(family.as_bytes());
            o.push(b' ');
            escape(o, help, om);
            o.push(b'\n');
        }
        o.extend_from_slice(b"# TYPE ");
        o.extend_from_slice(family.as_bytes());
        o.push(b' ');
        o.extend_from_slice(kind.as_bytes());
        o.push(b'\n');
        if let (true, Some(unit)) = (om, unit) {
            // The unit must be the family name's suffix; the catalog guarantees it for its names.
            if family.ends_with(unit) {
                o.extend_from_slice(b"# UNIT ");
                o.extend_from_slice(family.as_bytes());
                o.push(b' ');
                o.extend_from_slice(unit.as_bytes());
                o.push(b'\n');
            }
        }
        let les: Vec<(f64, String)> = match (kind_of, mf.get_metric().first()) {
            (MetricType::HISTOGRAM, Some(first)) => first
                .get_histogram()
                .get_bucket()
                .iter()
                .map(|b| (b.upper_bound(), le_string(b.upper_bound(), om)))
                .collect(),
            _ => Vec::new(),
        };
        let series: Vec<&Metric> = if self.ordered {
            ordered(mf.get_metric())
        } else {
            mf.get_metric().iter().collect()
        };
        for s in series {
            match kind_of {
                MetricType::COUNTER => sample(
                    o,
                    name,
                    "",
                    s.get_label(),
                    consts,
                    None,
                    s.get_counter().get_value(),
                ),
                MetricType::GAUGE => sample(
                    o,
                    name,
                    "",
                    s.get_label(),
                    consts,
                    None,
                    s.get_gauge().get_value(),
                ),
                MetricType::HISTOGRAM => histogram(o, name, s, consts, &les, om),
                MetricType::SUMMARY | MetricType::UNTYPED => {}
            }
        }
    }
}

/// Series by label values, as `Registry::gather` orders them, so scrapes and `replay` are
/// deterministic. References are sorted, not the series: moving 10k series of a few hundred
/// bytes each costs more than the comparisons (label names are in the same order in every series
/// of a vector, so values are compared position by position).
pub fn ordered(series: &[Metric]) -> Vec<&Metric> {
    let mut v: Vec<&Metric> = series.iter().collect();
    if v.len() > 1 && v.iter().all(|m| m.get_label().len() == 1) {
        // The common large family (one series per peer, validator, …): one value to compare.
        v.sort_unstable_by(|a, b| a.get_label()[0].value().cmp(b.get_label()[0].value()));
    } else if v.len() > 1 {
        v.sort_unstable_by(|a, b| {
            a.get_label()
                .iter()
                .map(|l| l.value())
                .cmp(b.get_label().iter().map(|l| l.value()))
        });
    }
    v
}

/// `les`: the family's bucket bounds, rendered once for all its series (a vector shares them).
fn histogram(
    o: &mut Vec<u8>,
    name: &str,
    s: &Metric,
    consts: &Labels,
    les: &[(f64, String)],
    om: bool,
) {
    let h = s.get_histogram();
    let labels = s.get_label();
    let mut saw_inf = false;
    for (i, b) in h.get_bucket().iter().enumerate() {
        let bound = b.upper_bound();
        saw_inf |= bound == f64::INFINITY;
        let owned;
        let le = match les.get(i).filter(|(b, _)| *b == bound) {
            Some((_, l)) => l.as_str(),
            None => {
                owned = le_string(bound, om);
                &owned
            }
        };
        sample(
            o,
            name,
            "_bucket",
            labels,
            consts,
            Some(("le", le)),
            b.cumulative_count() as f64,
        );
    }
    if !saw_inf {
        sample(
            o,
            name,
            "_bucket",
            labels,
            consts,
            Some(("le", "+Inf")),
            h.get_sample_count() as f64,
        );
    }
    sample(o, name, "_sum", labels, consts, None, h.get_sample_sum());
    sample(
        o,
        name,
        "_count",
        labels,
        consts,
        None,
        h.get_sample_count() as f64,
    );
}

fn sample(
    o: &mut Vec<u8>,
    name: &str,
    suffix: &str,
    labels: &[LabelPair],
    consts: &Labels,
    extra: Option<(&str, &str)>,
    value: f64,
) {
    o.extend_from_slice(name.as_bytes());
    o.extend_from_slice(suffix.as_bytes());
    if !labels.is_empty() || !consts.is_empty() || extra.is_some() {
        o.push(b'{');
        let mut first = true;
        let mut sep = |o: &mut Vec<u8>| {
            if !first {
                o.push(b',');
            }
            first = false;
        };
        // A series' own labels are sorted by name (the crate sorts them); merge the constant
        // ones in by name.
        let mut c = consts.0.iter().peekable();
        for l in labels {
            while let Some((_, rendered)) = c.next_if(|(k, _)| k.as_str() < l.name()) {
                sep(o);
                o.extend_from_slice(rendered.as_bytes());
            }
            sep(o);
            o.extend_from_slice(l.name().as_bytes());
            o.extend_from_slice(b"=\"");
            escape(o, l.value(), true);
            o.push(b'"');
        }
        for (_, rendered) in c {
            sep(o);
            o.extend_from_slice(rendered.as_bytes());
        }
        if let Some((k, v)) = extra {
            sep(o);
            o.extend_from_slice(k.as_bytes());
            o.extend_from_slice(b"=\"");
            o.extend_from_slice(v.as_bytes());
            o.push(b'"');
        }
        o.push(b'}');
    }
    o.push(b' ');
    put_value(o, value);
    o.push(b'\n');
}

/// A registry's constant labels, each rendered once (`chain="x"`), sorted by name. Every series
/// carries them, merged by name with its own labels: all labels in name order, as client_golang
/// writes them, so the same state is the same text in every process.
#[derive(Debug, Clone, Default)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    pub fn new(labels: &[(String, String)]) -> Labels {
        let mut v: Vec<(String, String)> = labels
            .iter()
            .map(|(k, val)| {
                let mut o = Vec::new();
                o.extend_from_slice(k.as_bytes());
                o.extend_from_slice(b"=\"");
                escape(&mut o, val, true);
                o.push(b'"');
                (k.clone(), String::from_utf8(o).unwrap_or_default())
            })
            .collect();
        v.sort();
        Labels(v)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Label values escape `\`, `"` and newline; HELP escapes `\` and newline (and `"` in
/// OpenMetrics, as client_golang does).
fn escape(o: &mut Vec<u8>, s: &str, quote: bool) {
    let b = s.as_bytes();
    let next = |from: usize| {
        if quote {
            memchr::memchr3(b'\\', b'"', b'\n', &b[from..])
        } else {
            memchr::memchr2(b'\\', b'\n', &b[from..])
        }
    };
    let mut start = 0;
    while let Some(i) = next(start) {
        let at = start + i;
        o.extend_from_slice(&b[start..at]);
        o.extend_from_slice(match b[at] {
            b'\\' => b"\\\\",
            b'"' => b"\\\"",
            _ => b"\\n",
        });
        start = at + 1;
    }
    o.extend_from_slice(&b[start..]);
}

/// A sample value: integers as integers, other finite values in the shortest form that reads
/// back to the same float, and `+Inf`, `-Inf`, `NaN` as both formats spell them.
fn put_value(o: &mut Vec<u8>, v: f64) {
    if v.is_finite() && v == v.trunc() && v.abs() < 1e15 {
        let mut b = itoa::Buffer::new();
        o.extend_from_slice(b.format(v as i64).as_bytes());
    } else {
        let mut b = ryu::Buffer::new();
        o.extend_from_slice(float_str(&mut b, v).as_bytes());
    }
}

fn float_str(b: &mut ryu::Buffer, v: f64) -> &str {
    if v.is_nan() {
        "NaN"
    } else if v == f64::INFINITY {
        "+Inf"
    } else if v == f64::NEG_INFINITY {
        "-Inf"
    } else {
        b.format_finite(v)
    }
}

/// A bucket bound, as client_golang writes it: Go's shortest `%g` (`0.005`, `1`, `1e+06`), and
/// in OpenMetrics with `.0` on integers (`1.0`), the canonical form OpenMetrics parsers check.
fn le_string(v: f64, om: bool) -> String {
    if v.is_finite() {
        go_float(v, om)
    } else {
        float_str(&mut ryu::Buffer::new(), v).to_string()
    }
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`: the shortest digits that read back to `v`, in
/// exponent form when the decimal exponent is below -4 or at least 6 (`1e+06`, `1e-05`). With
/// `point`, `.0` is added when the result has neither a `.` nor an exponent (OpenMetrics).
fn go_float(v: f64, point: bool) -> String {
    // `{:e}` gives the shortest round-trip digits: `1.25e-3`, `1e0`, `1.2e2`.
    let sci = format!("{v:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mant) = match mant.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mant),
    };
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
        return out;
    }
    if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
            if point {
                out.push_str(".0");
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_quality_then_order() {
        use Format::*;
        assert_eq!(Format::negotiate(None), Text);
        assert_eq!(Format::negotiate(Some("")), Text);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")),
            OpenMetrics
        );
        assert_eq!(
            Format::negotiate(Some("text/plain;q=0.9, application/openmetrics-text;q=0.5")),
            Text
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text; version=\"1.0.0\"")),
            OpenMetrics
        );
        assert_eq!(
            Format::negotiate(Some("Application/OpenMetrics-Text")),
            OpenMetrics
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;version=2.0.0")),
            Text
        );
        assert_eq!(Format::negotiate(Some("text/plain;version=1.0.0")), Text);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0, text/plain")),
            Text
        );
    }

    #[test]
    fn gzip_is_accepted_unless_refused() {
        assert!(gzip_accepted(Some("gzip")));
        assert!(gzip_accepted(Some("deflate, GZIP;q=0.1")));
        assert!(gzip_accepted(Some("br, *")));
        assert!(!gzip_accepted(Some("gzip;q=0")));
        assert!(!gzip_accepted(Some("*;q=0")));
        assert!(!gzip_accepted(Some("identity")));
        assert!(!gzip_accepted(None));
    }

    #[test]
    fn floats_are_formatted_as_go_does() {
        for (v, text, om) in [
            (1.0, "1", "1.0"),
            (0.005, "0.005", "0.005"),
            (2.5, "2.5", "2.5"),
            (120.0, "120", "120.0"),
            (0.0001, "0.0001", "0.0001"),
            (0.00001, "1e-05", "1e-05"),
            (1e6, "1e+06", "1e+06"),
            (123456.0, "123456", "123456.0"),
            (1234567.0, "1.234567e+06", "1.234567e+06"),
            (-0.5, "-0.5", "-0.5"),
            (f64::INFINITY, "+Inf", "+Inf"),
        ] {
            assert_eq!(le_string(v, false), text, "{v}");
            assert_eq!(le_string(v, true), om, "{v}");
        }
        let mut o = Vec::new();
        for v in [3.0, -2.0, 0.125, f64::NAN, f64::NEG_INFINITY, 1e300] {
            put_value(&mut o, v);
            o.push(b' ');
        }
        assert_eq!(String::from_utf8(o).unwrap(), "3 -2 0.125 NaN -Inf 1e300 ");
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut o = Vec::new();
        escape(&mut o, "a\\b\"c\nd", true);
        assert_eq!(o, b"a\\\\b\\\"c\\nd");
        o.clear();
        escape(&mut o, "say \"x\"\n", false);
        assert_eq!(o, b"say \"x\"\\n");
        let l = Labels::new(&[("node".into(), "n\"1".into()), ("chain".into(), "c".into())]);
        assert_eq!(l.0[0].1, "chain=\"c\"");
        assert_eq!(l.0[1].1, "node=\"n\\\"1\"");
    }

    #[test]
    fn both_formats_from_one_registry() {
        use prometheus::core::Collector;
        let c = prometheus::CounterVec::new(
            prometheus::Opts::new("chain_blocks_mined_total", "Blocks."),
            &["peer"],
        )
        .unwrap();
        c.with_label_values(&["b"]).inc_by(2.0);
        c.with_label_values(&["a"]).inc();
        let h = prometheus::Histogram::with_opts(
            prometheus::HistogramOpts::new("chain_x_seconds", "X.").buckets(vec![0.5, 1.0]),
        )
        .unwrap();
        h.observe(0.7);
        let mut fams = c.collect();
        fams.extend(h.collect());
        let unit = |n: &str| n.ends_with("_seconds").then_some("seconds");
        let mut e = Encoder::new(Format::Text, 0);
        let consts = Labels::new(&[("node".into(), "n1".into()), ("chain".into(), "c".into())]);
        e.families(&fams, &consts, &unit);
        assert_eq!(
            String::from_utf8(e.finish()).unwrap(),
            "# HELP chain_blocks_mined_total Blocks.\n# TYPE chain_blocks_mined_total counter\n\
             chain_blocks_mined_total{chain=\"c\",node=\"n1\",peer=\"a\"} 1\n\
             chain_blocks_mined_total{chain=\"c\",node=\"n1\",peer=\"b\"} 2\n\
             # HELP chain_x_seconds X.\n# TYPE chain_x_seconds histogram\n\
             chain_x_seconds_bucket{chain=\"c\",node=\"n1\",le=\"0.5\"} 0\n\
             chain_x_seconds_bucket{chain=\"c\",node=\"n1\",le=\"1\"} 1\n\
             chain_x_seconds_bucket{chain=\"c\",node=\"n1\",le=\"+Inf\"} 1\n\
             chain_x_seconds_sum{chain=\"c\",node=\"n1\"} 0.7\n\
             chain_x_seconds_count{chain=\"c\",node=\"n1\"} 1\n"
        );
        let mut e = Encoder::new(Format::OpenMetrics, 0);
        e.families(&fams, &Labels::default(), &unit);
        assert_eq!(
            String::from_utf8(e.finish()).unwrap(),
            "# HELP chain_blocks_mined Blocks.\n# TYPE chain_blocks_mined counter\n\
             chain_blocks_mined_total{peer=\"a\"} 1\n\
             chain_blocks_mined_total{peer=\"b\"} 2\n\
             # HELP chain_x_seconds X.\n# TYPE chain_x_seconds histogram\n# UNIT chain_x_seconds seconds\n\
             chain_x_seconds_bucket{le=\"0.5\"} 0\n\
             chain_x_seconds_bucket{le=\"1.0\"} 1\n\
             chain_x_seconds_bucket{le=\"+Inf\"} 1\n\
             chain_x_seconds_sum 0.7\n\
             chain_x_seconds_count 1\n\
             # EOF\n"
        );
    }
}
