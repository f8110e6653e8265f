//! What the runbook and coverage quote: the words of each criterion, the shared first checks,
//! and what cannot be measured.

#[derive(Debug, Clone)]
pub struct CriterionText {
    pub what: String,
    /// Seed and heading, e.g. `004 Alerting`.
    pub seed: String,
}

#[derive(Debug, Clone)]
pub struct Runbook {
    pub title: String,
    /// Seed and heading the checks come from.
    pub source: String,
    /// First checks, in order (Markdown).
    pub checks: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct NotMeasurable {
    pub criteria: Vec<String>,
    pub what: String,
    pub because: String,
}
