//! Generated PromQL rewritten through its syntax tree (promql-parser), so that whatever
//! expression the rules hold can be asked of a Prometheus in two more ways:
//! - **scoped** to one group: an equality matcher added to every selector (a gate's chain and
//!   network, or a canary template's `{{args.chain}}`), so no series of another group is read;
//! - **expanded**: a recording rule replaced by the expression that records it, where
//!   Prometheus holds no samples of it (a fresh server, or history backfilled from logs, which
//!   has raw series only). A range over a record becomes a subquery at the record's interval.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{Expr, ParenExpr, SubqueryExpr, VectorSelector};

/// One recording rule as Prometheus evaluates it: what it records, with which extra labels,
/// how often.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordDef {
    pub record: String,
    pub labels: BTreeMap<String, String>,
    pub expr: String,
    pub interval: StdDuration,
}

/// A selector of an expression: its metric name and matchers (`label`, `op`, `value`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SelectorRef {
    pub name: String,
    pub matchers: Vec<(String, String, String)>,
}

impl SelectorRef {
    /// The selector as PromQL, without offset or `@`.
    pub fn promql(&self) -> String {
        if self.matchers.is_empty() {
            return self.name.clone();
        }
        let m: Vec<String> = self
            .matchers
            .iter()
            .map(|(l, op, v)| format!("{l}{op}\"{}\"", super::expr::escape(v)))
            .collect();
        format!("{}{{{}}}", self.name, m.join(", "))
    }
}

fn parse(expr: &str) -> Result<Expr, String> {
    super::inspect::parse(expr).map_err(|e| format!("`{expr}`: {e}"))
}

