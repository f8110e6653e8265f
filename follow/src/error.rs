use std::io;
use std::path::PathBuf;

/// Fatal errors. Anything that concerns a single file is reported through
/// [`Event::Error`](crate::Event::Error) instead and retried.
#[derive(thiserror::Error, Debug)]
pub enum FollowError {
    #[error("invalid follow configuration: {0}")]
    Config(String),
    #[error("invalid pattern {pattern:?}: {source}")]
    Pattern {
        pattern: String,
        #[source]
        source: glob::PatternError,
    },
    #[error("state directory {}: {source}", path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing checkpoint {}: {source}", path.display())]
    Checkpoint {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}
