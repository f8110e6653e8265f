//! Polling with deadlines: tests wait for conditions, never sleep as an assertion.

use std::time::{Duration, Instant};

/// How often conditions are polled.
pub const POLL: Duration = Duration::from_millis(200);

/// Poll `f` until it returns `Ok`; at the deadline, panic with `what` and the last `Err` (what
/// was seen instead).
pub fn until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    let deadline = start + timeout;
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) => {
                if Instant::now() >= deadline {
                    panic!("timed out after {timeout:?} waiting until {what}; last seen: {last}");
                }
            }
        }
        std::thread::sleep(POLL);
    }
}
