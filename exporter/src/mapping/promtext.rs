//! A parser for the Prometheus text exposition format, as much as re-exporting a node's native
//! metrics needs: samples with their labels. Comments, types and timestamps are skipped; malformed
//! lines are counted, never fatal.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Samples of `text`, and how many lines could not be parsed.
pub fn parse(text: &str) -> (Vec<Sample>, usize) {
    let mut out = Vec::new();
    let mut bad = 0;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Some(s) => out.push(s),
            None => bad += 1,
        }
    }
    (out, bad)
}

fn parse_line(line: &str) -> Option<Sample> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        let consumed;
        loop {
            // skip separators
            while let Some((_, c)) = chars.peek() {
                if *c == ',' || c.is_whitespace() {
                    chars.next();
                } else {
                    break;
                }
            }
            match chars.peek() {
                Some((i, '}')) => {
                    consumed = i + 1;
                    break;
                }
                None => return None,
                _ => {}
            }
            let mut key = String::new();
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            let key = key.trim().to_string();
            if key.is_empty() || chars.next().map(|(_, c)| c) != Some('"') {
                return None;
            }
            let mut val = String::new();
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => match chars.next().map(|(_, c)| c) {
                        Some('n') => val.push('\n'),
                        Some(other) => val.push(other),
                        None => return None,
                    },
                    '"' => {
                        closed = true;
                        break;
                    }
                    other => val.push(other),
                }
            }
            if !closed {
                return None;
            }
            labels.insert(key, val);
        }
        rest = &r[consumed..];
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_samples_labels_and_escapes() {
        let text = "# HELP x y\n# TYPE bitcell_chain_height gauge\nbitcell_chain_height 120\n\
                    bitcell_peer_count{region=\"us-east\",node=\"a \\\"b\\\"\"} 4 1700000000000\n\
                    garbage line here\nbad{unclosed=\"x} 1\n";
        let (s, bad) = parse(text);
        assert_eq!(bad, 2);
        assert_eq!(s.len(), 2);
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
        ] {
            let _ = parse(junk);
        }
    }
}
