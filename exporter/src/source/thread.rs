//! A source that reads with blocking I/O (files, journalctl) runs on a thread of its own; this is
//! what starting, stopping and joining one looks like, whatever it reads.

use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{Context, Result};

use super::metrics::SourceMetrics;
use crate::health::Health;

pub struct Running {
    pub name: String,
    stop: Box<dyn Fn() + Send + Sync>,
    thread: JoinHandle<Result<(), String>>,
}

impl Running {
    /// Ask the source to stop; it finishes its current chunk and writes its checkpoint.
    pub fn stop(&self) {
        (self.stop)()
    }

    pub fn join(self) -> Result<(), String> {
        let name = self.name;
        self.thread
            .join()
            .unwrap_or_else(|_| Err(format!("source `{name}`: thread panicked")))
    }
}

/// Run `body` (the source's loop, until `stop` is called) on a thread named `kind:name`; when it
/// returns, its outcome goes to /health and the source is down.
pub fn spawn(
    name: &str,
    kind: &'static str,
    health: Arc<Health>,
    metrics: SourceMetrics,
    stop: impl Fn() + Send + Sync + 'static,
    body: impl FnOnce() -> Result<(), String> + Send + 'static,
) -> Result<Running> {
    health.update(name, |s| {
        s.kind = kind;
        s.state = "starting";
    });
    let source = name.to_string();
    let thread = std::thread::Builder::new()
        .name(format!("{kind}:{name}"))
        .spawn(move || {
            let r = body();
            health.update(&source, |s| {
                s.state = if r.is_ok() { "stopped" } else { "failed" };
                if let Err(e) = &r {
                    s.last_error = Some(e.clone());
                }
            });
            metrics.down();
            r
        })
        .with_context(|| format!("spawning the {kind} source thread"))?;
    Ok(Running {
        name: name.to_string(),
        stop: Box::new(stop),
        thread,
    })
}
