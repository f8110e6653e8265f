//! Stage 4, the steps: each renders one kind of output from the model alone (with `promql`,
//! `conventions` and the writer's templates), returns its files, and imports no other step.
//! `lib.rs` runs them in order. A new output is a new file here and one line in `lib.rs`.
//! Packaging steps (`kubernetes`, `mixin`) also read the files the others returned, and wrap
//! them unchanged.

pub mod alertmanager;
pub mod canary;
pub mod coverage;
pub mod grafana;
pub mod kubernetes;
pub mod mixin;
pub mod promtool;
pub mod rules;
pub mod runbook;
