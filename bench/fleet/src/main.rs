//! chainwatch-fleet: what `bench/fleet.sh` runs around the real Prometheus — the plan of the
//! history a rule set needs, that history as OpenMetrics (for `promtool tsdb
//! create-blocks-from openmetrics`), and the live fleet Prometheus scrapes. Bench support, not
//! a test and not part of the sidecar.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use chainwatch_bench_fleet::{fleet::Fleet, plan, serve, template};
use chainwatch_duration::Duration;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "chainwatch-fleet",
    version,
    about = "Fake fleet of chainwatch sidecars for the rule evaluation benchmark (bench/fleet.sh)."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args)]
struct FleetArgs {
    /// Directory of captured `<family>.prom` templates.
    #[arg(long)]
    templates: PathBuf,
    /// Number of nodes (spread evenly over families, 4 regions, 2 networks).
    #[arg(long)]
    nodes: usize,
    /// Unix seconds at which the fleet's counters started (the same for history and serve).
    #[arg(long)]
    origin: u64,
    /// The scrape job's name (history series carry it, with `instance` = the node).
    #[arg(long, default_value = "chainwatch")]
    job: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write DIR/plan.json (history per scraped metric and per recording rule; the layers in
    /// backfill order) and DIR/layer-<n>-<interval>s.yml (the recording rules to backfill,
    /// layer by layer, at their groups' evaluation interval).
    Plan {
        #[arg(long)]
        rules: PathBuf,
        #[arg(long, default_value = "15m")]
        margin: Duration,
        /// Prometheus's global `evaluation_interval`: groups without their own are evaluated so.
        #[arg(long, default_value = "15s")]
        evaluation_interval: Duration,
        #[arg(long)]
        out: PathBuf,
    },
    /// The `[from, to)` windows, aligned to `block`, that cover the plan's history before `end`.
    Windows {
        #[arg(long)]
        plan: PathBuf,
        #[arg(long)]
        end: u64,
        #[arg(long, default_value = "18h")]
        block: Duration,
    },
    /// OpenMetrics samples of `[from, to)` for every series the plan wants history of.
    History {
        #[command(flatten)]
        fleet: FleetArgs,
        #[arg(long)]
        plan: PathBuf,
        #[arg(long)]
        end: u64,
        #[arg(long)]
        from: u64,
        #[arg(long)]
        to: u64,
        #[arg(long, default_value = "15s")]
        step: Duration,
    },
    /// Serve the fleet live; write the file_sd targets to `sd`.
    Serve {
        #[command(flatten)]
        fleet: FleetArgs,
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        #[arg(long)]
        sd: PathBuf,
    },
    /// The rollout gate rules of a rule set (`chainwatch:rollout_gate_*`): record, gate, expr.
    Gates {
        #[arg(long)]
        rules: PathBuf,
    },
    /// Series per node of each family.
    Count {
        #[arg(long)]
        templates: PathBuf,
    },
}

fn read_plan(p: &PathBuf) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}", p.display()))
}

fn build(a: &FleetArgs) -> Result<Fleet> {
    let ts = template::load_dir(&a.templates)?;
    Ok(Fleet::new(&ts, a.nodes, a.origin as f64, &a.job))
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Plan {
            rules,
            margin,
            evaluation_interval,
            out,
        } => {
            let p = plan::plan_dir(&rules, margin.ms() / 1000, evaluation_interval.ms() / 1000)?;
            std::fs::create_dir_all(&out)?;
            std::fs::write(out.join("plan.json"), serde_json::to_string_pretty(&p)?)?;
            for f in &p.layer_files {
                std::fs::write(out.join(&f.file), &f.text)?;
            }
            println!("{}", serde_json::to_string(&p)?);
        }
        Cmd::Windows { plan, end, block } => {
            let p = read_plan(&plan)?;
            let longest = ["raw", "records"]
                .iter()
                .flat_map(|k| p[k].as_object().into_iter().flatten())
                .filter_map(|(_, v)| v.as_u64().or_else(|| v["history"].as_u64()))
                .max()
                .unwrap_or(0);
            let b = block.ms() / 1000;
            let mut from = end.saturating_sub(longest) / b * b;
            while from < end {
                println!("{from} {}", (from + b).min(end));
                from += b;
            }
        }
        Cmd::History {
            fleet,
            plan,
            end,
            from,
            to,
            step,
        } => {
            let p = read_plan(&plan)?;
            let f = build(&fleet)?;
            let raw = p["raw"].clone();
            let h = move |name: &str| raw[name].as_u64();
            let stdout = std::io::stdout();
            let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
            let n = f.write_history(&h, end, from, to, step.ms() / 1000, &mut out)?;
            out.flush()?;
            eprintln!("{n} samples");
        }
        Cmd::Serve { fleet, listen, sd } => {
            let f = build(&fleet)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            rt.block_on(serve::run(f, &listen, &sd))?;
        }
        Cmd::Gates { rules } => {
            println!(
                "{}",
                serde_json::to_string_pretty(&plan::gates_dir(&rules)?)?
            );
        }
        Cmd::Count { templates } => {
            for t in template::load_dir(&templates)? {
                println!("{} {}", t.family, t.series.len());
            }
        }
    }
    Ok(())
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("chainwatch-fleet: {e:#}");
        std::process::exit(1);
    }
}
