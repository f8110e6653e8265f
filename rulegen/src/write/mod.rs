//! Stage 5, writing: the templates the steps render with, the writer that compares with or
//! writes to the output directory, atomically and only what changed.

pub mod files;
pub mod templates;
pub mod text;

pub use files::{check, write, Diff, Files, WriteReport};
pub use templates::{TemplateError, Templates};
