//! A profile as a user writes it: arbitrary bytes as profile YAML, loaded and compiled the way
//! `pipeline::build` does it (the declared metrics, the label demands of the `apis:`, rules
//! compiled into a fresh registry, API mappings bound). An input may carry a log after a NUL byte
//! (YAML cannot contain one): when the profile compiles, that log is run through an engine built
//! from it and checked against the rules' matchers tried on every line, so a literal prefilter
//! derived from a fuzzed regex that hides matching lines is found.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;

use chainwatch_exporter::engine::Engine;
use chainwatch_exporter::profile::{self, spec::ProfileSpec, Loaded};
use chainwatch_exporter::{mapping, registry::Metrics};
use chainwatch_fuzz::process_checked;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (yaml, log) = match memchr::memchr(0, data) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(yaml) else {
        return;
    };
    let Ok((spec, positions)) =
        chainwatch_yaml::from_str::<ProfileSpec>(Path::new("fuzz.yaml"), text)
    else {
        return;
    };
    let loaded = vec![Loaded { spec, positions }];
    let (catalog, errs) = profile::declared(&loaded);
    if !errs.is_empty() {
        return;
    }
    let Ok(demands) = mapping::api_label_demands(&loaded, &catalog) else {
        return;
    };
    let mut metrics = Metrics::new(&BTreeMap::new()).expect("no constant labels");
    metrics.set_series_cap(64);
    let Ok(rules) = profile::compile(&loaded, &catalog, &demands, &mut metrics) else {
        return;
    };
    let apis = mapping::bind(&loaded, &catalog, &mut metrics);
    // A spec that validated in `api_label_demands` binds.
    let _apis = apis.expect("bind after api_label_demands succeeded");
    let engine = Engine::new(rules);
    let stats = engine
        .source_stats(&mut metrics, "fuzz")
        .expect("self-metrics register");
    let mut scratch = engine.scratch();
    process_checked(&engine, &stats, &mut scratch, log);
    // Encoding whatever the log wrote must not panic either.
    let _ = metrics.encode();
});
