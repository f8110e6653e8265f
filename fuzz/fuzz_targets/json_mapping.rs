//! The API decoders: arbitrary bytes parsed as the API sources do with a response body
//! (`mapping::doc::parse`, keeping what each mapping reads) and applied with every built-in
//! `apis:` mapping:
//! - `http_json` mappings: `mapping::json::apply` over the document;
//! - `jsonrpc` mappings: the document as a JSON-RPC response envelope (an `error` that is not
//!   null fails the poll, else `result` is applied to each call's metrics, as
//!   `source::api::Poller::poll` does), and also as a bare `result`;
//! - `prometheus` mappings: the bytes, when UTF-8, as native metrics (`mapping::native::apply`).
//!
//! Checked: every problem reported is a non-empty message, and the registry the documents wrote
//! into still encodes to text that the Prometheus text parser reads back without a bad line and
//! without an empty metric name.
#![no_main]

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};

use chainwatch_exporter::mapping::doc::{self, Node};
use chainwatch_exporter::mapping::{json, native, promtext, BoundApi};
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
    let all = STATE.lock().unwrap_or_else(|p| p.into_inner());
    for p in all.iter() {
        for api in p.apis.values() {
            match &api.bound {
                BoundApi::HttpJson(m) => {
                    if let Ok(doc) = doc::parse(data, &m.need) {
                        check(json::apply(&m.nodes, &doc).settle(&m.nodes, true));
                    }
                }
                BoundApi::JsonRpc(calls) => {
                    for c in calls {
                        if let Ok(env) = doc::parse(data, &c.envelope) {
                            let failed = env.get("error").is_some_and(|e| *e != Node::Null);
                            if let Some(result) = env.get("result").filter(|_| !failed) {
                                let applied = json::apply(&c.mapping.nodes, result);
                                check(applied.settle(&c.mapping.nodes, true));
                            }
                        }
                        if let Ok(doc) = doc::parse(data, &c.mapping.need) {
                            let applied = json::apply(&c.mapping.nodes, &doc);
                            check(applied.settle(&c.mapping.nodes, true));
                        }
                    }
                }
                BoundApi::Prometheus(series) => {
                    if let Ok(text) = std::str::from_utf8(data) {
                        check(native::apply(series, text));
                    }
                }
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
