//! PromQL, beside the model: reading expressions (`inspect`: parse, selectors, the labels a
//! result carries), writing them (`expr`: every expression rulegen generates from a measure, an
//! alert or a gate), saying them in words (`describe`), Grafana's dialect (`grafana`),
//! Prometheus's template functions of a value (`humanize`), how far back an expression reads
//! each series (`reads`), and expressions rewritten for other askers (`rewrite`: scoped to a
//! group, records expanded).

pub mod describe;
pub mod expr;
pub mod grafana;
pub mod humanize;
pub mod inspect;
pub mod reads;
pub mod rewrite;

pub use describe::describe;
pub use expr::{
    alert_condition, alert_rule, bucket_selector, escape, gate_condition, gate_condition_group,
    gate_condition_value, gate_proceed, gate_rollback, gate_scope, measure_expr, num, selector,
    slo_burn, subquery_step,
};
pub use humanize::value_template;
pub use inspect::{equality_labels, out_labels, parse, selectors};
