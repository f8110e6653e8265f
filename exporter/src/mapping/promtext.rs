//! A reader of the Prometheus text exposition format, as much as re-exporting a node's native
//! metrics needs: one sample per line, with borrowed name, labels and value, and nothing
//! allocated unless a label's value has escapes and is asked for. Comments (HELP, TYPE, `# EOF`),
//! timestamps and exemplars are skipped; a line that is not a sample is reported, never fatal.

use std::borrow::Cow;
use std::collections::BTreeMap;

/// One sample line, borrowed from the text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line<'a> {
    pub name: &'a str,
    /// Between the braces, checked well-formed.
    labels: &'a str,
    /// As written: `NaN`, `+Inf` and `-Inf` (and out-of-range numbers) are not finite.
    pub value: f64,
}

impl<'a> Line<'a> {
    /// The value of label `name`, unescaped.
    pub fn label(&self, name: &str) -> Option<Cow<'a, str>> {
        pairs(self.labels)
            .map_while(Result::ok)
            .find(|(k, _)| *k == name)
            .map(|(_, v)| unescape(v))
    }

    /// Every label, unescaped.
    pub fn labels(&self) -> impl Iterator<Item = (&'a str, Cow<'a, str>)> {
        pairs(self.labels)
            .map_while(Result::ok)
            .map(|(k, v)| (k, unescape(v)))
    }
}

/// The samples of `text` in order: `Err(line number)` for a line that is not one.
pub fn lines(text: &str) -> impl Iterator<Item = Result<Line<'_>, usize>> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        Some(parse_line(line).ok_or(i + 1))
    })
}

/// An owned sample (tests and tools; the sources read with [`lines`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample of `text`, and how many lines are not samples.
pub fn parse(text: &str) -> (Vec<Sample>, usize) {
    let mut out = Vec::new();
    let mut bad = 0;
    for l in lines(text) {
        match l {
            Ok(l) => out.push(Sample {
                name: l.name.to_string(),
                labels: l
                    .labels()
                    .map(|(k, v)| (k.to_string(), v.into_owned()))
                    .collect(),
                value: l.value,
            }),
            Err(_) => bad += 1,
        }
    }
    (out, bad)
}

fn is_name(s: &str, colon: bool) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

fn parse_line(line: &str) -> Option<Line<'_>> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_ascii_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if !is_name(name, true) {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = "";
    if let Some(r) = rest.strip_prefix('{') {
        let end = labels_end(r)?;
        labels = &r[..end];
        rest = &r[end + 1..];
    }
    // The value must be separated from the name or the braces; a timestamp may follow.
    if !rest.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let mut fields = rest.split_ascii_whitespace();
    let value = match fields.next()? {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        // Rust also reads `inf` and `nan` in any case: the format does not.
        v if v
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && !matches!(b, b'e' | b'E')) =>
        {
            return None
        }
        v => v.parse().ok()?,
    };
    // A timestamp, then perhaps an OpenMetrics exemplar: `# {labels} value [timestamp]`.
    let mut next = fields.next();
    if next.is_some_and(|ts| ts.parse::<i64>().is_ok()) {
        next = fields.next();
    }
    if next.is_some_and(|f| f != "#") {
        return None;
    }
    Some(Line {
        name,
        labels,
        value,
    })
}

/// Where the label set opened before `r` closes, if it is well-formed.
fn labels_end(r: &str) -> Option<usize> {
    let mut it = pairs(r);
    loop {
        match it.next()? {
            Ok(_) => {}
            Err(End::Closed(at)) => return Some(at),
            Err(End::Bad) => return None,
        }
    }
}

enum End {
    /// The byte offset of the closing brace.
    Closed(usize),
    Bad,
}

