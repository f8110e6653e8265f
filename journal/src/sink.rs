use std::time::Duration;

/// Receives everything the reader produces. Called only from the thread
/// running [`JournalReader::run`](crate::JournalReader::run).
pub trait Sink {
    /// `chunk` holds one or more complete lines, each ending with `b'\n'`.
    ///
    /// Every journal entry's `MESSAGE` becomes at least one line: one
    /// trailing newline of the message is dropped, and a message that still
    /// contains newlines is split into several lines. Bytes are passed
    /// through untouched (non-UTF-8, NUL, CR), except that each line is cut
    /// to `max_line_bytes`. Entries without a `MESSAGE` produce no line.
    ///
    /// An entry is only counted as processed (and its cursor checkpointed)
    /// after this returns, so a slow sink applies back-pressure instead of
    /// losing data.
    fn lines(&mut self, chunk: &[u8]);

    fn event(&mut self, event: Event<'_>);
}

/// What an [`Event::Error`] concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Problem {
    /// journalctl cannot be started, or its output cannot be read.
    Journalctl,
    /// The saved cursor cannot be loaded or written.
    Checkpoint,
    /// `/etc/machine-id` cannot be read: only the current boot is followed.
    MachineId,
}

/// Lifecycle notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// The saved cursor (if any) is loaded and the start position fixed.
    /// Emitted once per `run`, before the first journalctl is started.
    /// On a first run, every entry written from now on (realtime timestamp
    /// not older than this moment) will be delivered.
    Ready,
    /// A journalctl process was started.
    Started { pid: u32 },
    /// The journalctl started last has run
    /// [`JournalConfig::healthy_run`](crate::JournalConfig::healthy_run)
    /// without exiting. Once per run; a run that exits earlier never gets it.
    Healthy,
    /// journalctl ended on its own or was killed by someone else, e.g.
    /// `exit status: 1` or `signal: 9 (SIGKILL)`. A restart follows. Not
    /// emitted for the journalctl stopped by [`StopHandle::stop`](crate::StopHandle::stop).
    Exited { status: &'a str },
    /// journalctl will be started again after this delay.
    Restarting { after: Duration },
    /// A non-fatal problem: journalctl could not be started, the saved
    /// cursor was unusable, a checkpoint could not be written (retried).
    Error { error: &'a str, problem: Problem },
    /// One line journalctl wrote to its stderr (warnings such as missing
    /// read permission on the journal, or why it is about to exit). Cut to
    /// 4 KiB.
    Stderr { line: &'a str },
    /// One line longer than `max_line_bytes` was cut to that length.
    LineTruncated,
    /// journalctl printed something that is not a journal entry this crate
    /// can decode, or a record longer than
    /// [`JournalConfig::max_record_bytes`](crate::JournalConfig::max_record_bytes).
    /// The record is skipped.
    InvalidEntry { error: &'a str },
    /// The cursor was durably written.
    CheckpointWritten,
}
