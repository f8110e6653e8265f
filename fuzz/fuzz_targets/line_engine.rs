//! The line engine with each built-in profile loaded (as `pipeline::build` does for a config that
//! lists it; merging them all is refused, since several read the same facts), fed arbitrary bytes:
//! 1. directly as one chunk to `Engine::process`;
//! 2. through `chainwatch_follow::LineAssembler` with a small `max_line_bytes`, the input split at
//!    fuzzer-chosen points, each emitted chunk processed with the same scratch.
//!
//! Checked: the assembler emits exactly the input's lines, cut at `max_line_bytes`, each ending in
//! `\n`, and counts the cut ones; the engine counts one line per `\n` (plus an unterminated last
//! one) and, per rule, exactly the lines its matcher accepts (no prefilter miss, no double count).
//!
//! Input: byte 0 picks `max_line_bytes` (8..=1028), bytes 1 and 2 the sizes of the pieces the rest
//! is fed in (alternating, 1..=256 bytes).
#![no_main]

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};

use chainwatch_exporter::engine::SourceStats;
use chainwatch_exporter::pipeline::{self, Pipeline};
use chainwatch_exporter::profile::BUILTINS;
use chainwatch_follow::LineAssembler;
use chainwatch_fuzz::process_checked;
use libfuzzer_sys::fuzz_target;

struct State {
    pipeline: Pipeline,
    stats: SourceStats,
}

static STATES: LazyLock<Mutex<Vec<State>>> = LazyLock::new(|| {
    let mut labels = BTreeMap::new();
    labels.insert("node".to_string(), "fuzz".to_string());
    let states = BUILTINS
        .iter()
        .map(|b| {
            // A small cap keeps the registry (and so each run) small however many label values
            // the fuzzer invents.
            let mut pipeline = pipeline::build(&[b.name.to_string()], &labels, 64)
                .expect("built-in profiles build");
            let stats = pipeline
                .engine
                .source_stats(&mut pipeline.metrics, "fuzz")
                .expect("self-metrics register");
            State { pipeline, stats }
        })
        .collect();
    Mutex::new(states)
});

/// The assembler's output as the input's lines should give it.
fn expected_assembly(input: &[u8], max: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut truncated = 0;
    let mut parts: Vec<&[u8]> = input.split(|b| *b == b'\n').collect();
    // The piece after the last `\n` is an unterminated line, flushed by `finish` unless empty.
    if parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    for l in parts {
        if l.len() > max {
            truncated += 1;
        }
        out.extend_from_slice(&l[..l.len().min(max)]);
        out.push(b'\n');
    }
    (out, truncated)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let max = 8 + 4 * data[0] as usize;
    let steps = [1 + data[1] as usize, 1 + data[2] as usize];
    let input = &data[3..];

    let mut states = STATES.lock().unwrap_or_else(|p| p.into_inner());
    for state in states.iter_mut() {
        let State { pipeline, stats } = state;
        let engine = &pipeline.engine;
        let mut scratch = engine.scratch();

        // 1. The whole input as one chunk.
        process_checked(engine, stats, &mut scratch, input);

        // 2. Through the assembler, in pieces.
        let mut asm = LineAssembler::new(max);
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        let mut truncated = 0;
        let mut rest = input;
        let mut k = 0;
        while !rest.is_empty() {
            let n = steps[k % 2].min(rest.len());
            k += 1;
            truncated += asm.push(&rest[..n], &mut |c| chunks.push(c.to_vec()));
            rest = &rest[n..];
            assert!(
                asm.pending_bytes() <= input.len() as u64,
                "pending bytes beyond the input"
            );
        }
        truncated += asm.finish(&mut |c| chunks.push(c.to_vec()));
        assert_eq!(asm.pending_bytes(), 0, "finish leaves nothing pending");

        let (want, want_truncated) = expected_assembly(input, max);
        for c in &chunks {
            assert!(!c.is_empty() && c.ends_with(b"\n"), "emitted chunk {c:?}");
        }
        let got: Vec<u8> = chunks.concat();
        assert_eq!(got, want, "assembled lines (max {max}, steps {steps:?})");
        assert_eq!(truncated, want_truncated, "truncated lines (max {max})");

        for c in &chunks {
            process_checked(engine, stats, &mut scratch, c);
        }
    }
});
