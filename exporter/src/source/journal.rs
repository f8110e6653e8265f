//! The journal source: runs a `chainwatch_journal::JournalReader` (a supervised `journalctl`) on
//! its own thread and feeds each entry's MESSAGE to the engine as a line.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use chainwatch_journal::{Event, JournalConfig, JournalReader, Problem, Sink};
use prometheus::Counter;

use crate::config::JournalSource;
use crate::engine::{Engine, Scratch, SourceStats};
use crate::health::Health;
use crate::registry::Metrics;

use super::metrics::SourceMetrics;
use super::thread;
pub use super::thread::Running;

/// Error kinds of a journal source: `exited` and `journalctl` (it cannot be started or read) fail
/// the source (see `source::metrics`); `decode` (an entry skipped) and `checkpoint` are counted.
pub const ERROR_KINDS: &[&str] = &["exited", "journalctl", "decode", "checkpoint"];

pub struct Prepared {
    name: String,
    cfg: JournalConfig,
    stats: SourceStats,
    source: SourceMetrics,
    checkpoints: Counter,
}

pub fn prepare(
    src: &JournalSource,
    state_dir: Option<&Path>,
    max_line_bytes: usize,
    engine: &Engine,
    m: &mut Metrics,
) -> Result<Prepared> {
    let name = src.name.as_str();
    let cfg = JournalConfig {
        name: name.to_string(),
        units: src.units.clone(),
        identifiers: src.identifiers.clone(),
        directory: src.directory.clone(),
        files: src.files.clone(),
        journalctl: src.journalctl.clone(),
        state_dir: state_dir.map(Path::to_path_buf),
        max_line_bytes,
        ..JournalConfig::default()
    };
    Ok(Prepared {
        name: name.to_string(),
        cfg,
        stats: engine.source_stats(m, name)?,
        source: SourceMetrics::new(m, name, ERROR_KINDS)?,
        checkpoints: m
            .counter_vec("chainwatch_checkpoint_writes_total", &["source"])?
            .with_label_values(&[name]),
    })
}

pub fn start(p: Prepared, engine: Arc<Engine>, health: Arc<Health>) -> Result<Running> {
    let reader =
        JournalReader::new(p.cfg.clone()).with_context(|| format!("source `{}`", p.name))?;
    let stop = reader.stop_handle();
    let (name, source) = (p.name.clone(), p.source.clone());
    let mut sink = JournalSink {
        scratch: engine.scratch(),
        engine,
        p,
        health: health.clone(),
        failed: false,
    };
    thread::spawn(
        &name,
        "journal",
        health,
        source,
        move || stop.stop(),
        move || reader.run(&mut sink).map_err(|e| e.to_string()),
    )
}

struct JournalSink {
    engine: Arc<Engine>,
    scratch: Scratch,
    p: Prepared,
    health: Arc<Health>,
    /// A run failed and no run has proved to work since (for the log and /health).
    failed: bool,
}

impl JournalSink {
    fn working(&mut self) {
        if std::mem::take(&mut self.failed) {
            info!("journalctl works again", source = self.p.name);
            self.health.update(&self.p.name, |s| s.last_error = None);
        }
        self.p.source.succeeded();
    }
}

impl Sink for JournalSink {
    fn lines(&mut self, chunk: &[u8]) {
        self.engine.process(chunk, &self.p.stats, &mut self.scratch);
        if self.p.source.is_up() {
            self.p.source.read();
        } else {
            self.working();
        }
    }

    fn event(&mut self, event: Event<'_>) {
        let name = self.p.name.clone();
        match event {
            Event::Ready => {
                self.health.update(&name, |s| {
                    s.ready = true;
                    s.state = "following";
                });
                info!("source ready", source = name);
            }
            Event::Started { pid } => {
                // A run has yet to prove itself: an entry, or `Healthy`.
                self.health.update(&name, |s| s.files = 1);
                debug!("journalctl started", source = name, pid = pid);
            }
            Event::Healthy => self.working(),
            Event::Exited { status } => {
                self.failed = true;
                self.p.source.failed("exited");
                warn!("journalctl exited", source = name, status = status);
                self.health.update(&name, |s| {
                    s.files = 0;
                    s.last_error = Some(format!("journalctl exited: {status}"));
                });
            }
            Event::Restarting { after } => {
                // Every failed run (or start) is followed by one.
                self.failed = true;
                self.p.source.down();
                info!(
                    "restarting journalctl",
                    source = name,
                    after = format!("{after:?}")
                )
            }
            Event::Error { error, problem } => {
                match problem {
                    Problem::Journalctl => {
                        self.failed = true;
                        self.p.source.failed("journalctl");
                    }
                    Problem::Checkpoint => self.p.source.count("checkpoint"),
                    Problem::MachineId => self.p.source.count("journalctl"),
                }
                warn!("journal source error", source = name, error = error);
                self.health
                    .update(&name, |s| s.last_error = Some(error.to_string()));
            }
            Event::Stderr { line } => warn!("journalctl", source = name, stderr = line),
            Event::LineTruncated => self.p.stats.truncated.inc(),
            Event::InvalidEntry { error } => {
                self.p.source.count("decode");
                debug!("skipped journal entry", source = name, error = error);
            }
            Event::CheckpointWritten => self.p.checkpoints.inc(),
        }
    }
}
