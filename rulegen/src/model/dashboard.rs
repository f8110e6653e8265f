//! Grafana: the provisioning settings and the dashboards with their panels, queries (PromQL as
//! Grafana gets it, filters added) and the threshold lines of the alerts drawn on them.

use super::measure::Op;

/// Provisioning: the datasource and the dashboard provider.
#[derive(Debug, Clone)]
pub struct GrafanaM {
    pub prometheus_url: String,
    pub dashboards_path: String,
    pub folder: String,
    pub refresh: String,
}

#[derive(Debug, Clone)]
pub struct QueryM {
    /// PromQL as Grafana gets it (variables, filters).
    pub expr: String,
    pub legend: String,
    /// Where it came from, for docs: `alert X`, `state m` or empty.
    pub origin: String,
}

/// One alert's threshold drawn on a panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub alert: String,
    pub op: Op,
    pub value: f64,
    pub level: String,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct PanelM {
    /// `<dashboard>/<panel>`, what coverage names.
    pub id: String,
    pub title: String,
    pub description: String,
    pub kind: String,
    pub criteria: Vec<String>,
    pub row: Option<String>,
    pub unit: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub width: u32,
    pub height: u32,
    pub queries: Vec<QueryM>,
    pub lines: Vec<Line>,
    /// Metrics and recording rules the queries select.
    pub uses: Vec<String>,
    pub sort_by: Option<String>,
    /// Value mappings of state queries: (value, text, color).
    pub mappings: Vec<(u32, String, String)>,
    /// Panel links: (title, url).
    pub links: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct DashboardM {
    pub id: String,
    pub uid: String,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub variables: Vec<String>,
    pub time_from: String,
    pub panels: Vec<PanelM>,
}
