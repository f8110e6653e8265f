//! Where a scrape's time goes: the sidecar's registry after `replay` of N ping lines over N peers
//! (bench/load-profile.yaml, the registry bench/load.sh scrapes), each step of an exposition
//! timed alone: the prometheus crate's `gather` and `TextEncoder` (the path scrapes took before),
//! then this crate's collect, sort, text and OpenMetrics encoders, and gzip.
//!
//!   cargo run --release -p chainwatch-exporter --example scrape_cost -- [SERIES] [RUNS]
//!
//! Prints one Markdown table of medians and p99s (bench/load.sh includes it in its report), in
//! CPU time of the measuring thread (`CLOCK_THREAD_CPUTIME_ID`): on a machine shared with other
//! work, wall time mostly measures the waits for a core, CPU time the work.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::Duration;

use chainwatch_exporter::exposition::{self, Encoder, Format};
use chainwatch_exporter::{pipeline, replay};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let series: usize = args.first().map_or(Ok(10_000), |s| s.parse())?;
    let runs: usize = args.get(1).map_or(Ok(200), |s| s.parse())?;
    let profile = concat!(env!("CARGO_MANIFEST_DIR"), "/../bench/load-profile.yaml");
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("node.log");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&log)?);
    for i in 0..series {
        writeln!(
            f,
            "2025-11-22T00:00:00.000Z node-1 INFO net: ping peer=p{i:05} rtt={}.{}ms",
            10 + i % 90,
            i % 10
        )?;
    }
    f.into_inner()?.sync_all()?;
    let labels = BTreeMap::from([("node".to_string(), "bench-1".to_string())]);
    let mut p = pipeline::build(&[profile.to_string()], &labels, series * 2)?;
    replay::replay(&mut p, &[log], 64 * 1024)?;
    let m = &p.metrics;

    let gathered = m.registry().gather();
    let mut crate_text = String::new();
    prometheus::TextEncoder::new().encode_utf8(&gathered, &mut crate_text)?;
    let collected = m.collect();
    let text = encode(&collected, m.const_labels(), Format::Text);
    let om = encode(&collected, m.const_labels(), Format::OpenMetrics);
    let n_series = text
        .split(|b| *b == b'\n')
        .filter(|l| l.first().is_some_and(|c| *c != b'#'))
        .count();

    let mut rows: Vec<(&str, Vec<Duration>)> = Vec::new();
    let mut time = |name: &'static str, f: &mut dyn FnMut()| {
        f();
        let mut d = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = cpu_now();
            f();
            d.push(cpu_now() - t);
        }
        d.sort();
        rows.push((name, d));
    };
    time(
        "crate: `Registry::gather` (collect, sort, constant labels cloned in)",
        &mut || {
            std::hint::black_box(m.registry().gather());
        },
    );
    time("crate: `TextEncoder` on the gathered families", &mut || {
        let mut s = String::with_capacity(crate_text.len());
        prometheus::TextEncoder::new()
            .encode_utf8(&gathered, &mut s)
            .unwrap();
        std::hint::black_box(s);
    });
    time(
        "collect: the families' series cloned out of the vectors (`Metrics::collect`)",
        &mut || {
            std::hint::black_box(m.collect());
        },
    );
    time(
        "order: the series by label values (references sorted, in collected order)",
        &mut || {
            for mf in &collected {
                std::hint::black_box(exposition::ordered(mf.get_metric()));
            }
        },
    );
    time(
        "encode: classic text from the collected families (ordering included)",
        &mut || {
            std::hint::black_box(encode(&collected, m.const_labels(), Format::Text));
        },
    );
    time(
        "encode: OpenMetrics from the collected families",
        &mut || {
            std::hint::black_box(encode(&collected, m.const_labels(), Format::OpenMetrics));
        },
    );
    time("gzip (fastest level) of the classic text", &mut || {
        std::hint::black_box(gzip(&text, flate2::Compression::fast()));
    });
    time(
        "gzip (default level 6) of the classic text, for comparison",
        &mut || {
            std::hint::black_box(gzip(&text, flate2::Compression::default()));
        },
    );
    time(
        "a scrape's work: collect + classic text in collection order (as the server does)",
        &mut || {
            let mut e = Encoder::new(Format::Text, 1 << 20).in_collection_order();
            m.encode_into(&mut e);
            std::hint::black_box(e.finish());
        },
    );
    time(
        "a scrape's work, gzipped: collect + classic text + gzip (fastest level)",
        &mut || {
            let mut e = Encoder::new(Format::Text, 1 << 20).in_collection_order();
            m.encode_into(&mut e);
            std::hint::black_box(gzip(&e.finish(), flate2::Compression::fast()));
        },
    );
    time("before: crate gather + TextEncoder", &mut || {
        let g = m.registry().gather();
        let mut s = String::with_capacity(crate_text.len());
        prometheus::TextEncoder::new()
            .encode_utf8(&g, &mut s)
            .unwrap();
        std::hint::black_box(s);
    });
    let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1e3);
    println!(
        "{n_series} samples; classic text {} bytes ({} gzipped), OpenMetrics {} bytes, crate text {} bytes; {runs} runs each\n",
        text.len(),
        gzip(&text, flate2::Compression::fast()).len(),
        om.len(),
        crate_text.len()
    );
    println!("| step | CPU ms, p50 | CPU ms, p99 |\n|---|---:|---:|");
    for (name, d) in &rows {
        let p = |q: f64| d[((d.len() - 1) as f64 * q).round() as usize];
        println!("| {name} | {} | {} |", ms(p(0.5)), ms(p(0.99)));
    }
    let copy = {
        let mut d = Vec::new();
        for _ in 0..runs {
            let t = cpu_now();
            std::hint::black_box(text.to_vec());
            d.push(cpu_now() - t);
        }
        d.sort();
        d[d.len() / 2]
    };
    println!(
        "| memcpy of the classic text (the floor: writing {} bytes) | {} | – |",
        text.len(),
        ms(copy)
    );
    Ok(())
}

fn encode(
    families: &[prometheus::proto::MetricFamily],
    consts: &exposition::Labels,
    format: Format,
) -> Vec<u8> {
    let mut e = Encoder::new(format, 1 << 20);
    e.families(families, consts, &|n| {
        chainwatch_catalog::lookup(n).and_then(|m| m.unit.suffix())
    });
    e.finish()
}

/// CPU time of this thread.
fn cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn gzip(b: &[u8], level: flate2::Compression) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(b.len() / 8), level);
    gz.write_all(b).unwrap();
    gz.finish().unwrap()
}
