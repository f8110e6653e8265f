//! What each node family logs and serves. The wording follows the built-in profiles of
//! `exporter/profiles/` (their `examples:`), so the sidecar reads these logs as it reads real ones.

pub mod bitcell;
pub mod coinjecture;
pub mod dilithion;
pub mod pop;
