//! The journal source: runs a `chainwatch_journal::JournalReader` (a supervised `journalctl`) on
//! its own thread and feeds each entry's MESSAGE to the engine as a line.

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use chainwatch_journal::{Event, JournalConfig, JournalReader, Sink};
use prometheus::{Counter, CounterVec, Gauge};

use crate::config::JournalSource;
use crate::engine::{Engine, Scratch, SourceStats};
use crate::health::Health;
use crate::registry::Metrics;

use super::thread;
pub use super::thread::Running;

pub struct Prepared {
    name: String,
    cfg: JournalConfig,
    stats: SourceStats,
    up: Gauge,
    last_success: Gauge,
    checkpoints: Counter,
    errors: CounterVec,
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
        up: m
            .gauge_vec("chainwatch_source_up", &["source"])?
            .with_label_values(&[name]),
        last_success: m
            .gauge_vec(
                "chainwatch_source_last_success_timestamp_seconds",
                &["source"],
            )?
            .with_label_values(&[name]),
        checkpoints: m
            .counter_vec("chainwatch_checkpoint_writes_total", &["source"])?
            .with_label_values(&[name]),
        errors: m.counter_vec("chainwatch_source_errors_total", &["source", "kind"])?,
    })
}

pub fn start(p: Prepared, engine: Arc<Engine>, health: Arc<Health>) -> Result<Running> {
    let reader =
        JournalReader::new(p.cfg.clone()).with_context(|| format!("source `{}`", p.name))?;
    let stop = reader.stop_handle();
    let (name, up) = (p.name.clone(), p.up.clone());
    let mut sink = JournalSink {
        scratch: engine.scratch(),
        engine,
        p,
        health: health.clone(),
    };
    thread::spawn(
        &name,
        "journal",
        health,
        up,
        move || stop.stop(),
        move || reader.run(&mut sink).map_err(|e| e.to_string()),
    )
}

struct JournalSink {
    engine: Arc<Engine>,
    scratch: Scratch,
    p: Prepared,
    health: Arc<Health>,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Sink for JournalSink {
    fn lines(&mut self, chunk: &[u8]) {
        self.engine.process(chunk, &self.p.stats, &mut self.scratch);
        self.p.last_success.set(now());
    }

    fn event(&mut self, event: Event<'_>) {
        let name = self.p.name.clone();
        let err = |kind: &str| {
            self.p
                .errors
                .with_label_values(&[name.as_str(), kind])
                .inc()
        };
        match event {
            Event::Ready => {
                self.health.update(&name, |s| {
                    s.ready = true;
                    s.state = "following";
                });
                info!("source ready", source = name);
            }
            Event::Started { pid } => {
                self.p.up.set(1.0);
                self.p.last_success.set(now());
                self.health.update(&name, |s| s.files = 1);
                debug!("journalctl started", source = name, pid = pid);
            }
            Event::Exited { status } => {
                self.p.up.set(0.0);
                err("exited");
                warn!("journalctl exited", source = name, status = status);
                self.health.update(&name, |s| {
                    s.files = 0;
                    s.last_error = Some(format!("journalctl exited: {status}"));
                });
            }
            Event::Restarting { after } => info!(
                "restarting journalctl",
                source = name,
                after = format!("{after:?}")
            ),
            Event::Error { error } => {
                err("journalctl");
                warn!("journal source error", source = name, error = error);
                self.health
                    .update(&name, |s| s.last_error = Some(error.to_string()));
            }
            Event::Stderr { line } => warn!("journalctl", source = name, stderr = line),
            Event::LineTruncated => self.p.stats.truncated.inc(),
            Event::InvalidEntry { error } => {
                err("decode");
                debug!("skipped journal entry", source = name, error = error);
            }
            Event::CheckpointWritten => self.p.checkpoints.inc(),
        }
    }
}
