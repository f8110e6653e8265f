//! The file source: runs a `chainwatch_follow::Follower` on its own thread and turns its lines and
//! events into engine work and self-metrics. The follower itself knows nothing of metrics.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use chainwatch_follow::{Event, FollowConfig, Follower, Problem, Sink};
use prometheus::{Counter, Gauge};

use crate::config::FileSource;
use crate::engine::{Engine, Scratch, SourceStats};
use crate::health::Health;
use crate::registry::Metrics;

use super::metrics::SourceMetrics;
use super::thread;
pub use super::thread::Running;

/// Error kinds of a file source: `read` fails the source (see `source::metrics`), `watch` and
/// `checkpoint` are counted.
pub const ERROR_KINDS: &[&str] = &["read", "watch", "checkpoint"];

/// Self-metrics of one file source, resolved before the thread starts.
pub struct FileMetrics {
    rotations: Counter,
    truncations: Counter,
    skipped_compressed: Counter,
    followed: Gauge,
    checkpoints: Counter,
    source: SourceMetrics,
}

pub struct Prepared {
    name: String,
    follow: FollowConfig,
    stats: SourceStats,
    metrics: FileMetrics,
}

pub fn prepare(
    src: &FileSource,
    state_dir: Option<&Path>,
    max_line_bytes: usize,
    engine: &Engine,
    m: &mut Metrics,
) -> Result<Prepared> {
    let name = src.name.as_str();
    let one = |m: &mut Metrics, metric: &str| -> Result<Counter> {
        Ok(m.counter_vec(metric, &["source"])?
            .with_label_values(&[name]))
    };
    let gauge = |m: &mut Metrics, metric: &str| -> Result<Gauge> {
        Ok(m.gauge_vec(metric, &["source"])?.with_label_values(&[name]))
    };
    let metrics = FileMetrics {
        rotations: one(m, "chainwatch_file_rotations_total")?,
        truncations: one(m, "chainwatch_file_truncations_total")?,
        skipped_compressed: one(m, "chainwatch_file_skipped_compressed_total")?,
        checkpoints: one(m, "chainwatch_checkpoint_writes_total")?,
        followed: gauge(m, "chainwatch_files_followed")?,
        source: SourceMetrics::new(m, name, ERROR_KINDS)?,
    };
    let stats = engine.source_stats(m, name)?;
    let follow = FollowConfig {
        name: name.to_string(),
        patterns: src.paths.clone(),
        poll_interval: src.poll_interval,
        use_inotify: src.inotify,
        max_line_bytes,
        rotate_wait: src.rotate_wait,
        state_dir: state_dir.map(Path::to_path_buf),
        ..FollowConfig::default()
    };
    Ok(Prepared {
        name: name.to_string(),
        follow,
        stats,
        metrics,
    })
}

pub fn start(p: Prepared, engine: Arc<Engine>, health: Arc<Health>) -> Result<Running> {
    let follower =
        Follower::new(p.follow.clone()).with_context(|| format!("source `{}`", p.name))?;
    let stop = follower.stop_handle();
    let source = p.metrics.source.clone();
    let mut sink = EngineSink {
        name: p.name.clone(),
        scratch: engine.scratch(),
        engine,
        stats: p.stats,
        metrics: p.metrics,
        health: health.clone(),
        read_problems: 0,
    };
    thread::spawn(
        &p.name,
        "file",
        health,
        source,
        move || stop.stop(),
        move || follower.run(&mut sink).map_err(|e| e.to_string()),
    )
}

struct EngineSink {
    name: String,
    engine: Arc<Engine>,
    stats: SourceStats,
    scratch: Scratch,
    metrics: FileMetrics,
    health: Arc<Health>,
    /// Unresolved read problems, as the follower last said.
    read_problems: usize,
}

impl Sink for EngineSink {
    fn lines(&mut self, _path: &Path, chunk: &[u8]) {
        self.engine.process(chunk, &self.stats, &mut self.scratch);
        self.metrics.source.read();
    }

    fn event(&mut self, event: Event<'_>) {
        let m = &self.metrics;
        match event {
            Event::Ready => {
                // Problems found by the initial scan came before, as `Problems`.
                if self.read_problems == 0 {
                    m.source.succeeded();
                }
                self.health.update(&self.name, |s| {
                    s.ready = true;
                    s.state = "following";
                });
                info!("source ready", source = self.name);
            }
            Event::Opened { path, offset } => {
                m.followed.inc();
                self.health.update(&self.name, |s| s.files += 1);
                debug!(
                    "following file",
                    source = self.name,
                    path = path.display(),
                    offset = offset
                );
            }
            Event::Closed { path } => {
                m.followed.dec();
                self.health.update(&self.name, |s| s.files -= 1);
                debug!("closed file", source = self.name, path = path.display());
            }
            Event::Rotated { path } => {
                m.rotations.inc();
                debug!("rotation", source = self.name, path = path.display());
            }
            Event::Truncated { path } => {
                m.truncations.inc();
                info!("truncation", source = self.name, path = path.display());
            }
            Event::SkippedCompressed { path, format } => {
                m.skipped_compressed.inc();
                info!(
                    "skipping compressed file",
                    source = self.name,
                    path = path.display(),
                    format = format.name()
                );
            }
            Event::LineTruncated { .. } => self.stats.truncated.inc(),
            Event::CheckpointWritten => m.checkpoints.inc(),
            Event::Error {
                path,
                error,
                problem,
            } => {
                match problem {
                    Problem::Read => m.source.failed("read"),
                    Problem::Watch => m.source.count("watch"),
                    Problem::Checkpoint => m.source.count("checkpoint"),
                }
                let msg = format!("{}: {error}", path.display());
                warn!("source error", source = self.name, error = msg);
                self.health.update(&self.name, |s| s.last_error = Some(msg));
            }
            Event::Problems { read, .. } => {
                let before = std::mem::replace(&mut self.read_problems, read);
                if read > 0 {
                    m.source.down();
                } else if before > 0 {
                    m.source.succeeded();
                    self.health.update(&self.name, |s| s.last_error = None);
                    info!("source reads again", source = self.name);
                }
            }
        }
    }
}
