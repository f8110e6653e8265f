//! Support of the fleet-scale rule evaluation benchmark (`bench/fleet.sh`): captured sidecar
//! templates → a fleet of N nodes → values over time → live `/metrics` and OpenMetrics history;
//! and the history plan of a rule set.

pub mod fleet;
pub mod layout;
pub mod plan;
pub mod serve;
pub mod template;
pub mod values;