/// `k="v"` pairs from just after `{`, raw values; ends at `}` (or a malformed pair).
fn pairs(s: &str) -> impl Iterator<Item = Result<(&str, &str), End>> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let skip = |i: &mut usize| {
            while *i < bytes.len() && (bytes[*i] == b',' || bytes[*i].is_ascii_whitespace()) {
                *i += 1;
            }
        };
        skip(&mut i);
        if i < bytes.len() && bytes[i] == b'}' {
            done = true;
            return Some(Err(End::Closed(i)));
        }
        let bad = |done: &mut bool| {
            *done = true;
            Some(Err(End::Bad))
        };
        let key_start = i;
        while i < bytes.len() && bytes[i] != b'=' && bytes[i] != b'}' {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'=' {
            return bad(&mut done);
        }
        let key = s[key_start..i].trim();
        if !is_name(key, false) {
            return bad(&mut done);
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'"' {
            return bad(&mut done);
        }
        i += 1;
        let v_start = i;
        loop {
            match bytes.get(i) {
                None => return bad(&mut done),
                Some(b'\\') => {
                    if i + 1 >= bytes.len() {
                        return bad(&mut done);
                    }
                    i += 2;
                }
                Some(b'"') => break,
                Some(_) => i += 1,
            }
        }
        let value = &s[v_start..i];
        i += 1;
        // A pair ends at a comma, blanks, or the closing brace.
        if i < bytes.len() && !matches!(bytes[i], b',' | b'}') && !bytes[i].is_ascii_whitespace() {
            return bad(&mut done);
        }
        Some(Ok((key, value)))
    })
}

fn unescape(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            },
            other => out.push(other),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_samples_labels_and_escapes() {
        let text = "# HELP x y\n# TYPE bitcell_chain_height gauge\nbitcell_chain_height 120\n\
                    bitcell_peer_count{region=\"us-east\",node=\"a \\\"b\\\"\"} 4 1700000000000\n\
                    garbage line here\nbad{unclosed=\"x} 1\nx{a=\"1\",} 2 # {trace_id=\"t\"} 1\n# EOF\n";
        let (s, bad) = parse(text);
        assert_eq!(bad, 2);
        assert_eq!(s.len(), 3);
        assert_eq!(
            s[0],
            Sample {
                name: "bitcell_chain_height".into(),
                labels: BTreeMap::new(),
                value: 120.0
            }
        );
        assert_eq!(s[1].labels["node"], "a \"b\"");
        assert_eq!(s[1].value, 4.0);
        assert_eq!(s[2].labels["a"], "1");
        let bad: Vec<usize> = lines(text).filter_map(Result::err).collect();
        assert_eq!(bad, [5, 6]);
    }

    #[test]
    fn borrowed_lines_allocate_only_escaped_labels() {
        let l = lines("m{a=\"x\",b=\"y\\\\z\"} 1").next().unwrap().unwrap();
        assert!(matches!(l.label("a"), Some(Cow::Borrowed("x"))));
        assert_eq!(l.label("b").as_deref(), Some("y\\z"));
        assert_eq!(l.label("c"), None);
    }

    #[test]
    fn non_finite_values_are_samples_that_say_so() {
        let (s, bad) = parse("a NaN\nb +Inf\nc -Inf\nd 1e999\ne inf\nf nan\ng 0x10\n");
        assert_eq!(bad, 3, "{s:?}");
        assert!(s.iter().all(|x| !x.value.is_finite()));
    }

    #[test]
    fn never_panics_on_junk() {
        for junk in [
            "{",
            "}",
            "a{",
            "a{b",
            "a{b=",
            "a{b=\"",
            "a{b=\"\\",
            "a{} x",
            "a 1e999999",
            "\u{0}\u{1}",
            "a{b=\"c\"d=\"e\"} 1",
            "a{b=\"c\"}1",
            "a 1 2 3",
            "a{ü=\"x\"} 1",
        ] {
            let (s, bad) = parse(junk);
            assert!(s.is_empty() || junk == "a 1e999999", "{junk:?}: {s:?}");
            assert!(bad <= 1);
        }
    }
}
