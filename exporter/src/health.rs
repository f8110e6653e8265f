//! What `/health` reports: the state of every source, updated by the sources themselves.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

#[derive(Debug, Clone, Serialize, Default)]
pub struct SourceState {
    pub kind: &'static str,
    /// starting, following, stopped, failed
    pub state: &'static str,
    /// The initial scan is done and files are positioned.
    pub ready: bool,
    pub files: i64,
    pub last_error: Option<String>,
}

#[derive(Default)]
pub struct Health {
    sources: Mutex<BTreeMap<String, SourceState>>,
}

impl Health {
    pub fn update(&self, source: &str, f: impl FnOnce(&mut SourceState)) {
        let mut m = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        f(m.entry(source.to_string()).or_default());
    }

    pub fn snapshot(&self) -> BTreeMap<String, SourceState> {
        self.sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Body {
            status: &'static str,
            version: &'static str,
            sources: BTreeMap<String, SourceState>,
        }
        let sources = self.snapshot();
        let status = if sources.values().all(|s| s.ready) {
            "ok"
        } else {
            "starting"
        };
        serde_json::to_string_pretty(&Body {
            status,
            version: env!("CARGO_PKG_VERSION"),
            sources,
        })
        .unwrap_or_default()
    }
}
