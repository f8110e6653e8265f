//! Profiles map a node family's log output onto catalog metrics.

mod builtin;
mod combine;
mod compile;
mod errors;
mod literals;
mod merge;
mod rule;
pub mod spec;

pub use builtin::{builtin, BUILTINS};
pub use compile::{compile, declared, Action, Captures, LabelSrc, Matcher, Op, Rule, ValueSrc};
pub use errors::{LoadErrors, MAX_SHOWN};
pub use merge::chain_label;
pub use rule::{unit_factor, unknown_metric};

use std::path::Path;

use chainwatch_yaml::{Positions, SpecError};
use spec::ProfileSpec;

/// A profile as loaded: its spec and where each field is, for errors.
pub struct Loaded {
    pub spec: ProfileSpec,
    pub positions: Positions,
}

/// Load a built-in profile by name, or a profile file by path.
pub fn load(name_or_path: &str) -> Result<Loaded, SpecError> {
    if let Some(b) = builtin(name_or_path) {
        let file = format!("<builtin>/{}.yaml", b.name);
        let (spec, positions) = chainwatch_yaml::from_str(Path::new(&file), b.yaml)?;
        return Ok(Loaded { spec, positions });
    }
    let path = Path::new(name_or_path);
    if !path.exists() && !name_or_path.contains(['/', '.']) {
        let names: Vec<&str> = BUILTINS.iter().map(|b| b.name).collect();
        return Err(SpecError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            field: String::new(),
            message: format!(
                "no built-in profile `{name_or_path}` and no such file; built-ins: {}",
                names.join(", ")
            ),
        });
    }
    let (spec, positions) = chainwatch_yaml::from_file(path)?;
    Ok(Loaded { spec, positions })
}
