//! Stats API mappings: how a JSON document, a JSON-RPC result or a node's native Prometheus
//! metrics become catalog metrics. Validated at load like log rules; applied by the API sources.

mod compile;
pub mod doc;
pub mod json;
pub mod native;
pub mod promtext;

pub use compile::{api_label_demands, bind, Api, BoundApi, BoundSeries, RpcCall, SeriesTarget};
