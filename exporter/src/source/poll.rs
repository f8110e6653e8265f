//! The loop every polled source runs: poll, record the outcome in the source's metrics (up, last
//! success, duration, errors by kind: `source::metrics`), wait for the next tick. Polls never
//! overlap.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use super::api::Poller;
use super::metrics::SourceMetrics;
use crate::health::Health;

/// A polled source ready to run.
pub struct Prepared {
    pub poller: Poller,
    pub interval: Duration,
    pub metrics: SourceMetrics,
}

/// Poll until `shutdown` turns true.
pub async fn run(p: Prepared, health: Arc<Health>, mut shutdown: watch::Receiver<bool>) {
    let Prepared {
        poller,
        interval,
        metrics,
    } = p;
    let name = metrics.source().to_string();
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
        metrics.observe(start.elapsed());
        // What the answer took is free again; give it back before waiting.
        crate::memory::release();
        match &r {
            Ok(()) => metrics.succeeded(),
            Err(e) => metrics.failed(e.kind()),
        }
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
