//! Stage 1, the spec: thresholds.yaml version 1 as written (`v1`), the overlay merged over it
//! (`overlay`), and where each field is (`locate`). Nothing here checks meaning; `validate` does.

pub mod locate;
pub mod overlay;
pub mod v1;

use std::path::Path;

use chainwatch_yaml::{Positions, SpecError};

pub use locate::Locator;
pub use v1::Spec;

/// The input of validation: the spec with the overlay merged in, where its fields are, and the
/// overlay's own errors (reported together with the spec's).
pub struct Input {
    pub spec: Spec,
    pub locator: Locator,
    pub overlay_errors: Vec<SpecError>,
}

/// Read thresholds.yaml and merge an overlay over it. Errors here are YAML that does not parse
/// or fields that do not exist.
pub fn load(path: &Path, overlay: Option<&Path>) -> Result<Input, Vec<SpecError>> {
    let (mut spec, pos): (Spec, Positions) = locate::read_yaml(path)?;
    let mut locator = Locator::new(pos);
    let mut overlay_errors = Vec::new();
    if let Some(op) = overlay {
        let (ov, opos): (overlay::Overlay, Positions) = locate::read_yaml(op)?;
        overlay_errors = overlay::apply(&mut spec, &ov, &opos, &mut locator);
        locator.set_overlay(opos);
    }
    Ok(Input {
        spec,
        locator,
        overlay_errors,
    })
}

/// The same from text already read (tests change the spec in memory; the fuzzer).
pub fn load_str(path: &Path, text: &str) -> Result<Input, Vec<SpecError>> {
    let (spec, pos): (Spec, Positions) = locate::parse_yaml(path, text)?;
    Ok(Input {
        spec,
        locator: Locator::new(pos),
        overlay_errors: Vec::new(),
    })
}
