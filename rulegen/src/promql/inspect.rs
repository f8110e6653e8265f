//! What rulegen needs to know about a PromQL expression: does it parse, which series does it
//! select, and which labels can its result carry (for `{{ $labels.x }}` in annotations and for
//! the labels a generated test expects).

use promql_parser::label::MatchOp;
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{
    self, BinaryExpr, Call, Expr, LabelModifier, VectorMatchCardinality, VectorSelector,
};

use crate::model::Labels;

pub fn parse(expr: &str) -> Result<Expr, String> {
    parser::parse(expr)
}

/// Every vector selector in the expression, in order.
pub fn selectors(e: &Expr) -> Vec<&VectorSelector> {
    let mut out = Vec::new();
    walk(e, &mut out);
    out
}

fn walk<'a>(e: &'a Expr, out: &mut Vec<&'a VectorSelector>) {
    match e {
        Expr::Aggregate(a) => {
            walk(&a.expr, out);
            if let Some(p) = &a.param {
                walk(p, out);
            }
        }
        Expr::Unary(u) => walk(&u.expr, out),
        Expr::Binary(b) => {
            walk(&b.lhs, out);
            walk(&b.rhs, out);
        }
        Expr::Paren(p) => walk(&p.expr, out),
        Expr::Subquery(s) => walk(&s.expr, out),
        Expr::VectorSelector(v) => out.push(v),
        Expr::MatrixSelector(m) => out.push(&m.vs),
        Expr::Call(c) => {
            for a in &c.args.args {
                walk(a, out);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// Labels with `=` matchers on a selector (what `absent()` keeps).
pub fn equality_labels(v: &VectorSelector) -> Labels {
    v.matchers
        .matchers
        .iter()
        .filter(|m| matches!(m.op, MatchOp::Equal) && m.name != "__name__")
        .map(|m| m.name.clone())
        .collect()
}

fn modifier_labels(m: &LabelModifier) -> Labels {
    m.labels().labels.iter().cloned().collect()
}

/// Labels the result of `e` can carry, given the labels of each selected series (`leaf`).
/// `None` means "unknown": any label may be there.
pub fn out_labels(e: &Expr, leaf: &dyn Fn(&VectorSelector) -> Option<Labels>) -> Option<Labels> {
    match e {
        Expr::Aggregate(a) => {
            let inner = out_labels(&a.expr, leaf);
            let op = a.op.to_string();
            let mut res = match &a.modifier {
                Some(LabelModifier::Include(l)) => {
                    let by: Labels = l.labels.iter().cloned().collect();
                    match inner {
                        Some(i) => by.intersection(&i).cloned().collect(),
                        None => by,
                    }
                }
                Some(m @ LabelModifier::Exclude(_)) => {
                    let without = modifier_labels(m);
                    inner.map(|i| i.difference(&without).cloned().collect())?
                }
                None => {
                    if matches!(op.as_str(), "topk" | "bottomk" | "limitk" | "limit_ratio") {
                        return inner;
                    }
                    Labels::new()
                }
            };
            if matches!(op.as_str(), "topk" | "bottomk") {
                return out_labels(&a.expr, leaf);
            }
            if op == "count_values" {
                if let Some(p) = &a.param {
                    if let Expr::StringLiteral(s) = p.as_ref() {
                        res.insert(s.val.clone());
                    }
                }
            }
            Some(res)
        }
        Expr::Unary(u) => out_labels(&u.expr, leaf),
        Expr::Paren(p) => out_labels(&p.expr, leaf),
        Expr::Subquery(s) => out_labels(&s.expr, leaf),
        Expr::VectorSelector(v) => leaf(v),
        Expr::MatrixSelector(m) => leaf(&m.vs),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => Some(Labels::new()),
        Expr::Call(c) => call_labels(c, leaf),
        Expr::Binary(b) => binary_labels(b, leaf),
    }
}

/// Labels of a function call's result.
fn call_labels(c: &Call, leaf: &dyn Fn(&VectorSelector) -> Option<Labels>) -> Option<Labels> {
    let name = c.func.name;
    let args = &c.args.args;
    match name {
        "absent" | "absent_over_time" => {
            let sels = args.first().map(|a| selectors(a)).unwrap_or_default();
            Some(sels.first().map(|v| equality_labels(v)).unwrap_or_default())
        }
        "vector" | "time" | "scalar" | "pi" => Some(Labels::new()),
        "label_replace" | "label_join" => {
            let mut l = out_labels(&args[0], leaf)?;
            if let Some(Expr::StringLiteral(s)) = args.get(1).map(|a| a.as_ref()) {
                l.insert(s.val.clone());
            }
            Some(l)
        }
        "histogram_quantile" => {
            let mut l = out_labels(&args[1], leaf)?;
            l.remove("le");
            Some(l)
        }
        _ => {
            // Functions keep the labels of their (first) vector argument.
            for a in args {
                if matches!(a.value_type(), ValueType::Vector | ValueType::Matrix) {
                    return out_labels(a, leaf);
                }
            }
            Some(Labels::new())
        }
    }
}

/// Labels of a binary operation's result: a vector with a scalar keeps the vector's; set
/// operators, matching modifiers and group_left/right decide the rest.
fn binary_labels(
    b: &BinaryExpr,
    leaf: &dyn Fn(&VectorSelector) -> Option<Labels>,
) -> Option<Labels> {
    let lt = b.lhs.value_type();
    let rt = b.rhs.value_type();
    let lv = lt == ValueType::Vector;
    let rv = rt == ValueType::Vector;
    if lv && !rv {
        return out_labels(&b.lhs, leaf);
    }
    if rv && !lv {
        return out_labels(&b.rhs, leaf);
    }
    if !lv && !rv {
        return Some(Labels::new());
    }
    let op = b.op.to_string();
    let l = out_labels(&b.lhs, leaf);
    let r = out_labels(&b.rhs, leaf);
    let modifier = b.modifier.as_ref();
    if op == "or" {
        return match (l, r) {
            (Some(l), Some(r)) => Some(l.intersection(&r).cloned().collect()),
            (Some(x), None) | (None, Some(x)) => Some(x),
            (None, None) => None,
        };
    }
    if op == "and" || op == "unless" {
        return l;
    }
    let card = modifier.map(|m| &m.card);
    match card {
        Some(VectorMatchCardinality::ManyToOne(extra)) => {
            let mut l = l?;
            l.extend(extra.labels.iter().cloned());
            Some(l)
        }
        Some(VectorMatchCardinality::OneToMany(extra)) => {
            let mut r = r?;
            r.extend(extra.labels.iter().cloned());
            Some(r)
        }
        _ => match modifier.and_then(|m| m.matching.as_ref()) {
            Some(m @ LabelModifier::Include(_)) => {
                let on = modifier_labels(m);
                Some(match l {
                    Some(l) => on.intersection(&l).cloned().collect(),
                    None => on,
                })
            }
            Some(m @ LabelModifier::Exclude(_)) => {
                let ign = modifier_labels(m);
                l.map(|l| l.difference(&ign).cloned().collect())
            }
            None => l,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels_of(expr: &str) -> Option<Labels> {
        let e = parse(expr).unwrap();
        out_labels(&e, &|v| {
            let mut l: Labels = ["chain", "node", "region"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            if v.name.as_deref() == Some("h_bucket") {
                l.insert("le".into());
            }
            Some(l)
        })
    }

    fn set(v: &[&str]) -> Option<Labels> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn aggregation_keeps_only_grouping_labels() {
        assert_eq!(labels_of("sum by (chain) (rate(x[5m]))"), set(&["chain"]));
        assert_eq!(
            labels_of("max without (node) (x)"),
            set(&["chain", "region"])
        );
        assert_eq!(labels_of("sum(x)"), set(&[]));
        assert_eq!(labels_of("x > 3"), set(&["chain", "node", "region"]));
    }

    #[test]
    fn functions_and_binaries() {
        assert_eq!(
            labels_of("histogram_quantile(0.9, sum by (le, chain) (rate(h_bucket[5m])))"),
            set(&["chain"])
        );
        assert_eq!(
            labels_of("absent(x{chain=\"a\", node=~\"b\"})"),
            set(&["chain"])
        );
        assert_eq!(labels_of("vector(1)"), set(&[]));
        assert_eq!(
            labels_of("max by (chain) (x) - on (chain) group_right x"),
            set(&["chain", "node", "region"])
        );
        assert_eq!(
            labels_of("sum by (chain) (x) / sum by (chain, node) (y)"),
            set(&["chain"])
        );
        assert_eq!(
            labels_of("label_replace(x, \"q\", \"v\", \"\", \"\")")
                .unwrap()
                .len(),
            4
        );
    }
}
