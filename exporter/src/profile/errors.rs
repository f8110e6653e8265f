//! Every error a profile load found, reported at once (each `file:line:col: field: message`),
//! so a user fixes a profile in one round instead of one error per run.

use std::fmt;

use chainwatch_yaml::SpecError;

/// Errors shown in full; more are summarized in one line (a profile with a hundred errors is
/// usually one mistake repeated).
pub const MAX_SHOWN: usize = 25;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadErrors(pub Vec<SpecError>);

impl LoadErrors {
    /// Sorted by file and position, duplicates dropped.
    pub fn new(mut errs: Vec<SpecError>) -> Self {
        errs.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        errs.dedup();
        LoadErrors(errs)
    }
}

impl From<SpecError> for LoadErrors {
    fn from(e: SpecError) -> Self {
        LoadErrors(vec![e])
    }
}

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().take(MAX_SHOWN).enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        if self.0.len() > MAX_SHOWN {
            write!(f, "\n… and {} more errors", self.0.len() - MAX_SHOWN)?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}
