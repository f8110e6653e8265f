//! Text helpers the steps share.

/// Whitespace (newlines of a YAML block) collapsed to single spaces: one line of a comment or
/// a table cell.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `(criteria E1, N2)`, or nothing: what a comment or title says a rule serves.
pub fn criteria_note(c: &[String]) -> String {
    if c.is_empty() {
        String::new()
    } else {
        format!("(criteria {})", c.join(", "))
    }
}

/// `text` with each `{{ $labels.x }}` (or `{{ x }}`) replaced by `f("x")`: an annotation as
/// Prometheus expands it, or as the runbook shows it.
pub fn replace_labels(text: &str, f: impl Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let j = after.find("}}").unwrap_or(after.len());
        let inner = after[..j].trim();
        out.push_str(&f(inner.strip_prefix("$labels.").unwrap_or(inner)));
        rest = after.get(j + 2..).unwrap_or("");
    }
    out.push_str(rest);
    out
}
