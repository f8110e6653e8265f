use std::path::PathBuf;
use std::time::Duration;

use crate::error::JournalError;

/// What to follow and how. Checked by [`JournalReader::new`](crate::JournalReader::new)
/// before anything runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalConfig {
    /// Source name; the cursor file is `<state_dir>/<name>.journal-cursor.json`.
    pub name: String,
    /// `journalctl --unit=` (each). Several units match any of them.
    pub units: Vec<String>,
    /// `journalctl --identifier=` (each). Several identifiers match any of
    /// them; with units as well, an entry must match both lists (journalctl's
    /// own semantics).
    pub identifiers: Vec<String>,
    /// `journalctl --directory=`: the journal files of one directory (tests,
    /// containers with the host's journal mounted). Exclusive with `files`.
    pub directory: Option<PathBuf>,
    /// `journalctl --file=` (each; journalctl expands globs). Exclusive with
    /// `directory`.
    pub files: Vec<PathBuf>,
    /// The `journalctl` binary: a name looked up in `PATH`, or a path.
    pub journalctl: PathBuf,
    /// The cursor is kept here when set.
    pub state_dir: Option<PathBuf>,
    pub checkpoint_interval: Duration,
    /// Delay before the first restart of a journalctl that exited or could
    /// not be started; doubled on each further failure up to `backoff_max`,
    /// back to `backoff_min` once journalctl has run for `healthy_run`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// A journalctl that has run this long without exiting is working:
    /// [`Event::Healthy`](crate::Event::Healthy) is reported, and the backoff
    /// starts over when it exits. Default [`HEALTHY_RUN`](crate::HEALTHY_RUN).
    pub healthy_run: Duration,
    /// Longer lines are cut to this many bytes (plus the newline) and
    /// reported with [`Event::LineTruncated`](crate::Event::LineTruncated).
    pub max_line_bytes: usize,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            name: "journal".to_string(),
            units: Vec::new(),
            identifiers: Vec::new(),
            directory: None,
            files: Vec::new(),
            journalctl: PathBuf::from("journalctl"),
            state_dir: None,
            checkpoint_interval: Duration::from_secs(1),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            healthy_run: crate::HEALTHY_RUN,
            max_line_bytes: 64 * 1024,
        }
    }
}

/// Upper bound accepted for `max_line_bytes` (the record cap is a multiple of it).
const MAX_LINE_LIMIT: usize = 64 * 1024 * 1024;

impl JournalConfig {
    /// The longest line of journalctl's JSON output that is decoded; longer
    /// records are skipped and reported with
    /// [`Event::InvalidEntry`](crate::Event::InvalidEntry).
    ///
    /// `4 * max_line_bytes + 64 KiB`: a message of `max_line_bytes` bytes
    /// takes at most 4 bytes per byte when journalctl prints it as an array
    /// of numbers (`255,`), and 64 KiB leaves room for the cursor, the
    /// timestamps and the field names. A message of printable text is
    /// therefore decoded (and then truncated) up to about four times
    /// `max_line_bytes`. Text made of control characters printed as
    /// `\u00XX` escapes reaches the cap sooner.
    pub fn max_record_bytes(&self) -> usize {
        self.max_line_bytes
            .saturating_mul(4)
            .saturating_add(64 * 1024)
    }

    pub(crate) fn validate(&self) -> Result<(), JournalError> {
        let bad = |msg: String| Err(JournalError::Config(msg));
        if self.checkpoint_interval.is_zero() {
            // A zero timeout would turn the wait into a busy loop.
            return bad("checkpoint_interval must be > 0".into());
        }
        if self.backoff_min.is_zero() {
            return bad("backoff_min must be > 0".into());
        }
        if self.backoff_max < self.backoff_min {
            return bad("backoff_max must be >= backoff_min".into());
        }
        if self.max_line_bytes == 0 || self.max_line_bytes > MAX_LINE_LIMIT {
            return bad(format!("max_line_bytes must be in 1..={MAX_LINE_LIMIT}"));
        }
        if self.journalctl.as_os_str().is_empty() {
            return bad("journalctl must not be empty".into());
        }
        if self.directory.is_some() && !self.files.is_empty() {
            // journalctl refuses the combination; say so before it runs.
            return bad("directory and files are exclusive".into());
        }
        if self.state_dir.is_some() && !plain_file_name(&self.name) {
            return bad("name must be a plain file name when state_dir is set".into());
        }
        // Every value becomes one `--option=value` argument: a NUL cannot be
        // passed, and an empty value would mean something else to journalctl.
        let values = self
            .units
            .iter()
            .map(|u| ("unit", u.as_bytes()))
            .chain(
                self.identifiers
                    .iter()
                    .map(|i| ("identifier", i.as_bytes())),
            )
            .chain(
                self.files
                    .iter()
                    .map(|f| ("file", f.as_os_str().as_encoded_bytes())),
            )
            .chain(
                self.directory
                    .iter()
                    .map(|d| ("directory", d.as_os_str().as_encoded_bytes())),
            )
            .chain(std::iter::once((
                "journalctl",
                self.journalctl.as_os_str().as_encoded_bytes(),
            )));
        for (what, v) in values {
            if v.is_empty() {
                return bad(format!("empty {what}"));
            }
            if v.contains(&0) {
                return bad(format!("{what} contains a NUL byte"));
            }
        }
        Ok(())
    }
}

fn plain_file_name(name: &str) -> bool {
    !(name.is_empty() || name.contains('/') || name == "." || name == ".." || name.contains('\0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut JournalConfig)) -> Result<(), JournalError> {
        let mut c = JournalConfig::default();
        f(&mut c);
        c.validate()
    }

    #[test]
    fn defaults_are_valid() {
        let d = JournalConfig::default();
        assert_eq!(d.journalctl, PathBuf::from("journalctl"));
        assert_eq!(d.checkpoint_interval, Duration::from_secs(1));
        assert_eq!(d.backoff_min, Duration::from_millis(500));
        assert_eq!(d.backoff_max, Duration::from_secs(30));
        assert_eq!(d.max_line_bytes, 65536);
        assert_eq!(d.max_record_bytes(), 4 * 65536 + 65536);
        assert!(with(|_| {}).is_ok());
    }

    #[test]
    fn rejects_bad_settings() {
        type Edit = Box<dyn FnOnce(&mut JournalConfig)>;
        let cases: Vec<Edit> = vec![
            Box::new(|c| c.checkpoint_interval = Duration::ZERO),
            Box::new(|c| c.backoff_min = Duration::ZERO),
            Box::new(|c| c.backoff_max = Duration::from_millis(1)),
            Box::new(|c| c.max_line_bytes = 0),
            Box::new(|c| c.max_line_bytes = usize::MAX),
            Box::new(|c| c.journalctl = PathBuf::new()),
            Box::new(|c| {
                c.directory = Some("/a".into());
                c.files = vec!["/b".into()];
            }),
            Box::new(|c| {
                c.state_dir = Some("/tmp".into());
                c.name = "../escape".into();
            }),
            Box::new(|c| c.units = vec![String::new()]),
            Box::new(|c| c.identifiers = vec!["a\0b".into()]),
        ];
        for (i, f) in cases.into_iter().enumerate() {
            assert!(
                matches!(with(f), Err(JournalError::Config(_))),
                "case {i} accepted"
            );
        }
        // A plain name is fine without a state_dir, and any name is fine then.
        assert!(with(|c| c.name = "../x".into()).is_ok());
    }
}
