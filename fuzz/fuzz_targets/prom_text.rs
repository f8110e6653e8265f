//! The Prometheus text parser (`mapping::promtext::parse`, used to re-export a node's native
//! metrics) on arbitrary text: the input as UTF-8 when it is, and always lossily decoded.
//! Checked: no sample has an empty name or a name outside `[A-Za-z0-9_:]`, no label has an empty
//! name, samples plus bad lines never exceed the non-comment lines, and rendering the samples back
//! to the text format parses to the same samples with no bad line (round trip).
#![no_main]

use chainwatch_exporter::mapping::promtext;
use chainwatch_fuzz::{render_samples, same_samples};
use libfuzzer_sys::fuzz_target;

fn check(text: &str) {
    let (samples, bad) = promtext::parse(text);
    let lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    assert!(
        samples.len() + bad <= lines,
        "{} samples + {bad} bad > {lines} lines",
        samples.len()
    );
    for s in &samples {
        assert!(!s.name.is_empty(), "empty sample name in {text:?}");
        assert!(
            s.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "sample name {:?}",
            s.name
        );
        for k in s.labels.keys() {
            assert!(!k.is_empty(), "empty label name in {text:?}");
        }
    }
    let again = render_samples(&samples);
    let (back, bad_back) = promtext::parse(&again);
    assert_eq!(bad_back, 0, "rendered samples do not parse: {again:?}");
    assert!(
        same_samples(&samples, &back),
        "round trip of {text:?} via {again:?}: {samples:?} != {back:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        check(s);
    } else {
        check(&String::from_utf8_lossy(data));
    }
});
