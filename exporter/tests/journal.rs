//! The sidecar following a real systemd journal: files built with `systemd-journal-remote` from
//! export format, read with the real `journalctl`.

mod common;
use common::journal::append;
use common::process::{final_count, poll_until, Sidecar};
use common::*;
use std::path::{Path, PathBuf};

fn config(dir: &Path, journal: &Path) -> PathBuf {
    let p = dir.join("chainwatch.yaml");
    write(
        &p,
        &format!(
            "version: 1\nprofiles: [coinjecture-network]\nlabels: {{node: n1}}\nsources:\n  - name: api-journal\n    type: journal\n    units: [coinjecture-api.service]\n    files: [\"{}\"]\n",
            journal.display()
        ),
    );
    p
}

fn broadcasts(s: &Sidecar) -> f64 {
    value(&s.metrics(), "chain_cid_broadcasts_total", &[]).unwrap_or(0.0)
}

#[test]
fn journal_entries_become_metrics_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("node.journal");
    // Entries before the first start are history: a first run starts at "now".
    append(
        &journal,
        "coinjecture-api",
        &[b"INFO \xf0\x9f\x93\xa1 Broadcasting CID old".to_vec()],
    );
    let state = dir.path().join("state");
    let cfg = config(dir.path(), &journal);
    let state_arg = state.to_str().unwrap().to_string();
    let s = Sidecar::start(&cfg, &["--state.dir", &state_arg]);
    s.wait_ready();

    let mut msgs: Vec<Vec<u8>> = (0..50)
        .map(|i| format!("INFO 📡 Broadcasting CID bafy{i}").into_bytes())
        .collect();
    msgs.push("INFO ⚖️  Equilibrium: λ=0.7070 η=0.7068 ratio=1.0004".into());
    msgs.push(b"INFO \xff\xfe not utf-8 \xf0\x9f\x93\xa1 Broadcasting CID raw".to_vec());
    append(&journal, "coinjecture-api", &msgs);
    // Another unit's entries are not ours.
    append(&journal, "nginx", &[b"GET / 200 Broadcasting".to_vec()]);
    let m = poll_until("journal entries", || {
        let m = s.metrics();
        (value(&m, "chain_cid_broadcasts_total", &[]) == Some(51.0)
            && value(&m, "chain_equilibrium_lambda", &[]).is_some())
        .then_some(m)
    });
    assert_eq!(value(&m, "chain_equilibrium_lambda", &[]), Some(0.7070));
    assert_eq!(
        value(
            &m,
            "chainwatch_lines_invalid_utf8_total",
            &[("source", "api-journal")]
        ),
        Some(1.0)
    );
    promtool_check_metrics(&s.get("/metrics").1);

    // Stop, write while down, restart: each entry counted once.
    let (code, lines) = s.terminate();
    assert_eq!(code, 0);
    let first = final_count(
        &lines,
        "rule=coinjecture-network/cid_broadcast,source=api-journal",
    );
    assert_eq!(first, 51.0);
    let more: Vec<Vec<u8>> = (50..80)
        .map(|i| format!("INFO 📡 Broadcasting CID bafy{i}").into_bytes())
        .collect();
    append(&journal, "coinjecture-api", &more);
    let s = Sidecar::start(&cfg, &["--state.dir", &state_arg]);
    poll_until("entries written while down", || {
        (broadcasts(&s) == 30.0).then_some(())
    });
    append(
        &journal,
        "coinjecture-api",
        &[b"INFO Broadcasting CID last".to_vec()],
    );
    poll_until("and new ones", || (broadcasts(&s) == 31.0).then_some(()));
    let (_, lines) = s.terminate();
    assert_eq!(
        final_count(
            &lines,
            "rule=coinjecture-network/cid_broadcast,source=api-journal"
        ),
        31.0
    );
}

/// `chainwatch_source_up` of a journal source whose journalctl keeps dying (a journal directory
/// that does not exist): 0, and it stays 0 through the restarts; each exit is counted. Once
/// journalctl can read (the directory appears) and delivers an entry, it is 1.
#[test]
fn a_journal_whose_journalctl_keeps_dying_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let journals = dir.path().join("journal");
    let cfg = dir.path().join("chainwatch.yaml");
    write(
        &cfg,
        &format!(
            "version: 1\nprofiles: [coinjecture-network]\nlabels: {{node: n1}}\nsources:\n  - name: api-journal\n    type: journal\n    units: [coinjecture-api.service]\n    directory: {}\n",
            journals.display()
        ),
    );
    let s = Sidecar::start(&cfg, &[]);
    let src = [("source", "api-journal")];
    let exits = |m: &[(Series, f64)]| {
        value(
            m,
            "chainwatch_source_errors_total",
            &[("source", "api-journal"), ("kind", "exited")],
        )
        .unwrap_or(0.0)
    };
    // Through at least two restarts, every scrape says down.
    let mut seen_up = false;
    poll_until("two exits", || {
        let m = s.metrics();
        seen_up |= value(&m, "chainwatch_source_up", &src) == Some(1.0);
        (exits(&m) >= 3.0).then_some(())
    });
    let m = s.metrics();
    assert!(!seen_up, "a journalctl that keeps dying showed up");
    assert_eq!(value(&m, "chainwatch_source_up", &src), Some(0.0));
    // The journal appears: the next run reads, and an entry proves it.
    std::fs::create_dir(&journals).unwrap();
    let journal = journals.join("node.journal");
    append(
        &journal,
        "coinjecture-api",
        &[b"INFO \xf0\x9f\x93\xa1 Broadcasting CID x".to_vec()],
    );
    poll_until("up once an entry is read", || {
        let m = s.metrics();
        (value(&m, "chainwatch_source_up", &src) == Some(1.0)
            && value(&m, "chain_cid_broadcasts_total", &[]) == Some(1.0))
        .then_some(())
    });
}
