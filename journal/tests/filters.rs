//! Unit and identifier filters are journalctl's, applied to real entries.

mod common;

use common::*;

#[test]
fn unit_and_identifier_filters() {
    let dir = tempfile::tempdir().unwrap();
    let mut jf = JournalFile::new(dir.path().join("x.journal"));
    jf.append(&[seq_entry("a.service", 1000)]);

    let base = {
        let mut c = config("filters");
        c.files = vec![dir.path().join("x.journal")];
        c
    };
    let mut by_unit = base.clone();
    by_unit.units = vec!["a.service".into()];
    let mut by_ident = base.clone();
    by_ident.identifiers = vec!["b".into(), "c".into()];
    let mut both = base.clone();
    both.units = vec!["a.service".into(), "b.service".into()];
    both.identifiers = vec!["b".into()];

    let readers = [
        Running::start(by_unit),
        Running::start(by_ident),
        Running::start(both),
        Running::start(base),
    ];

    // Interleaved: n % 3 == 0 → a, 1 → b, 2 → c.
    let unit = |n: u64| ["a.service", "b.service", "c.service"][(n % 3) as usize];
    let entries: Vec<Entry> = (0..300).map(|n| seq_entry(unit(n), n)).collect();
    for chunk in entries.chunks(100) {
        jf.append(chunk);
    }
    let want: [Vec<u64>; 4] = [
        (0..300).filter(|n| n % 3 == 0).collect(),
        (0..300).filter(|n| n % 3 != 0).collect(),
        (0..300).filter(|n| n % 3 == 1).collect(),
        (0..300).collect(),
    ];
    for (r, want) in readers.iter().zip(&want) {
        r.wait("filtered entries", |rec| rec.has_all(want.iter().copied()));
    }
    // A last entry every reader sees, so nothing filtered can still be in flight.
    jf.append(&[Entry::msg("a.service", "seq=999 marker")]);
    jf.append(&[Entry {
        ident: "b".into(),
        ..Entry::msg("b.service", "seq=998 marker")
    }]);
    for (i, (r, want)) in readers.into_iter().zip(want).enumerate() {
        let marker = match i {
            0 => 999,
            _ => 998,
        };
        r.wait("marker", |rec| rec.counts.contains_key(&marker));
        if i == 3 {
            r.wait("both markers", |rec| rec.counts.contains_key(&999));
        }
        let rec = r.stop();
        let mut want = want;
        match i {
            0 => want.push(999),
            1 | 2 => want.push(998),
            _ => want.extend([998, 999]),
        }
        rec.assert_exact(want);
    }
}
