//! How far back an expression reads each series it selects: a range selector's range, plus the
//! ranges of the subqueries around it, plus offsets. An instant selector reads 0 (Prometheus's
//! 5m lookback is not history a rule needs). What the cost checks of the generated rules walk
//! (`tests/cost.rs`), and what `bench/fleet` plans the history of a rule set with.

use std::time::Duration;

use promql_parser::parser::{Expr, Offset, VectorSelector};

#[derive(Debug, Clone)]
pub struct Read<'a> {
    pub selector: &'a VectorSelector,
    pub lookback: Duration,
}

impl Read<'_> {
    /// The metric name the selector selects (`name{…}` or `{__name__="name"}`).
    pub fn name(&self) -> Option<String> {
        self.selector.name.clone().or_else(|| {
            self.selector
                .matchers
                .matchers
                .iter()
                .find(|m| m.name == "__name__" && m.op.to_string() == "=")
                .map(|m| m.value.clone())
        })
    }
}

pub fn reads(e: &Expr) -> Vec<Read<'_>> {
    let mut out = Vec::new();
    walk(e, Duration::ZERO, &mut out);
    out
}

fn offset(o: &Option<Offset>) -> Duration {
    match o {
        Some(Offset::Pos(d)) => *d,
        _ => Duration::ZERO,
    }
}

fn walk<'a>(e: &'a Expr, outer: Duration, out: &mut Vec<Read<'a>>) {
    match e {
        Expr::Aggregate(a) => {
            walk(&a.expr, outer, out);
            if let Some(p) = &a.param {
                walk(p, outer, out);
            }
        }
        Expr::Unary(u) => walk(&u.expr, outer, out),
        Expr::Binary(b) => {
            walk(&b.lhs, outer, out);
            walk(&b.rhs, outer, out);
        }
        Expr::Paren(p) => walk(&p.expr, outer, out),
        Expr::Subquery(s) => walk(&s.expr, outer + s.range + offset(&s.offset), out),
        Expr::VectorSelector(v) => out.push(Read {
            selector: v,
            lookback: outer + offset(&v.offset),
        }),
        Expr::MatrixSelector(m) => out.push(Read {
            selector: &m.vs,
            lookback: outer + m.range + offset(&m.vs.offset),
        }),
        Expr::Call(c) => {
            for a in &c.args.args {
                walk(a, outer, out);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn looks(expr: &str) -> Vec<(String, u64)> {
        let e = promql_parser::parser::parse(expr).unwrap();
        reads(&e)
            .iter()
            .map(|r| (r.name().unwrap_or_default(), r.lookback.as_secs()))
            .collect()
    }

    #[test]
    fn ranges_subqueries_and_offsets_add_up() {
        assert_eq!(
            looks("sum(rate(a[5m])) / on() b"),
            vec![("a".into(), 300), ("b".into(), 0)]
        );
        assert_eq!(
            looks("avg_over_time((x < bool 0.05)[1w:1h])"),
            vec![("x".into(), 604_800)]
        );
        assert_eq!(
            looks("max_over_time(rate(y[5m])[1h:1m] offset 1d)"),
            vec![("y".into(), 300 + 3600 + 86400)]
        );
        assert_eq!(
            looks("{__name__=\"z\", chain=\"a\"}[2m]"),
            vec![("z".into(), 120)]
        );
    }
}
