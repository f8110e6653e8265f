//! promtool unit tests, one file per alert, recording rule and gate
//! (`prometheus/tests/{alerts,records,gates}/<name>.test.yml`), each from the measure itself:
//! series synthesized to put it just past and just inside its threshold (`synth`), at a step that
//! divides every window (`timing`), with what must fire or be recorded (`expect`).

mod alerts;
mod expect;
mod file;
mod gates;
mod records;
mod slos;
mod synth;
mod timing;

use crate::conventions::{self, TestKind};
use crate::model::Model;
use crate::write::templates::{TemplateError, Templates};
use crate::write::text::criteria_note;
use crate::write::Files;

pub use file::GenError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No test can be generated for the item of thresholds.yaml at `path`.
    #[error("{}: {}", .0.path, .0.message)]
    Gen(GenError),
    #[error(transparent)]
    Template(#[from] TemplateError),
}

pub fn render(m: &Model, t: &Templates) -> Result<Files, Error> {
    let mut files = Files::new();
    let mut emit = |kind: TestKind, name: &str, title: String, tf: file::TestFile| {
        let path = conventions::test_file_path(kind, name);
        let text = file::render(t, &path, &title, &tf)?;
        files.insert(path, text);
        Ok::<(), Error>(())
    };
    // An SLO's budget, SLI and alerts are tested together, by its own cases.
    let owned = |name: &str| m.slos.iter().any(|s| s.owns(name));
    for a in m.alerts.iter().filter(|a| !owned(&a.name)) {
        let tf = alerts::tests(m, a).map_err(Error::Gen)?;
        let title = format!("Tests of alert {} {}", a.name, criteria_note(&a.criteria));
        emit(TestKind::Alert, &a.name, title, tf)?;
    }
    for r in m.records.iter().filter(|r| !owned(&r.name)) {
        let tf = records::tests(m, r).map_err(Error::Gen)?;
        emit(
            TestKind::Record,
            &r.name,
            format!("Tests of recording rule {}", r.name),
            tf,
        )?;
    }
    for s in &m.slos {
        let tf = slos::tests(m, s).map_err(Error::Gen)?;
        let title = format!("Tests of SLO {} {}", s.name, criteria_note(&s.criteria));
        emit(TestKind::Slo, &s.name, title, tf)?;
    }
    for g in &m.gates {
        let tf = gates::tests(m, g).map_err(Error::Gen)?;
        let title = format!(
            "Tests of rollout gate {}: {} ({})",
            g.name, g.stage, g.source
        );
        emit(TestKind::Gate, &g.name, title, tf)?;
    }
    Ok(files)
}
