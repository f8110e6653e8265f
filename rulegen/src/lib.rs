//! chainwatch-rulegen: one thresholds.yaml → Prometheus alert and recording rules, promtool tests,
//! the Alertmanager configuration with its routing and inhibition cases, Grafana dashboards and the
//! runbook.
//!
//! Like Sloth, generation is spec → model → ordered steps → writers:
//! 1. `build`: load and validate thresholds.yaml (+ overlay) into the model (`model`);
//! 2. `render`: recording rules, rollout gates and alert rules per group;
//! 3. `testgen`: promtool tests synthesized from each measure;
//! 4. `alerting`: Alertmanager routes, receivers, inhibitions and their test cases;
//! 5. `dashboards`: Grafana dashboards and provisioning; `runbook`: docs/runbook.md;
//! 6. `output`: compare with or write to the output directory, atomically.

pub mod alerting;
pub mod build;
pub mod coverage;
pub mod dashboards;
pub mod model;
pub mod output;
pub mod promql;
pub mod render;
pub mod runbook;
pub mod spec;
pub mod testgen;

use std::path::Path;

use chainwatch_yaml::SpecError;

pub use render::Files;

/// The constant labels as owned strings (grouping of rates and ratios).
pub fn constant_labels() -> Vec<String> {
    chainwatch_catalog::CONSTANT_LABELS
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// thresholds.yaml (or the overlay) is invalid: every error with file, line, column, field.
    #[error("{}", display_all(.0))]
    Invalid(Vec<SpecError>),
    #[error("{0}")]
    Render(String),
}

fn display_all(v: &[SpecError]) -> String {
    v.iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Validate and render everything in memory.
pub fn generate(thresholds: &Path, overlay: Option<&Path>) -> Result<(build::Model, Files), Error> {
    let (model, loc) = build::load(thresholds, overlay).map_err(Error::Invalid)?;
    let files = finish(&model, &loc)?;
    Ok((model, files))
}

/// Same from text (for tests that change the spec in memory).
pub fn generate_str(path: &Path, text: &str) -> Result<(build::Model, Files), Error> {
    let (model, loc) = build::load_str(path, text).map_err(Error::Invalid)?;
    let files = finish(&model, &loc)?;
    Ok((model, files))
}

fn finish(model: &build::Model, loc: &build::Locator) -> Result<Files, Error> {
    render::render(model).map_err(|e| match e {
        render::RenderError::Gen(g) => Error::Invalid(vec![loc.error(&g.path, g.message)]),
        other => Error::Render(other.to_string()),
    })
}
