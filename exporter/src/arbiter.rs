//! One event, one count: when a profile names the rules that are a metric's source of truth
//! (`combine: {metric: {prefer: [...]}}`), the arbiter remembers, per series, the best rule that has
//! updated it so far, and turns away updates from worse ones. A node that writes only the other
//! form is still measured (nothing better has spoken), and a node that writes both is counted once.

use std::collections::HashMap;
use std::sync::Mutex;

/// Rank of a rule the `prefer` list does not name: worse than every listed one.
pub const UNRANKED: usize = usize::MAX;

#[derive(Default)]
pub struct Arbiter {
    /// Label values' hash → state. Only label sets admitted by the metric's series guard get
    /// here, so this is bounded by `max_series_per_metric`.
    series: Mutex<HashMap<u64, Series>>,
}

struct Series {
    best: usize,
    /// What the counter was advanced by so far (counters only): a running total that takes over
    /// adds only what goes beyond it.
    counted: f64,
}

/// What an update of rank `rank` may do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// A better rule owns the series: drop the update.
    Drop,
    /// Apply it. `taking_over`: this rank now owns the series, and `counted` is what worse ranks
    /// have added to the counter before it.
    Apply { taking_over: bool, counted: f64 },
}

impl Arbiter {
    pub fn judge(&self, labels: &[String], rank: usize) -> Verdict {
        let mut all = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let s = all.entry(hash(labels)).or_insert(Series {
            best: UNRANKED,
            counted: 0.0,
        });
        if rank > s.best {
            return Verdict::Drop;
        }
        let taking_over = rank < s.best;
        s.best = rank;
        Verdict::Apply {
            taking_over,
            counted: s.counted,
        }
    }

    /// Record that the counter of this series advanced by `by`.
    pub fn counted(&self, labels: &[String], by: f64) {
        let mut all = self.series.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = all.get_mut(&hash(labels)) {
            s.counted += by;
        }
    }
}

fn hash(labels: &[String]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    labels.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_rank_seen_owns_the_series() {
        let a = Arbiter::default();
        let k = vec!["x".to_string()];
        // Unranked rules count while nothing better has spoken.
        assert_eq!(
            a.judge(&k, UNRANKED),
            Verdict::Apply {
                taking_over: false,
                counted: 0.0
            }
        );
        a.counted(&k, 1.0);
        assert!(matches!(a.judge(&k, UNRANKED), Verdict::Apply { .. }));
        a.counted(&k, 1.0);
        // The preferred rule takes over, knowing what is already counted.
        assert_eq!(
            a.judge(&k, 0),
            Verdict::Apply {
                taking_over: true,
                counted: 2.0
            }
        );
        assert_eq!(a.judge(&k, UNRANKED), Verdict::Drop);
        assert_eq!(a.judge(&k, 1), Verdict::Drop);
        assert!(matches!(
            a.judge(&k, 0),
            Verdict::Apply {
                taking_over: false,
                ..
            }
        ));
        // Another series is judged on its own.
        assert!(matches!(
            a.judge(&["y".to_string()], UNRANKED),
            Verdict::Apply { .. }
        ));
    }
}
