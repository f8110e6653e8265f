//! Sources: where data comes from. File sources run on their own threads and feed the shared
//! engine; polled sources run on the async runtime and write their mapped metrics.

pub mod api;
pub mod fetch;
pub mod file;
pub mod journal;
pub mod metrics;
pub mod poll;
pub mod prepare;
pub mod thread;
