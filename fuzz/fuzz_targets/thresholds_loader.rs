//! The rule generator's thresholds loader: arbitrary bytes as thresholds.yaml, loaded, validated
//! and rendered in memory (`chainwatch_rulegen::generate_str`, nothing is written).
//! Checked: a document that validates renders files that are themselves well-formed: every `.yml`
//! / `.yaml` file parses as YAML and every `.json` file as JSON (a value from thresholds.yaml that
//! breaks the quoting of a template shows up here).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok((_model, files)) = chainwatch_rulegen::generate_str(Path::new("thresholds.yaml"), text)
    else {
        return;
    };
    for (path, body) in &files {
        if path.ends_with(".yml") || path.ends_with(".yaml") {
            if let Err(e) = serde_norway::from_str::<serde_norway::Value>(body) {
                panic!("rendered {path} is not YAML: {e}\n{body}");
            }
        } else if path.ends_with(".json") {
            if let Err(e) = serde_json::from_str::<serde_json::Value>(body) {
                panic!("rendered {path} is not JSON: {e}\n{body}");
            }
        }
    }
});
