//! Counters that follow a node's own running total ("total_verifications": 1523): the counter
//! advances by the difference, and a total that goes down means the node restarted its count.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct Totals {
    last: Mutex<HashMap<Vec<String>, f64>>,
}

impl Totals {
    /// How much the counter with these label values must advance for a reported total `v`.
    pub fn delta(&self, labels: &[String], v: f64) -> f64 {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let prev = last.insert(labels.to_vec(), v);
        match prev {
            Some(p) if v >= p => v - p,
            _ => v,
        }
    }

    /// Forget a label set whose series was removed.
    pub fn forget(&self, labels: &[String]) {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(labels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_totals_and_restarts() {
        let t = Totals::default();
        let k = vec!["a".to_string()];
        assert_eq!(t.delta(&k, 10.0), 10.0);
        assert_eq!(t.delta(&k, 15.0), 5.0);
        assert_eq!(t.delta(&k, 2.0), 2.0);
        assert_eq!(t.delta(&[], 3.0), 3.0);
    }
}
