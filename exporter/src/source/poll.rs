//! The loop every polled source runs: poll, record the outcome alike for all sources (up, last
//! success, duration, errors by kind), wait for the next tick. Polls never overlap.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus::{CounterVec, Gauge, Histogram};
use tokio::sync::watch;

use super::api::Poller;
use super::fetch::FetchError;
use crate::health::Health;
use crate::registry::{Metrics, RegistryError};

pub struct PollMetrics {
    source: String,
    up: Gauge,
    last_success: Gauge,
    duration: Histogram,
    errors: CounterVec,
}

impl PollMetrics {
    pub fn new(m: &mut Metrics, source: &str) -> Result<Self, RegistryError> {
        let s = &[source];
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
            duration: m
                .histogram_vec("chainwatch_source_poll_duration_seconds", &["source"])?
                .with_label_values(s),
            errors: m.counter_vec("chainwatch_source_errors_total", &["source", "kind"])?,
        })
    }

    /// Record one poll; returns the error message for health and logs.
    fn record(&self, took: Duration, r: &Result<(), FetchError>) {
        self.duration.observe(took.as_secs_f64());
        match r {
            Ok(()) => {
                self.up.set(1.0);
                self.last_success.set(
                    SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_secs_f64())
                        .unwrap_or(0.0),
                );
            }
            Err(e) => {
                self.up.set(0.0);
                self.errors
                    .with_label_values(&[self.source.as_str(), e.kind()])
                    .inc();
            }
        }
    }
}

/// Poll until `shutdown` turns true.
pub async fn run(
    poller: Poller,
    interval: Duration,
    metrics: PollMetrics,
    health: Arc<Health>,
    mut shutdown: watch::Receiver<bool>,
) {
    let name = metrics.source.clone();
    health.update(&name, |s| {
        s.kind = poller.kind_name();
        s.state = "polling";
    });
    let mut rng = seed(&name);
    let mut last_err: Option<String> = None;
    loop {
        // Jitter up to a tenth of the interval spreads a fleet's polls of shared backends.
        let jitter = Duration::from_secs_f64(interval.as_secs_f64() * 0.1 * next_unit(&mut rng));
        let start = Instant::now();
        let r = poller.poll().await;
        metrics.record(start.elapsed(), &r);
        let msg = r.as_ref().err().map(|e| e.to_string());
        if msg != last_err {
            match &msg {
                Some(m) => warn!("poll failed", source = name, error = m),
                None if last_err.is_some() => info!("poll recovered", source = name),
                None => {}
            }
        }
        health.update(&name, |s| {
            s.ready = true;
            s.last_error = msg.clone();
        });
        last_err = msg;
        let next = start + interval + jitter;
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
    }
    health.update(&name, |s| s.state = "stopped");
}

fn seed(name: &str) -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    (t ^ h ^ std::process::id() as u64) | 1
}

/// xorshift64*: jitter needs spread, not cryptographic randomness.
fn next_unit(s: &mut u64) -> f64 {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    (s.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
}
