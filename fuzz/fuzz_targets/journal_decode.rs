//! The journal crate's decoder of `journalctl --output=json` (journal/src/decode.rs): the
//! `Framer` that splits journalctl's stdout into records with a cap on their length, and
//! `decode_record` that turns one record into message lines and a checked `__CURSOR`.
//!
//! Those are `pub(crate)` in chainwatch-journal (its public API is `JournalReader`, which spawns
//! journalctl), so this target compiles the crate's own decode.rs and checkpoint.rs (for
//! `check_cursor`) and entry.rs (the `Entry` decode.rs names) into itself with `#[path]`: the code fuzzed is the crate's source, unchanged.
//!
//! Input: byte 0 picks `max_line` (1..=256), byte 1 the record cap (16..=2056), bytes 2 and 3
//! the sizes of the pieces the rest is fed in (alternating, 1..=256 bytes).
//! Checked: the batch does not depend on where the stream was split; it equals decoding each
//! complete record on its own (records over the cap reported, not decoded); the unterminated tail
//! is held, never decoded (reported at once when already over the cap); every delivered line ends in `\n` and is at most `max_line` bytes.
#![no_main]
#![allow(dead_code, unused_imports)]

#[path = "../../journal/src/checkpoint.rs"]
mod checkpoint;
#[path = "../../journal/src/decode.rs"]
mod decode;
// decode.rs names the crate's `Entry` (journalctl -o json entries, for replay).
#[path = "../../journal/src/entry.rs"]
mod entry;
use entry::Entry;

use decode::{decode_record, Batch, Framer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let max_line = 1 + data[0] as usize;
    let cap = 16 + 8 * data[1] as usize;
    let steps = [1 + data[2] as usize, 1 + data[3] as usize];
    let stream = &data[4..];

    // All at once.
    let mut whole = Batch::default();
    Framer::new(cap, max_line).feed(stream, &mut whole);

    // In pieces.
    let mut pieces = Batch::default();
    let mut f = Framer::new(cap, max_line);
    let mut rest = stream;
    let mut k = 0;
    while !rest.is_empty() {
        let n = steps[k % 2].min(rest.len());
        k += 1;
        f.feed(&rest[..n], &mut pieces);
        rest = &rest[n..];
    }
    assert_eq!(whole, pieces, "split at {steps:?} changed the batch");

    // Record by record.
    let mut reference = Batch::default();
    let too_long = format!("journal record longer than {cap} bytes skipped (see max_line_bytes)");
    let mut records: Vec<&[u8]> = stream.split(|b| *b == b'\n').collect();
    // The unterminated tail (or the empty piece after a final newline) is held, not decoded;
    // one already over the cap is reported at once.
    let tail = records.pop().unwrap_or_default();
    for r in records {
        if r.len() > cap {
            reference.invalid.push(too_long.clone());
        } else {
            decode_record(r, max_line, &mut reference);
        }
    }
    if tail.len() > cap {
        reference.invalid.push(too_long);
    }
    assert_eq!(
        whole, reference,
        "framed batch differs from record-by-record decoding"
    );

    if !whole.data.is_empty() {
        assert!(whole.data.ends_with(b"\n"), "batch data ends mid-line");
    }
    for line in whole.data.split(|b| *b == b'\n') {
        assert!(
            line.len() <= max_line,
            "line of {} bytes > max_line {max_line}",
            line.len()
        );
    }
    if let Some(c) = &whole.cursor {
        assert!(
            checkpoint::check_cursor(c).is_ok(),
            "unchecked cursor {c:?}"
        );
    }
});
