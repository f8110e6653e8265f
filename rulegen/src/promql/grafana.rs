//! PromQL as Grafana gets it: dashboard variables (`$network`, `$__rate_interval`) replaced by
//! stand-ins that parse, the dashboard's filters added to every selector, and a state metric as
//! one number per state.

use std::collections::BTreeSet;

/// Grafana's built-in variables, with a value that parses where each may stand.
fn builtin(name: &str) -> Option<&'static str> {
    Some(match name {
        "__rate_interval" | "__interval" => "1m",
        "__range" => "1h",
        "__range_s" => "3600",
        "__range_ms" | "__interval_ms" => "60000",
        _ => return None,
    })
}

/// Replace Grafana variables with values that parse (a valid stand-in for each). Errors name an
/// unknown variable.
pub fn substitute(expr: &str, vars: &[String]) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = if let Some(inner) = after.strip_prefix('{') {
            let j = inner
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in `{expr}`"))?;
            (&inner[..j], j + 2)
        } else {
            let j = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..j], j)
        };
        if let Some(v) = builtin(name) {
            out.push_str(v);
        } else if vars.iter().any(|v| v == name) {
            out.push_str("placeholder");
        } else {
            return Err(format!(
                "unknown variable `${name}` (this dashboard has ${}; Grafana's $__rate_interval, $__interval, $__range)",
                vars.join(", $")
            ));
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Insert `filters(metric)` matchers into every selector of the metrics named in `names`.
/// Strings are skipped; a selector's existing matchers of the same labels are kept.
pub fn inject(expr: &str, filters: &dyn Fn(&str) -> Vec<(String, String)>) -> String {
    let b = expr.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    let is_start = |c: u8| c.is_ascii_alphabetic() || c == b'_' || c == b':';
    let is_cont = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    // Skip a string literal starting at `i`; returns the index after it.
    let skip_string = |i: usize| -> usize {
        let q = b[i];
        let mut j = i + 1;
        while j < b.len() && b[j] != q {
            if b[j] == b'\\' && q != b'`' {
                j += 1;
            }
            j += 1;
        }
        (j + 1).min(b.len())
    };
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\'' || c == b'`' {
            let j = skip_string(i);
            out.push_str(&expr[i..j]);
            i = j;
        } else if c.is_ascii_digit() || c == b'$' {
            // Numbers, durations and variables are not identifiers.
            let mut j = i + 1;
            while j < b.len() && (is_cont(b[j]) || b[j] == b'.' || b[j] == b'{' && c == b'$') {
                if b[j] == b'{' {
                    while j < b.len() && b[j] != b'}' {
                        j += 1;
                    }
                }
                j += 1;
            }
            let j = j.min(b.len());
            out.push_str(&expr[i..j]);
            i = j;
        } else if is_start(c) {
            let mut j = i + 1;
            while j < b.len() && is_cont(b[j]) {
                j += 1;
            }
            let ident = &expr[i..j];
            out.push_str(ident);
            i = j;
            let fs = filters(ident);
            if fs.is_empty() {
                continue;
            }
            let mut k = j;
            while k < b.len() && b[k].is_ascii_whitespace() {
                k += 1;
            }
            if k < b.len() && b[k] == b'(' {
                continue; // a function
            }
            if k < b.len() && b[k] == b'{' {
                // Find the closing brace, skipping strings.
                let mut e = k + 1;
                while e < b.len() && b[e] != b'}' {
                    if b[e] == b'"' || b[e] == b'\'' || b[e] == b'`' {
                        e = skip_string(e);
                    } else {
                        e += 1;
                    }
                }
                let inner = &expr[k + 1..e.min(b.len())];
                let have: BTreeSet<String> = inner
                    .split(',')
                    .filter_map(|m| {
                        let n: String = m
                            .trim()
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        (!n.is_empty()).then_some(n)
                    })
                    .collect();
                let add: Vec<String> = fs
                    .iter()
                    .filter(|(l, _)| !have.contains(l))
                    .map(|(l, v)| format!("{l}=~\"{v}\""))
                    .collect();
                out.push_str(&expr[j..k + 1]);
                out.push_str(&add.join(", "));
                if !add.is_empty() && !inner.trim().is_empty() {
                    out.push_str(", ");
                }
                i = k + 1;
            } else {
                let add: Vec<String> = fs.iter().map(|(l, v)| format!("{l}=~\"{v}\"")).collect();
                out.push('{');
                out.push_str(&add.join(", "));
                out.push('}');
            }
        } else {
            let ch = expr[i..].chars().next().expect("in bounds");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// The state metric as one number per node: 1 for its first state, 2 for the second, ….
pub fn state_expr(metric: &str, label: &str, states: &[&str]) -> String {
    let parts: Vec<String> = states
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{metric}{{{label}=\"{s}\"}} * {}", i + 1))
        .collect();
    format!("sum without ({label}) (\n  {}\n)", parts.join("\n  or "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(m: &str) -> Vec<(String, String)> {
        if m.starts_with("chain_") || m.contains(':') {
            vec![
                ("network".into(), "$network".into()),
                ("node".into(), "$node".into()),
            ]
        } else {
            Vec::new()
        }
    }

    #[test]
    fn inject_adds_filters_to_every_selector_only() {
        assert_eq!(
            inject("sum by (node) (rate(chain_peers_total[$__rate_interval]))", &f),
            "sum by (node) (rate(chain_peers_total{network=~\"$network\", node=~\"$node\"}[$__rate_interval]))"
        );
        assert_eq!(
            inject("chain_x{engine=\"rust\", node=\"a\"} / node:y:z", &f),
            "chain_x{network=~\"$network\", engine=\"rust\", node=\"a\"} / node:y:z{network=~\"$network\", node=~\"$node\"}"
        );
        // Strings, numbers, functions and label names are left alone.
        assert_eq!(
            inject("label_replace(chain_a{}, \"chain_b\", \"x\", \"\", \"\") * 1e3", &f),
            "label_replace(chain_a{network=~\"$network\", node=~\"$node\"}, \"chain_b\", \"x\", \"\", \"\") * 1e3"
        );
    }

    #[test]
    fn substitute_knows_grafana_and_dashboard_variables() {
        let vars = vec!["network".to_string()];
        assert_eq!(
            substitute("rate(x{network=~\"$network\"}[$__rate_interval])", &vars).unwrap(),
            "rate(x{network=~\"placeholder\"}[1m])"
        );
        assert!(substitute("x{a=\"$cluster\"}", &vars).is_err());
    }
}
