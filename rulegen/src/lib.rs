//! chainwatch-rulegen: one thresholds.yaml → Prometheus alert and recording rules, promtool tests,
//! the Alertmanager configuration with its routing and inhibition cases, Grafana dashboards and the
//! runbook.
//!
//! Like Sloth, generation is a one-way pipeline: versioned spec → validation → internal model →
//! ordered steps → writer. This file is the only one that names every stage, in order:
//! 1. `spec`: thresholds.yaml v1 as written, the overlay merged over it, where each field is;
//! 2. `validate`: spec → model, every error with file, line, column and field;
//! 3. `model`: plain data the steps read (with `promql` for expressions, `conventions` for names);
//! 4. `steps`: rules, promtool tests, Alertmanager, Grafana, runbook, canary analysis templates
//!    (and the coverage report), then the packaging of those files: Kubernetes manifests, the mixin;
//! 5. `write`: templates, and the writer that compares with or writes to the output directory.

pub mod conventions;
pub mod model;
pub mod promql;
pub mod spec;
pub mod steps;
pub mod validate;
pub mod write;

use std::path::Path;

use chainwatch_yaml::SpecError;

pub use steps::coverage;
pub use write::Files;

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
pub fn generate(thresholds: &Path, overlay: Option<&Path>) -> Result<(model::Model, Files), Error> {
    let input = spec::load(thresholds, overlay).map_err(Error::Invalid)?;
    pipeline(&input)
}

/// The model and only the rule files Prometheus loads (what `chainwatch-gate` asks about),
/// without rendering tests, dashboards and the rest.
pub fn generate_rules(
    thresholds: &Path,
    overlay: Option<&Path>,
) -> Result<(model::Model, Files), Error> {
    let input = spec::load(thresholds, overlay).map_err(Error::Invalid)?;
    let model = validate::model(&input).map_err(Error::Invalid)?;
    let t = write::Templates::new().map_err(|e| Error::Render(e.to_string()))?;
    let files = steps::rules::render(&model, &t).map_err(|e| Error::Render(e.to_string()))?;
    Ok((model, files))
}

/// Same from text (for tests that change the spec in memory, and the fuzzer).
pub fn generate_str(path: &Path, text: &str) -> Result<(model::Model, Files), Error> {
    let input = spec::load_str(path, text).map_err(Error::Invalid)?;
    pipeline(&input)
}

fn pipeline(input: &spec::Input) -> Result<(model::Model, Files), Error> {
    let model = validate::model(input).map_err(Error::Invalid)?;
    let files = render(&model, &input.locator)?;
    Ok((model, files))
}

/// The steps, in order; each returns its files.
fn render(m: &model::Model, loc: &spec::Locator) -> Result<Files, Error> {
    let template_error = |e: write::TemplateError| Error::Render(e.to_string());
    let t = write::Templates::new().map_err(template_error)?;
    let mut files = Files::new();
    files.extend(steps::rules::render(m, &t).map_err(template_error)?);
    files.extend(steps::promtool::render(m, &t).map_err(|e| match e {
        // A measure no test can be generated for is an error of its item in thresholds.yaml.
        steps::promtool::Error::Gen(g) => Error::Invalid(vec![loc.error(&g.path, g.message)]),
        steps::promtool::Error::Template(e) => template_error(e),
    })?);
    if let Some(al) = &m.alerting {
        files.extend(steps::alertmanager::render(m, al, &t).map_err(template_error)?);
    }
    files.extend(steps::grafana::render(m));
    files.extend(steps::runbook::render(m));
    files.extend(steps::canary::render(m));
    // Packaging: the files above, wrapped for Kubernetes and as a mixin.
    let k8s = steps::kubernetes::render(m, &files);
    let mixin = steps::mixin::render(m, &files).map_err(Error::Render)?;
    files.extend(k8s);
    files.extend(mixin);
    Ok(files)
}
