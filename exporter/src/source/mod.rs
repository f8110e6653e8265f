//! Sources: where lines come from. Each runs on its own thread and feeds the shared engine.

pub mod file;
