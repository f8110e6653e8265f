//! What an alert, recording rule or gate condition measures: validated selectors and one typed
//! measure per kind. How a measure becomes PromQL is `promql::expr`; how tests make it take a
//! value is `steps::promtool::synth`.

use std::collections::{BTreeMap, BTreeSet};

use chainwatch_duration::Duration;

pub type LabelMap = BTreeMap<String, String>;
/// Label names (of a series, or of an expression's result).
pub type Labels = BTreeSet<String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Op {
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}

/// Where a selector's series come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A catalog metric; `counter` for counters and histogram series.
    Catalog { counter: bool, bucket: bool },
    /// A recording rule defined in thresholds.yaml (index into the records).
    Record(usize),
    /// Prometheus' own `up`.
    Up,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Matcher {
    pub name: String,
    pub op: &'static str,
    pub value: String,
}

/// `metric{label="value", ...}`, validated against the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Sel {
    pub name: String,
    pub matchers: Vec<Matcher>,
    pub source: Source,
    /// Histogram bounds when this selects a histogram (for `quantile`).
    pub buckets: Vec<f64>,
}

impl Sel {
    pub fn is_counter(&self) -> bool {
        matches!(self.source, Source::Catalog { counter: true, .. })
    }
}

/// Which chain(s) a rule variant applies to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Scope {
    #[default]
    All,
    Chain(String),
    Except(Vec<String>),
}

/// A hand-written promtool case of a `raw` measure.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTestM {
    pub input_series: Vec<(String, String)>,
    pub eval_time: Duration,
    pub firing: Option<Vec<LabelMap>>,
    pub samples: Option<Vec<(LabelMap, f64)>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Measure {
    Value {
        sel: Sel,
        func: Option<(String, Duration)>,
        agg: Option<(String, Vec<String>)>,
    },
    Ratio {
        num: Sel,
        den: Vec<Sel>,
        window: Duration,
        by: Vec<String>,
        rates: bool,
    },
    FleetFraction {
        sel: Sel,
        op: Op,
        value: f64,
        window: Option<Duration>,
        by: Vec<String>,
        /// Over every node this liveness record knows, a node that is down counting as one
        /// that meets the condition.
        liveness: Option<Sel>,
    },
    Quantile {
        hist: Sel,
        q: f64,
        window: Duration,
        by: Vec<String>,
        versus: Option<Sel>,
    },
    NoProgress {
        sels: Vec<Sel>,
        window: Duration,
    },
    Absence {
        sel: Sel,
        lookback: Duration,
    },
    Deviation {
        terms: Vec<(Sel, f64)>,
    },
    Lag {
        sel: Sel,
        by: Vec<String>,
    },
    Trend {
        sel: Sel,
        window: Duration,
        min_rate: f64,
    },
    TimeFraction {
        inner: Box<Measure>,
        op: Op,
        value: f64,
        window: Duration,
    },
    /// The nodes seen within `window` (a series of `sel` every sidecar exports), and the ones
    /// whose target has stayed down since: one series per node and target (`job`, `instance`).
    /// `record` is the rule's own name: it reads its last value to remember those nodes.
    Inventory {
        sel: Sel,
        window: Duration,
        record: String,
    },
    /// Per node of the `inventory` record: 1 up, 0 down (the `health` check fails, the target
    /// cannot be scraped, or the node's series — `identity`, the inventory's metric — are gone).
    Liveness {
        inventory: Sel,
        identity: Sel,
        health: Sel,
    },
    /// `up` of the target of each node of the `inventory` record.
    TargetUp {
        inventory: Sel,
    },
    Raw {
        expr: String,
        tests: Vec<RawTestM>,
    },
    /// The rate of a histogram's buckets summed `by` (and `le`): the record several quantiles
    /// share. Only rulegen derives it; thresholds.yaml cannot write it.
    BucketRate {
        hist: Sel,
        window: Duration,
        by: Vec<String>,
    },
    /// `raw`, answered from recording rules rulegen derived for it (`via`) rather than from the
    /// series `raw` names: long windows from rollups, quantiles from shared bucket rates. What
    /// it means, how it is described and how tests make it take a value are `raw`'s.
    Derived {
        raw: Box<Measure>,
        via: Via,
    },
}

/// What a derived measure reads instead of its raw series.
#[derive(Debug, Clone, PartialEq)]
pub enum Via {
    /// A window of a day or more built from rollups recorded over `rollup` (each rollup one
    /// `Part`): the answer reads them over `window` minus `rollup`, which with the rollup's own
    /// window covers exactly `window`.
    Rollups {
        window: Duration,
        rollup: Duration,
        parts: Vec<Part>,
    },
    /// A long window read from answer records (one `Part` per selector: its increase, rate,
    /// change, average… over `window`), themselves built from rollups: an alert or gate reads
    /// an instant of them, and one answer serves every reader of the same window.
    Answers { window: Duration, parts: Vec<Part> },
    /// Quantiles from the bucket rates of a shared `BucketRate` record (one `Part` per histogram
    /// selector).
    Buckets { parts: Vec<Part> },
    /// The whole measure, which a recording rule of the reader's own group computes already
    /// (one `Part`, `RollOp::Whole`): read at an instant, as the group evaluates its records
    /// before its alerts.
    Record { parts: Vec<Part> },
}

