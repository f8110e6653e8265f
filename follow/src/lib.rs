//! Follows log files and never loses or duplicates a line.
//!
//! The crate knows nothing about metrics: complete lines and lifecycle events
//! are handed to a [`Sink`] that the application implements. Linux only.
//!
//! # Identity
//!
//! A file is keyed by `(dev, inode)` and, once its first line is complete, a
//! fingerprint: FNV-1a 64 of that first line including its newline, or of
//! the first [`HEAD_BYTES`] bytes if the first line is longer. Until the
//! fingerprint exists the file is not read (nothing is lost: a partial line
//! would be held anyway).
//!
//! * Same inode, but smaller than our position or with a different
//!   fingerprint: it was truncated (copytruncate). Its old fingerprint and
//!   offset are remembered as a *pending copy* and it is read again from 0.
//! * A new inode whose fingerprint equals a pending copy: it is that copy,
//!   read from the remembered offset, or positioned at its end when it is
//!   shorter (logrotate copied, the writer went on and we read on in the
//!   original, then it truncated: all of the copy was counted). Nothing
//!   truncates a file before its copy is complete, so a copy is never
//!   "still being written" once its original is truncated.
//! * A new inode whose fingerprint equals a live file's and whose head is a
//!   prefix of it: a copy in progress, left alone until the original is
//!   truncated or closed.
//! * Anything else new is read from offset 0. Files present at the very first
//!   start (no checkpoint) are read from the byte after their last newline.
//! * On restart, a checkpoint entry is resumed by the file with the same
//!   `(dev, inode, fingerprint)`, else by one with the same fingerprint (at
//!   the entry's offset, or at the file's end if it is shorter, as above).
//!   An entry no file matched at start waits as long as a truncated file's
//!   copy would; its inode showing up in that time (renamed between the
//!   start's scan and its open) resumes at the entry's offset.
//! * A file whose first bytes are a gzip, bzip2, xz, zstd or LZ4 magic is
//!   never read, whatever its name, and reported once
//!   ([`Event::SkippedCompressed`]). A copy's unterminated last line is a
//!   fragment of a line finished in the original and is not emitted.
//!
//! Offsets only advance after [`Sink::lines`] returned, so a checkpoint never
//! covers unprocessed data.

mod assembler;
mod checkpoint;
mod compression;
mod config;
mod error;
mod fingerprint;
mod follower;
mod scan;
mod sink;
mod tracked;
mod watcher;

pub use assembler::LineAssembler;
pub use checkpoint::{checkpoint_path, CHECKPOINT_VERSION};
pub use compression::{compression_of, Compression, SNIFF_BYTES};
pub use config::FollowConfig;
pub use error::FollowError;
pub use fingerprint::{fingerprint_of, fnv1a64, HEAD_BYTES};
pub use follower::{Follower, StopHandle};
pub use sink::{Event, Problem, Sink};
