//! The self-metrics every source has, whatever it reads: `chainwatch_source_up`, the time of its
//! last success, its errors by kind, and (polled sources) the duration of each poll.
//!
//! `chainwatch_source_up` means one thing for every source: **1 when the source's latest attempt
//! to read succeeded, 0 when it failed** (and 0 before the first attempt and after the source
//! stopped). What an attempt is depends on what the source reads:
//! - a polled source (`http_json`, `jsonrpc`, `prometheus`, `health`): one poll, which succeeds
//!   when the answer was fetched, decoded and every value it maps applied;
//! - a file source: each pass over its paths; it fails while a matched file or directory cannot
//!   be listed, opened or read (inotify and checkpoint problems are counted, not failures to read);
//! - a journal source: each journalctl run; it fails when journalctl exits or cannot be started
//!   or read, and succeeds once it delivered an entry or ran `healthy_run` (10 s) without
//!   exiting — so a quiet journal shows 1 ten seconds after the start, and a journalctl that
//!   keeps dying never shows 1.
//!
//! `chainwatch_source_last_success_timestamp_seconds` is when up was last set to 1 (for file and
//! journal sources also each time lines are read while up is 1).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::{Counter, CounterVec, Gauge, Histogram};

use crate::registry::{Metrics, RegistryError};

/// The source's own series, resolved once; cheap to clone (handles to the same series).
#[derive(Clone)]
pub struct SourceMetrics {
    source: String,
    up: Gauge,
    last_success: Gauge,
    errors: CounterVec,
    duration: Option<Histogram>,
}

impl SourceMetrics {
    /// `kinds`: the error kinds this source can count, exported at 0 from the start so that
    /// `rate()` and `increase()` see the first error.
    pub fn new(m: &mut Metrics, source: &str, kinds: &[&str]) -> Result<Self, RegistryError> {
        let s = &[source];
        let errors = m.counter_vec("chainwatch_source_errors_total", &["source", "kind"])?;
        for k in kinds {
            errors.with_label_values(&[source, k]);
        }
        Ok(Self {
            source: source.to_string(),
            up: m
                .gauge_vec("chainwatch_source_up", &["source"])?
                .with_label_values(s),
            last_success: m
                .gauge_vec(
                    "chainwatch_source_last_success_timestamp_seconds",
                    &["source"],
                )?
                .with_label_values(s),
            errors,
            duration: None,
        })
    }

    /// A polled source: also `chainwatch_source_poll_duration_seconds`.
    pub fn polled(m: &mut Metrics, source: &str, kinds: &[&str]) -> Result<Self, RegistryError> {
        let mut sm = Self::new(m, source, kinds)?;
        sm.duration = Some(
            m.histogram_vec("chainwatch_source_poll_duration_seconds", &["source"])?
                .with_label_values(&[source]),
        );
        Ok(sm)
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The latest attempt succeeded.
    pub fn succeeded(&self) {
        self.up.set(1.0);
        self.last_success.set(now());
    }

    /// Lines were read; a success only while the source is up.
    pub fn read(&self) {
        if self.is_up() {
            self.last_success.set(now());
        }
    }

    /// The latest attempt failed with an error of `kind`.
    pub fn failed(&self, kind: &str) {
        self.up.set(0.0);
        self.count(kind);
    }

    /// An error that does not fail the attempt (a skipped entry, a checkpoint not written).
    pub fn count(&self, kind: &str) {
        self.error_counter(kind).inc();
    }

    /// The source is not reading (stopped, or between attempts after a failure).
    pub fn down(&self) {
        self.up.set(0.0);
    }

    pub fn is_up(&self) -> bool {
        self.up.get() == 1.0
    }

    pub fn observe(&self, took: Duration) {
        if let Some(h) = &self.duration {
            h.observe(took.as_secs_f64());
        }
    }

    fn error_counter(&self, kind: &str) -> Counter {
        self.errors.with_label_values(&[self.source.as_str(), kind])
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn one_meaning_of_up_and_kinds_from_zero() {
        let mut m = Metrics::new(&BTreeMap::new()).unwrap();
        let s = SourceMetrics::polled(&mut m, "api", &["timeout", "decode"]).unwrap();
        let text = m.encode();
        assert!(
            text.contains("chainwatch_source_errors_total{kind=\"decode\",source=\"api\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("chainwatch_source_up{source=\"api\"} 0"),
            "{text}"
        );
        s.succeeded();
        assert!(s.is_up());
        s.failed("decode");
        assert!(!s.is_up());
        s.count("decode");
        s.observe(Duration::from_millis(5));
        let text = m.encode();
        assert!(
            text.contains("chainwatch_source_errors_total{kind=\"decode\",source=\"api\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("chainwatch_source_poll_duration_seconds_count{source=\"api\"} 1"),
            "{text}"
        );
        let f = SourceMetrics::new(&mut m, "log", &["read"]).unwrap();
        f.read();
        assert!(!m
            .encode()
            .contains("chainwatch_source_poll_duration_seconds_count{source=\"log\"}"));
    }
}
