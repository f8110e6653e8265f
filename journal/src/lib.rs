//! Follows the systemd journal through a supervised `journalctl` and never
//! loses or repeats an entry across a journalctl restart or a restart of
//! the application.
//!
//! The crate knows nothing about metrics: message lines and lifecycle events
//! are handed to a [`Sink`] that the application implements. Linux only.
//!
//! # The command
//!
//! ```text
//! journalctl --follow --all --no-pager --no-tail --output=json --output-fields=MESSAGE
//!            [--directory=D | --file=F…] [--merge] [--unit=U…] [--identifier=T…]
//!            (--after-cursor=C | --since=@SECONDS.MICROS) [_MACHINE_ID=M]
//! ```
//!
//! * `--output=json` gives one object per line with the entry's `__CURSOR`;
//!   `--output-fields=MESSAGE` leaves out every other user field (the
//!   cursor and timestamps are always printed), which makes the output
//!   several times smaller. `--all` stops journalctl from replacing fields
//!   over 4096 bytes by `null`.
//! * `--no-tail` is required: `--follow` implies `--lines=10` unless
//!   `--since` is given, and with `--after-cursor` (seen with systemd 252)
//!   journalctl then prints the first 10 entries after the cursor and
//!   stalls until the journal changes again: a backlog logged while
//!   journalctl was down would come late, on a quiet unit not until its
//!   next entry.
//! * `--merge`: `--follow` also implies `--boot` (the latest boot only)
//!   unless `--merge` is given, so entries of an earlier boot that follow the
//!   saved cursor (the last lines logged before a reboot) would be skipped.
//!   On the system journal `--merge` also opens other machines' journals,
//!   hence the `_MACHINE_ID=` match with this machine's id
//!   (`/etc/machine-id`; if it cannot be read, `--merge` is left out and an
//!   [`Event::Error`] says that only the current boot is followed). With
//!   `--directory`/`--file` there is no such filter: every machine in them
//!   is followed.
//! * Start position: after the last processed cursor when there is one
//!   (`--after-cursor` skips the entry the cursor names, only that one).
//!   On a first run, `--since=@T`, with T the moment [`JournalReader::run`]
//!   started (microseconds, before [`Event::Ready`]). Not `--lines=0`, which
//!   starts at whatever the tail is when journalctl gets round to opening the
//!   files, and would start from a new tail after every restart until a
//!   first entry is processed: what was logged in between would be lost.
//!   `--since=@T` is fixed by us, so entries written right after start (or
//!   while the first journalctl is being restarted) are delivered. `--show-cursor`
//!   is not used: JSON output has the cursor in every entry, and the
//!   `-- cursor:` trailer it adds on exit is not JSON.
//!
//! journalctl runs in its own process group with `PR_SET_PDEATHSIG`
//! (SIGKILL), so it dies with the thread supervising it even if the
//! application is killed with SIGKILL. Three small threads per journalctl
//! (stdout, stderr, and a `waitid(WNOWAIT)` waiter) report on one bounded
//! channel, which is all the run loop waits on: no polling, and memory is
//! bounded by the channel (8 batches of about 64 KiB) plus one record.
//! Stopping sends SIGTERM to the group, SIGKILL after [`STOP_GRACE`], and
//! reaps; dropping the reader mid-run (a panicking sink) kills and reaps
//! too. A journalctl that exits is restarted after `backoff_min`, doubled
//! per consecutive failure up to `backoff_max`, reset once one has run for
//! `healthy_run` ([`HEALTHY_RUN`] by default), which it reports as
//! [`Event::Healthy`].
//!
//! # Exactness
//!
//! The cursor of an entry is taken only after [`Sink::lines`] returned for
//! it, and the cursor file (`<state_dir>/<name>.journal-cursor.json`,
//! `{"version": 1, "cursor": "…"}`) is replaced atomically (temp file, fsync,
//! rename, fsync of the directory) every `checkpoint_interval` and at stop.
//! A journalctl restart resumes after the last processed entry (what was
//! read but not yet delivered is read again, so nothing is skipped or
//! delivered twice). An application restart resumes from the cursor file;
//! after a crash (no final checkpoint), up to one `checkpoint_interval` of
//! entries is delivered again: at least once, never lost.
//!
//! Limits: a first run relies on realtime timestamps (an entry written
//! after the start with an older timestamp, after the clock was set back,
//! is not delivered); a record longer than
//! [`JournalConfig::max_record_bytes`] is skipped and reported; entries that
//! journald itself rotated away before they were read are gone. JSON output
//! makes journalctl quiet: without read access to the journal (group
//! `systemd-journal` or `adm`) it prints no hint, it just shows nothing.
//! Needs systemd 236 or later (`--output-fields`).

mod checkpoint;
mod child;
mod config;
mod decode;
mod entry;
mod error;
mod reader;
mod sink;

pub use checkpoint::{cursor_path, CURSOR_VERSION};
pub use config::JournalConfig;
pub use decode::json_entry;
pub use entry::{Entry, ExportReader};
pub use error::JournalError;
pub use reader::{JournalReader, StopHandle, HEALTHY_RUN, STOP_GRACE};
pub use sink::{Event, Problem, Sink};