/// What a derived record holds of the series it was derived from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RollOp {
    /// A counter's rate.
    Rate,
    /// A counter's increase, a gauge's change (answers over a long window).
    Increase,
    Delta,
    /// A gauge's average, largest and smallest value.
    Avg,
    Max,
    Min,
    /// The fraction of time a condition held.
    Fraction,
    /// A histogram's bucket rates.
    Buckets,
    /// The measure itself.
    Whole,
}

/// One derived record a measure reads: of which of its selectors (`of`, the selector's name),
/// what (`op`), and the selector to read it with (the record's name with the original matchers,
/// `Source::Record`).
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub of: String,
    pub op: RollOp,
    pub sel: Sel,
}

impl Via {
    pub fn parts(&self) -> &[Part] {
        match self {
            Via::Rollups { parts, .. }
            | Via::Answers { parts, .. }
            | Via::Buckets { parts }
            | Via::Record { parts } => parts,
        }
    }

    /// The record that holds `op` of the selector named `of`.
    pub fn part(&self, of: &str, op: RollOp) -> Option<&Sel> {
        self.parts()
            .iter()
            .find(|p| p.of == of && p.op == op)
            .map(|p| &p.sel)
    }
}

impl Measure {
    /// The kind's name in thresholds.yaml.
    pub fn kind(&self) -> &'static str {
        match self {
            Measure::Value { .. } => "value",
            Measure::Ratio { .. } => "ratio",
            Measure::FleetFraction { .. } => "fleet_fraction",
            Measure::Quantile { .. } => "quantile",
            Measure::NoProgress { .. } => "no_progress",
            Measure::Absence { .. } => "absence",
            Measure::Deviation { .. } => "deviation",
            Measure::Lag { .. } => "lag",
            Measure::Trend { .. } => "trend",
            Measure::TimeFraction { .. } => "time_fraction",
            Measure::Inventory { .. } => "inventory",
            Measure::Liveness { .. } => "liveness",
            Measure::TargetUp { .. } => "target_up",
            Measure::Raw { .. } => "raw",
            Measure::BucketRate { .. } => "bucket_rate",
            Measure::Derived { raw, .. } => raw.kind(),
        }
    }

    /// Kinds whose expression is itself the condition (no `op`/`threshold`).
    pub fn is_condition(&self) -> bool {
        match self {
            Measure::NoProgress { .. } | Measure::Absence { .. } | Measure::Raw { .. } => true,
            Measure::Derived { raw, .. } => raw.is_condition(),
            _ => false,
        }
    }

    /// The measure as thresholds.yaml wrote it (what tests synthesize inputs for).
    pub fn raw(&self) -> &Measure {
        match self {
            Measure::Derived { raw, .. } => raw.raw(),
            m => m,
        }
    }

    pub fn selectors(&self) -> Vec<&Sel> {
        match self {
            Measure::FleetFraction { sel, liveness, .. } => {
                std::iter::once(sel).chain(liveness.iter()).collect()
            }
            Measure::Value { sel, .. }
            | Measure::Inventory { sel, .. }
            | Measure::Absence { sel, .. }
            | Measure::Lag { sel, .. }
            | Measure::Trend { sel, .. } => vec![sel],
            Measure::Ratio { num, den, .. } => std::iter::once(num).chain(den.iter()).collect(),
            Measure::Quantile { hist, versus, .. } => {
                std::iter::once(hist).chain(versus.iter()).collect()
            }
            Measure::NoProgress { sels, .. } => sels.iter().collect(),
            Measure::Deviation { terms } => terms.iter().map(|(s, _)| s).collect(),
            Measure::TimeFraction { inner, .. } => inner.selectors(),
            Measure::Liveness {
                inventory,
                identity,
                health,
            } => vec![inventory, identity, health],
            Measure::TargetUp { inventory } => vec![inventory],
            Measure::Raw { .. } => vec![],
            Measure::BucketRate { hist, .. } => vec![hist],
            // The raw series (their labels) and the derived records read (their rules).
            Measure::Derived { raw, via } => {
                let mut v = raw.selectors();
                v.extend(via.parts().iter().map(|p| &p.sel));
                v
            }
        }
    }

    /// Every duration the measure uses (to choose a test interval).
    pub fn durations(&self) -> Vec<Duration> {
        match self {
            Measure::Value { func, .. } => func.iter().map(|f| f.1).collect(),
            Measure::Ratio { window, .. }
            | Measure::Quantile { window, .. }
            | Measure::NoProgress { window, .. }
            | Measure::Trend { window, .. } => vec![*window],
            Measure::FleetFraction { window, .. } => window.iter().copied().collect(),
            Measure::Absence { lookback, .. } => vec![*lookback],
            Measure::TimeFraction { inner, window, .. } => {
                let mut v = inner.durations();
                v.push(*window);
                v
            }
            Measure::Raw { tests, .. } => tests.iter().map(|t| t.eval_time).collect(),
            // An inventory's window is how long it remembers, not how long its value takes to
            // form: it knows a node from its first sample.
            Measure::Deviation { .. }
            | Measure::Lag { .. }
            | Measure::Inventory { .. }
            | Measure::Liveness { .. }
            | Measure::TargetUp { .. } => vec![],
            Measure::BucketRate { window, .. } => vec![*window],
            Measure::Derived { raw, via } => {
                let mut v = raw.durations();
                if let Via::Rollups { window, rollup, .. } = via {
                    v.push(*rollup);
                    v.push(Duration(window.ms() - rollup.ms()));
                }
                v
            }
        }
    }
}
