//! The sidecar's `--config` file: arbitrary bytes as the configuration, validated by
//! `config::Config::from_str` (profiles, sources, labels, caps) as the sidecar does before
//! anything runs. Checked beyond "no panic": a refused configuration is reported against the
//! file given, with a message and a line inside it.
#![no_main]

use std::path::Path;

use chainwatch_exporter::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("chainwatch.yaml");
    if let Err(e) = Config::from_str(file, text) {
        assert_eq!(e.file, file, "error names another file: {e}");
        assert!(!e.message.is_empty(), "empty message for {text:?}");
        let lines = text.split('\n').count();
        assert!(e.line <= lines, "line {} of a {lines}-line file: {e}", e.line);
    }
});
