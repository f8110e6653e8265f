//! Helpers shared by the fuzz targets: reference models that the real code is checked against.

use chainwatch_exporter::mapping::promtext::Sample;
use chainwatch_exporter::engine::{json_capture, split_lines, Engine, Scratch, SourceStats};
use chainwatch_exporter::profile::Matcher;

/// What the engine does to a line before matching: drop a trailing CR and leading NULs
/// (mirrors the private `engine::clean`).
pub fn clean(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let nuls = line.iter().take_while(|b| **b == 0).count();
    &line[nuls..]
}

/// Lines `Engine::process` counts in a chunk: one per `\n`, plus an unterminated last line.
pub fn expected_lines(chunk: &[u8]) -> usize {
    if chunk.is_empty() {
        return 0;
    }
    memchr::memchr_iter(b'\n', chunk).count() + usize::from(chunk.last() != Some(&b'\n'))
}

/// Run `chunk` through `engine.process` and check it against a brute-force reference: every rule
/// tried on every line, without the literal prefilter. A rule's match counter must move by exactly
/// the number of lines its matcher accepts (a prefilter that hides a matching line, or a line
/// processed twice, shows up here), and the line counter by `expected_lines`.
pub fn process_checked(engine: &Engine, stats: &SourceStats, scratch: &mut Scratch, chunk: &[u8]) {
    let before: Vec<f64> = stats.matches.iter().map(|c| c.get()).collect();
    let lines_before = stats.lines.get();
    engine.process(chunk, stats, scratch);
    let lines = stats.lines.get() - lines_before;
    assert_eq!(
        lines,
        expected_lines(chunk) as f64,
        "line count of a {}-byte chunk",
        chunk.len()
    );
    if chunk.is_empty() {
        return;
    }
    let mut json = Vec::new();
    for (i, rule) in engine.rules().iter().enumerate() {
        let want = split_lines(chunk)
            .map(clean)
            .filter(|l| match &rule.matcher {
                Matcher::Regex(re) => re.is_match(l),
                m @ Matcher::Json { .. } => json_capture(m, l, &mut json),
            })
            .filter(|l| !rule.unless.as_ref().is_some_and(|u| u.is_match(l)))
            .count();
        let got = stats.matches[i].get() - before[i];
        assert!(
            got <= lines,
            "rule {} counted {got} matches in {lines} lines",
            rule.name
        );
        assert_eq!(
            got, want as f64,
            "rule {}: engine counted {got} matches, the rule's matcher accepts {want} lines of {:?}",
            rule.name,
            String::from_utf8_lossy(chunk)
        );
    }
}

/// Render samples back to the text format, the way a node would expose them.
pub fn render_samples(samples: &[Sample]) -> String {
    let mut out = String::new();
    for s in samples {
        out.push_str(&s.name);
        if !s.labels.is_empty() {
            out.push('{');
            for (i, (k, v)) in s.labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push_str("=\"");
                for c in v.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '"' => out.push_str("\\\""),
                        '\n' => out.push_str("\\n"),
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        if s.value.is_nan() {
            out.push_str("NaN");
        } else if s.value == f64::INFINITY {
            out.push_str("+Inf");
        } else if s.value == f64::NEG_INFINITY {
            out.push_str("-Inf");
        } else {
            out.push_str(&format!("{:?}", s.value));
        }
        out.push('\n');
    }
    out
}

/// Sample equality with NaN equal to itself.
pub fn same_samples(a: &[Sample], b: &[Sample]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.name == y.name
                && x.labels == y.labels
                && (x.value == y.value || (x.value.is_nan() && y.value.is_nan()))
        })
}
