//! Service level objectives: what an SLO is made of once validated. Its SLI records are plain
//! `Record`s (one per window), its budget and period SLI records and its burn-rate alerts plain
//! `Record`s and `AlertM`s too; this says which they are, for the steps that test and draw them.

use chainwatch_duration::Duration;

use super::measure::Measure;

/// A multi-window burn-rate condition (Google SRE workbook, chapter 5): the error ratio over
/// both windows above `factor` times the error budget.
#[derive(Debug, Clone, PartialEq)]
pub struct BurnM {
    pub long: Duration,
    pub short: Duration,
    pub factor: f64,
}

/// One alert of an SLO: its name, severity and the window pairs any of which fires it.
#[derive(Debug, Clone, PartialEq)]
pub struct SloAlertM {
    pub name: String,
    pub severity: String,
    pub burns: Vec<BurnM>,
}

#[derive(Debug, Clone)]
pub struct SloM {
    pub name: String,
    pub criteria: Vec<String>,
    pub group: String,
    pub objective: f64,
    /// `1 - objective`, rounded as written.
    pub budget: f64,
    pub period: Duration,
    /// The error ratio at the shortest window, as validated (tests synthesize its inputs).
    pub errors: Measure,
    /// Window → its error-ratio record, shortest first (the period last).
    pub windows: Vec<(Duration, String)>,
    pub sli_record: String,
    pub budget_record: String,
    pub page: SloAlertM,
    pub ticket: SloAlertM,
    pub path: String,
}

impl SloM {
    /// The error-ratio record of `window`.
    pub fn record_of(&self, window: Duration) -> Option<&str> {
        self.windows
            .iter()
            .find(|(w, _)| *w == window)
            .map(|(_, r)| r.as_str())
    }

    /// Whether `name` is one of the rules this SLO writes with their own tests (budget, period
    /// SLI, alerts).
    pub fn owns(&self, name: &str) -> bool {
        [
            &self.sli_record,
            &self.budget_record,
            &self.page.name,
            &self.ticket.name,
        ]
        .iter()
        .any(|n| n.as_str() == name)
    }
}
