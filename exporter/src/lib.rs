//! chainwatch's sidecar: follows a node's logs, turns lines into standardized metrics through
//! profiles, and serves them to Prometheus.

#[macro_use]
pub mod log;
pub mod arbiter;
pub mod backfill;
pub mod cli;
pub mod config;
pub mod engine;
pub mod expand;
pub mod exposition;
pub mod health;
pub mod mapping;
pub mod memory;
pub mod pipeline;
pub mod profile;
pub mod profile_test;
pub mod registry;
pub mod replay;
pub mod serve;
pub mod source;
pub mod stamp;
pub mod timestamps;
pub mod total;
pub mod version;
pub mod web;
