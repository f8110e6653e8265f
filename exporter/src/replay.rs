//! `replay`: read logs start to EOF through the profiles and print the metrics — how a user tests a
//! profile on a real log before deploying it.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chainwatch_follow::LineAssembler;

use crate::pipeline::Pipeline;

pub fn replay(p: &mut Pipeline, logs: &[PathBuf], max_line_bytes: usize) -> Result<String> {
    let stats = p.engine.source_stats(&mut p.metrics, "replay")?;
    let engine = &p.engine;
    let mut scratch = engine.scratch();
    let mut buf = vec![0u8; 256 * 1024];
    for log in logs {
        let mut f = File::open(log).with_context(|| format!("opening {}", log.display()))?;
        let mut asm = LineAssembler::new(max_line_bytes);
        let mut truncated = 0;
        loop {
            let n = match f.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).with_context(|| format!("reading {}", log.display())),
            };
            if n == 0 {
                break;
            }
            truncated += asm.push(&buf[..n], &mut |chunk| {
                engine.process(chunk, &stats, &mut scratch)
            });
        }
        truncated += asm.finish(&mut |chunk| engine.process(chunk, &stats, &mut scratch));
        stats.truncated.inc_by(truncated as f64);
    }
    Ok(p.metrics.encode())
}
