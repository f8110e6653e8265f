use std::io;
use std::path::PathBuf;

/// Fatal errors. Everything that happens while running (journalctl missing,
/// exiting, printing garbage, a checkpoint that cannot be written this time)
/// is reported through [`Event`](crate::Event) and retried instead.
#[derive(thiserror::Error, Debug)]
pub enum JournalError {
    #[error("invalid journal configuration: {0}")]
    Config(String),
    #[error("state directory {}: {source}", path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing journal cursor {}: {source}", path.display())]
    Checkpoint {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}
