//! The timeline of a test: its input step (dividing every window, within promtool's limit of
//! samples per range), its evaluation step, and rounding to steps.

use chainwatch_duration::{gcd, Duration};

use crate::model::{Measure, Record, Via};

use super::file::{gerr, record_deps, GResult};

/// The test step: the largest round interval that divides every duration, fits four times (at
/// worst twice) into the shortest, and keeps the longest range under promtool's limit of 10000
/// samples per query.
pub fn choose_interval(durs: &[Duration]) -> Duration {
    let durs: Vec<u64> = durs.iter().map(|d| d.ms()).filter(|d| *d > 0).collect();
    let (Some(min), Some(max)) = (durs.iter().copied().min(), durs.iter().copied().max()) else {
        return Duration::from_secs(60);
    };
    const CANDIDATES: [u64; 13] = [
        3_600_000, 1_800_000, 900_000, 600_000, 300_000, 150_000, 120_000, 60_000, 30_000, 15_000,
        10_000, 5_000, 1_000,
    ];
    for fit in [4, 2] {
        for c in CANDIDATES {
            if durs.iter().all(|d| d % c == 0) && c * fit <= min && max / c <= 8000 {
                return Duration(c);
            }
        }
    }
    let g = durs.iter().fold(0, |a, b| gcd(a, *b));
    Duration(g.max(1))
}

/// The test step, or why no promtool test can span these durations.
pub fn interval_for(durs: &[Duration], path: &str) -> GResult<Duration> {
    let i = choose_interval(durs);
    let max = durs.iter().copied().max().unwrap_or_default();
    let min = durs
        .iter()
        .copied()
        .filter(|d| !d.is_zero())
        .min()
        .unwrap_or_default();
    if max.ms() / i.ms() > 8000 || (min.ms() > 0 && min.ms() % i.ms() != 0) {
        return Err(gerr(
            path,
            format!("cannot test windows from {min} to {max} together: promtool allows 10000 samples per range; shorten the longest window (or, in an overlay, the gate's window)"),
        ));
    }
    Ok(i)
}

/// Rule evaluation step for tests that run to `horizon`: coarse enough to keep promtool fast (about
/// a hundred evaluations), a multiple of the input step. promtool evaluates every group at this
/// step whatever its own interval, and a rollup's windows must overlap, so with rollups it is at
/// most half the shortest rollup window (`rollups`).
pub fn eval_interval(horizon: Duration, input: Duration, rollups: Option<Duration>) -> Duration {
    let cap = rollups.map_or(u64::MAX, |r| r.ms() / 2);
    for c in [3_600_000u64, 1_800_000, 900_000, 600_000, 300_000, 60_000] {
        if c % input.ms() == 0 && c * 100 <= horizon.ms() && c <= cap {
            return Duration(c);
        }
    }
    input
}

/// The shortest rollup window the measures read, through the recording rules they read too.
pub fn rollup_window(measures: &[&Measure], records: &[Record]) -> Option<Duration> {
    let mut deps = Vec::new();
    for m in measures {
        record_deps(m, records, &mut deps);
    }
    measures
        .iter()
        .copied()
        .chain(deps.iter().map(|d| &records[*d].measure))
        .filter_map(|m| match m {
            Measure::Derived {
                via: Via::Rollups { rollup, .. },
                ..
            } => Some(*rollup),
            _ => None,
        })
        .min()
}

pub fn round_up(d: Duration, i: Duration) -> Duration {
    Duration(d.ms().div_ceil(i.ms()) * i.ms())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_divide_every_duration() {
        let d = |s: &str| Duration::parse(s).unwrap();
        assert_eq!(choose_interval(&[d("5m"), d("10m")]), d("1m"));
        assert_eq!(choose_interval(&[d("2m")]), d("30s"));
        assert_eq!(choose_interval(&[d("1w")]), d("1h"));
        assert_eq!(choose_interval(&[]), d("1m"));
        assert_eq!(choose_interval(&[d("5s"), d("10s")]), d("1s"));
    }
}
