use std::path::PathBuf;
use std::time::Duration;

use crate::error::FollowError;

/// What to follow and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowConfig {
    /// Source name; the checkpoint file is `<state_dir>/<name>.checkpoint.json`.
    pub name: String,
    /// Paths or globs (glob crate syntax), e.g. `/var/log/app/node.log*`.
    pub patterns: Vec<String>,
    /// Rescan/poll tick. Runs even with inotify, as a safety net.
    pub poll_interval: Duration,
    /// `false` = polling only (network filesystems).
    pub use_inotify: bool,
    /// Longer lines are truncated to this many bytes (plus the newline) and reported.
    pub max_line_bytes: usize,
    /// How long a file that no longer matches any pattern keeps being drained
    /// after it has gone idle at EOF.
    pub rotate_wait: Duration,
    /// Checkpoints are written here when set.
    pub state_dir: Option<PathBuf>,
    pub checkpoint_interval: Duration,
    pub read_buffer_bytes: usize,
}

impl Default for FollowConfig {
    fn default() -> Self {
        FollowConfig {
            name: "default".to_string(),
            patterns: Vec::new(),
            poll_interval: Duration::from_millis(250),
            use_inotify: true,
            max_line_bytes: 64 * 1024,
            rotate_wait: Duration::from_secs(5),
            state_dir: None,
            checkpoint_interval: Duration::from_secs(1),
            read_buffer_bytes: 64 * 1024,
        }
    }
}

impl FollowConfig {
    pub(crate) fn validate(&self) -> Result<(), FollowError> {
        let bad = |msg: &str| Err(FollowError::Config(msg.to_string()));
        if self.patterns.is_empty() {
            return bad("no patterns");
        }
        if self.poll_interval.is_zero() {
            // A zero timeout would turn the wait into a busy loop.
            return bad("poll_interval must be > 0");
        }
        if self.checkpoint_interval.is_zero() {
            return bad("checkpoint_interval must be > 0");
        }
        if self.max_line_bytes == 0 {
            return bad("max_line_bytes must be > 0");
        }
        if self.read_buffer_bytes == 0 {
            return bad("read_buffer_bytes must be > 0");
        }
        if self.state_dir.is_some()
            && (self.name.is_empty()
                || self.name.contains('/')
                || self.name == "."
                || self.name == ".."
                || self.name.contains('\0'))
        {
            return bad("name must be a plain file name when state_dir is set");
        }
        for p in &self.patterns {
            glob::Pattern::new(p).map_err(|source| FollowError::Pattern {
                pattern: p.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut FollowConfig)) -> Result<(), FollowError> {
        let mut c = FollowConfig {
            patterns: vec!["/tmp/x.log".into()],
            ..FollowConfig::default()
        };
        f(&mut c);
        c.validate()
    }

    #[test]
    fn defaults_are_valid() {
        let d = FollowConfig::default();
        assert_eq!(d.poll_interval, Duration::from_millis(250));
        assert!(d.use_inotify);
        assert_eq!(d.max_line_bytes, 65536);
        assert_eq!(d.rotate_wait, Duration::from_secs(5));
        assert_eq!(d.checkpoint_interval, Duration::from_secs(1));
        assert_eq!(d.read_buffer_bytes, 65536);
        assert!(with(|_| {}).is_ok());
    }

    #[test]
    fn rejects_bad_settings() {
        assert!(matches!(
            with(|c| c.patterns.clear()),
            Err(FollowError::Config(_))
        ));
        assert!(matches!(
            with(|c| c.poll_interval = Duration::ZERO),
            Err(FollowError::Config(_))
        ));
        assert!(matches!(
            with(|c| c.max_line_bytes = 0),
            Err(FollowError::Config(_))
        ));
        let err = with(|c| c.patterns.push("/tmp/[".into())).unwrap_err();
        assert!(matches!(err, FollowError::Pattern { .. }));
        assert!(err.to_string().contains("/tmp/["), "{err}");
        assert!(with(|c| {
            c.state_dir = Some("/tmp".into());
            c.name = "../escape".into();
        })
        .is_err());
    }
}