/// Every vector and matrix selector of `e`, for changing them (`inspect::selectors` reads).
fn visit_selectors<'a>(e: &'a mut Expr, f: &mut dyn FnMut(&'a mut VectorSelector)) {
    match e {
        Expr::Aggregate(a) => {
            visit_selectors(&mut a.expr, f);
            if let Some(p) = a.param.as_deref_mut() {
                visit_selectors(p, f);
            }
        }
        Expr::Unary(u) => visit_selectors(&mut u.expr, f),
        Expr::Binary(b) => {
            visit_selectors(&mut b.lhs, f);
            visit_selectors(&mut b.rhs, f);
        }
        Expr::Paren(p) => visit_selectors(&mut p.expr, f),
        Expr::Subquery(s) => visit_selectors(&mut s.expr, f),
        Expr::VectorSelector(vs) => f(vs),
        Expr::MatrixSelector(ms) => f(&mut ms.vs),
        Expr::Call(c) => {
            for a in c.args.args.iter_mut() {
                visit_selectors(a, f);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

fn op_str(op: &MatchOp) -> &'static str {
    match op {
        MatchOp::Equal => "=",
        MatchOp::NotEqual => "!=",
        MatchOp::Re(_) => "=~",
        MatchOp::NotRe(_) => "!~",
    }
}

/// The selectors `expr` reads (without offsets), sorted, each once.
pub fn selectors(expr: &str) -> Result<Vec<SelectorRef>, String> {
    let e = parse(expr)?;
    let mut out: Vec<SelectorRef> = super::inspect::selectors(&e)
        .into_iter()
        .map(|vs| SelectorRef {
            name: vs.name.clone().unwrap_or_default(),
            matchers: vs
                .matchers
                .matchers
                .iter()
                .filter(|m| m.name != "__name__")
                .map(|m| (m.name.clone(), op_str(&m.op).to_string(), m.value.clone()))
                .collect(),
        })
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// `expr` with `label="value"` required on every selector. A selector that already asks a
/// label for another value keeps both matchers (and so selects nothing), as it should.
pub fn scoped(expr: &str, labels: &[(String, String)]) -> Result<String, String> {
    if labels.is_empty() {
        return Ok(expr.to_string());
    }
    let mut e = parse(expr)?;
    scope_tree(&mut e, labels);
    Ok(e.to_string())
}

fn scope_tree(e: &mut Expr, labels: &[(String, String)]) {
    visit_selectors(e, &mut |vs| {
        for (l, v) in labels {
            let present = vs
                .matchers
                .matchers
                .iter()
                .any(|m| &m.name == l && matches!(m.op, MatchOp::Equal) && &m.value == v);
            if !present {
                vs.matchers
                    .matchers
                    .push(Matcher::new(MatchOp::Equal, l, v));
            }
        }
    });
}

/// `expr` with every recording rule of `defs` that `keep` refuses replaced by its expression,
/// recursively. A record defined several times (the gate records, one rule per gate) becomes
/// the rules whose `labels:` the selector's matchers admit, joined with `or`, each carrying its
/// labels. The selector's other equality matchers scope the expression; a regex matcher on a
/// label the record does not set, or an offset, cannot be carried into an expression: error.
pub fn expand(
    expr: &str,
    defs: &[RecordDef],
    keep: &dyn Fn(&str) -> bool,
) -> Result<String, String> {
    let mut e = parse(expr)?;
    expand_tree(&mut e, defs, keep, 0)?;
    Ok(e.to_string())
}

const MAX_DEPTH: usize = 16;

fn expand_tree(
    e: &mut Expr,
    defs: &[RecordDef],
    keep: &dyn Fn(&str) -> bool,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err("recording rules refer to each other too deeply".into());
    }
    let recurse = |e: &mut Expr| expand_tree(e, defs, keep, depth);
    match e {
        Expr::Aggregate(a) => {
            recurse(&mut a.expr)?;
            if let Some(p) = a.param.as_deref_mut() {
                recurse(p)?;
            }
        }
        Expr::Unary(u) => recurse(&mut u.expr)?,
        Expr::Binary(b) => {
            recurse(&mut b.lhs)?;
            recurse(&mut b.rhs)?;
        }
        Expr::Paren(p) => recurse(&mut p.expr)?,
        Expr::Subquery(s) => recurse(&mut s.expr)?,
        Expr::Call(c) => {
            for a in c.args.args.iter_mut() {
                recurse(a)?;
            }
        }
        Expr::VectorSelector(vs) => {
            if let Some(x) = expansion(vs, defs, keep, depth)? {
                if vs.offset.is_some() || vs.at.is_some() {
                    return Err(format!(
                        "`{vs}`: a record with offset or @ cannot be replaced by its expression"
                    ));
                }
                *e = paren(x.0);
            }
        }
        Expr::MatrixSelector(ms) => {
            if let Some((inner, interval)) = expansion(&ms.vs, defs, keep, depth)? {
                *e = Expr::Subquery(SubqueryExpr {
                    expr: Box::new(paren(inner)),
                    offset: ms.vs.offset.clone(),
                    at: ms.vs.at.clone(),
                    range: ms.range,
                    step: Some(interval),
                });
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
    Ok(())
}

fn paren(e: Expr) -> Expr {
    Expr::Paren(ParenExpr { expr: Box::new(e) })
}

/// The expression replacing selector `vs` (and the interval of its rules), or None when `vs`
/// is no record of `defs` or `keep` keeps it.
fn expansion(
    vs: &VectorSelector,
    defs: &[RecordDef],
    keep: &dyn Fn(&str) -> bool,
    depth: usize,
) -> Result<Option<(Expr, StdDuration)>, String> {
    let Some(name) = vs.name.as_deref() else {
        return Ok(None);
    };
    let rules: Vec<&RecordDef> = defs.iter().filter(|d| d.record == name).collect();
    if rules.is_empty() || keep(name) {
        return Ok(None);
    }
    let matchers: Vec<&Matcher> = vs
        .matchers
        .matchers
        .iter()
        .filter(|m| m.name != "__name__")
        .collect();
    let mut parts = Vec::new();
    let mut interval = StdDuration::ZERO;
    for d in rules {
        // Matchers on the rule's own labels decide whether this rule is selected at all; the
        // others filter the series of its expression.
        let mut scope = Vec::new();
        let mut admitted = true;
        for m in &matchers {
            match d.labels.get(&m.name) {
                Some(v) => admitted &= m.is_match(v),
                None => match &m.op {
                    MatchOp::Equal => scope.push((m.name.clone(), m.value.clone())),
                    _ => {
                        return Err(format!(
                            "`{vs}`: the matcher on `{}` cannot be carried into the expression of `{name}`",
                            m.name
                        ))
                    }
                },
            }
        }
        if !admitted {
            continue;
        }
        let mut inner = parse(&d.expr)?;
        expand_tree(&mut inner, defs, keep, depth + 1)?;
        scope_tree(&mut inner, &scope);
        let mut text = inner.to_string();
        for (l, v) in &d.labels {
            text = format!(
                "label_replace({text}, \"{}\", \"{}\", \"\", \"\")",
                super::expr::escape(l),
                super::expr::escape(v)
            );
        }
        parts.push(text);
        interval = interval.max(d.interval);
    }
    if parts.is_empty() {
        // No rule of this name can produce the series asked for: nothing, as Prometheus would say.
        return Ok(Some((parse("vector(0) != 0")?, interval)));
    }
    let text = if parts.len() == 1 {
        parts.pop().unwrap_or_default()
    } else {
        let p: Vec<String> = parts.iter().map(|p| format!("({p})")).collect();
        p.join(" or ")
    };
    Ok(Some((parse(&text)?, interval)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(record: &str, labels: &[(&str, &str)], expr: &str) -> RecordDef {
        RecordDef {
            record: record.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            expr: expr.into(),
            interval: StdDuration::from_secs(60),
        }
    }

    fn same(a: &str, b: &str) {
        assert_eq!(
            parse(a).unwrap().to_string(),
            parse(b).unwrap().to_string(),
            "\n{a}\n  vs\n{b}"
        );
    }

    #[test]
    fn scoping_adds_a_matcher_to_every_selector() {
        let e = scoped(
            "sum by (chain) (rate(a_total[5m])) / sum by (chain) (b{engine=\"rust\"})",
            &[("chain".into(), "coinjecture".into())],
        )
        .unwrap();
        same(
            &e,
            "sum by (chain) (rate(a_total{chain=\"coinjecture\"}[5m])) / sum by (chain) (b{engine=\"rust\",chain=\"coinjecture\"})",
        );
        // Template placeholders are label values like any other.
        let e = scoped("up", &[("chain".into(), "{{args.chain}}".into())]).unwrap();
        same(&e, "up{chain=\"{{args.chain}}\"}");
    }

    #[test]
    fn records_expand_to_their_expressions_and_ranges_to_subqueries() {
        let defs = [
            def("node:x:ratio", &[], "a / b"),
            def("node:y:avg", &[], "avg_over_time(node:x:ratio[1h])"),
        ];
        let e = expand("node:y:avg{chain=\"c\"} > 0.9", &defs, &|_| false).unwrap();
        same(
            &e,
            "(avg_over_time((a{chain=\"c\"} / b{chain=\"c\"})[1h:1m])) > 0.9",
        );
        // Kept records stay as they are.
        let e = expand("node:y:avg > 0.9", &defs, &|n| n == "node:y:avg").unwrap();
        same(&e, "node:y:avg > 0.9");
        let e = expand("node:y:avg > 0.9", &defs, &|n| n == "node:x:ratio").unwrap();
        same(&e, "(avg_over_time(node:x:ratio[1h])) > 0.9");
    }

    #[test]
    fn a_record_of_several_rules_expands_to_those_its_matchers_admit() {
        let defs = [
            def("g:bool", &[("gate", "one")], "vector(1)"),
            def("g:bool", &[("gate", "two")], "vector(0)"),
        ];
        let e = expand("g:bool{gate=\"two\"}", &defs, &|_| false).unwrap();
        same(
            &e,
            "(label_replace(vector(0), \"gate\", \"two\", \"\", \"\"))",
        );
        let e = expand("g:bool", &defs, &|_| false).unwrap();
        same(
            &e,
            "((label_replace(vector(1), \"gate\", \"one\", \"\", \"\")) or (label_replace(vector(0), \"gate\", \"two\", \"\", \"\")))",
        );
        assert!(expand("g:bool{node=~\"a.*\"}", &defs, &|_| false).is_err());
    }

    #[test]
    fn selectors_are_listed_once() {
        let s = selectors("rate(a[5m]) / rate(a[5m]) + b{x=\"1\"} offset 1h").unwrap();
        let p: Vec<String> = s.iter().map(|s| s.promql()).collect();
        assert_eq!(p, ["a", "b{x=\"1\"}"]);
    }
}
