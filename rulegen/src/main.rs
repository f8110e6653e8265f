//! The binary edge: arguments, exit codes, messages.
//!
//! Exit codes: 0 ok; 1 stale or missing generated files (`--check`) or an unmapped criterion
//! (`coverage`); 2 invalid input (thresholds.yaml or overlay) or an I/O failure.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use chainwatch_rulegen::{coverage, generate, write, Error};

#[derive(Parser)]
#[command(
    name = "chainwatch-rulegen",
    version,
    about = "Render Prometheus rules and tests, the Alertmanager config, Grafana dashboards and the runbook from thresholds.yaml"
)]
struct Cli {
    /// The thresholds file.
    #[arg(long, global = true, default_value = "thresholds.yaml")]
    thresholds: PathBuf,
    /// A second YAML merged over the thresholds file (shorter `for` and windows, loopback receivers
    /// for tests).
    #[arg(long, global = true, value_name = "FILE")]
    overlay: Option<PathBuf>,
    /// Root under which prometheus/, alertmanager/, grafana/ and docs/runbook.md are written (or
    /// compared).
    #[arg(long, default_value = ".", value_name = "DIR")]
    out: PathBuf,
    /// Render in memory and compare with the files under --out; exit 1 when any differs.
    #[arg(long)]
    check: bool,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print criterion → alerts / recording rules / gates / panels / not-measurable for every row of
    /// criteria.md; exit 1 if a row is unmapped.
    Coverage {
        /// criteria.md; when absent, the list embedded in thresholds.yaml is used.
        #[arg(long, default_value = "../shared/criteria.md", value_name = "PATH")]
        criteria: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            match e.downcast_ref::<Error>() {
                Some(Error::Invalid(errs)) => {
                    for x in errs {
                        eprintln!("error: {x}");
                    }
                    eprintln!("{} error(s); nothing written", errs.len());
                }
                _ => eprintln!("error: {e:#}"),
            }
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let (model, files) = generate(&cli.thresholds, cli.overlay.as_deref())?;
    if let Some(Cmd::Coverage { criteria }) = cli.command {
        let (ids, source) = match std::fs::read_to_string(&criteria) {
            Ok(text) => (
                coverage::criteria_ids(&text),
                criteria.display().to_string(),
            ),
            Err(_) => (
                model.criteria.clone(),
                format!(
                    "{} (criteria.md not found at {})",
                    cli.thresholds.display(),
                    criteria.display()
                ),
            ),
        };
        let c = coverage::coverage(&model, &ids, &source);
        print!("{}", c.report);
        return Ok(if c.unmapped.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    if cli.check {
        let d = write::check(&cli.out, &files)
            .with_context(|| format!("reading {}", cli.out.display()))?;
        if d.is_clean() {
            println!("{} generated files up to date", files.len());
            return Ok(ExitCode::SUCCESS);
        }
        for f in &d.stale {
            println!("stale: {f}");
        }
        for f in &d.missing {
            println!("missing: {f}");
        }
        for f in &d.extra {
            println!("extra: {f}");
        }
        println!("run chainwatch-rulegen to regenerate");
        return Ok(ExitCode::from(1));
    }
    let r = write::write(&cli.out, &files)
        .with_context(|| format!("writing under {}", cli.out.display()))?;
    for f in &r.written {
        println!("wrote {f}");
    }
    for f in &r.removed {
        println!("removed {f}");
    }
    println!(
        "{} written, {} unchanged, {} removed",
        r.written.len(),
        r.unchanged,
        r.removed.len()
    );
    Ok(ExitCode::SUCCESS)
}
