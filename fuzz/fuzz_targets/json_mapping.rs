//! The JSON and JSON-RPC decoders: arbitrary bytes parsed as JSON (serde_json, as the API sources
//! do with a response body) and applied with every built-in `apis:` mapping:
//! - `http_json` mappings: `mapping::json::apply` over the document;
//! - `jsonrpc` mappings: the document as a JSON-RPC response envelope (an `error` that is not
//!   null fails the poll, else `result` is applied to each call's metrics, as
//!   `source::api::Poller::poll` does), and also as a bare `result`.
//!
//! Checked: every problem reported is a non-empty message, and the registry the documents wrote
//! into still encodes to text that the Prometheus text parser reads back without a bad line and
//! without an empty metric name.
#![no_main]

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};

use chainwatch_exporter::mapping::{json, promtext, BoundApi};
use chainwatch_exporter::pipeline::{self, Pipeline};
use chainwatch_exporter::profile::BUILTINS;
use libfuzzer_sys::fuzz_target;

/// One pipeline per built-in profile (merging them all is refused: several read the same facts).
static STATE: LazyLock<Mutex<Vec<Pipeline>>> = LazyLock::new(|| {
    let mut labels = BTreeMap::new();
    labels.insert("node".to_string(), "fuzz".to_string());
    let all = BUILTINS
        .iter()
        .map(|b| {
            pipeline::build(&[b.name.to_string()], &labels, 32).expect("built-in profiles build")
        })
        .collect();
    Mutex::new(all)
});

fn check(problems: Vec<String>) {
    for p in problems {
        assert!(!p.is_empty(), "empty problem message");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let all = STATE.lock().unwrap_or_else(|p| p.into_inner());
    for p in all.iter() {
        for api in p.apis.values() {
            match &api.bound {
                BoundApi::HttpJson(nodes) => check(json::apply(nodes, &doc)),
                BoundApi::JsonRpc(calls) => {
                    let failed = doc.get("error").is_some_and(|e| !e.is_null());
                    for c in calls {
                        if !failed {
                            if let Some(result) = doc.get("result") {
                                check(json::apply(&c.metrics, result));
                            }
                        }
                        check(json::apply(&c.metrics, &doc));
                    }
                }
                BoundApi::Prometheus(_) => {}
            }
        }
        let text = p.metrics.encode();
        let (samples, bad) = promtext::parse(&text);
        assert_eq!(
            bad, 0,
            "the registry's own exposition has unparsable lines:\n{text}"
        );
        for s in &samples {
            assert!(!s.name.is_empty(), "empty sample name");
        }
    }
});
