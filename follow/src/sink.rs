use std::path::Path;

use crate::compression::Compression;

/// Receives everything the follower produces. Called only from the thread
/// running [`Follower::run`](crate::Follower::run).
pub trait Sink {
    /// `chunk` holds one or more COMPLETE lines; every line ends with `b'\n'`
    /// (CR and NUL handling is the caller's job).
    ///
    /// The bytes are only counted as processed (and checkpointed) after this
    /// returns, so a slow sink applies back-pressure instead of losing data.
    fn lines(&mut self, path: &Path, chunk: &[u8]);

    fn event(&mut self, event: Event<'_>);
}

/// What an [`Event::Error`] concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Problem {
    /// A matched file or directory cannot be listed, opened or read.
    Read,
    /// inotify (watches, or inotify itself): polling goes on.
    Watch,
    /// The checkpoint cannot be loaded or written.
    Checkpoint,
}

/// Lifecycle notifications. `path` is the file's current name as last seen by
/// a scan; for errors not tied to one file it is the most relevant directory
/// or an empty path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// Initial scan done, files positioned. Emitted once per `run`.
    Ready,
    /// A file started being read at `offset`.
    Opened { path: &'a Path, offset: u64 },
    /// The path no longer names the file we are reading (renamed or deleted);
    /// the old handle keeps being drained.
    Rotated { path: &'a Path },
    /// The file shrank or its first line changed under the same inode
    /// (copytruncate); reading restarts at offset 0.
    Truncated { path: &'a Path },
    /// Reading of this file stopped for good (deleted or rotated away and idle).
    Closed { path: &'a Path },
    /// One line longer than `max_line_bytes` was cut to that length.
    LineTruncated { path: &'a Path },
    /// A non-fatal problem; the operation is retried on the next wake.
    Error {
        path: &'a Path,
        error: &'a str,
        problem: Problem,
    },
    /// The problems reported by `Error` that are still unresolved, after a
    /// pass in which their number changed (all zero: every one is resolved).
    /// `read`: a matched file or directory that cannot be opened, read or
    /// listed; `watch`: inotify (polling goes on); `checkpoint`: the
    /// checkpoint cannot be loaded or written.
    Problems {
        read: usize,
        watch: usize,
        checkpoint: usize,
    },
    /// A file a pattern matches is compressed (by its magic bytes, whatever
    /// its name); it is never read. Reported once per file.
    SkippedCompressed { path: &'a Path, format: Compression },
    /// A checkpoint was durably written.
    CheckpointWritten,
}
