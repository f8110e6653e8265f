//! The binary edge: arguments, waiting, output, exit codes.
//!
//! Exit codes (`check`): 0 proceed; 1 hold (not yet: a window has not elapsed or a proceed
//! condition is not met); 2 roll back; 3 unknown (no data, Prometheus unreachable or refusing).
//! 4: invalid input (flags, thresholds.yaml, an unknown gate). `list` exits 0 or 4.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};

use chainwatch_exporter::source::client::{ClientConfigured, ClientSpec};
use chainwatch_gate::eval::{self, Context, Request};
use chainwatch_gate::prom::Prometheus;
use chainwatch_gate::report::Report;
use chainwatch_gate::{rules, time};
use chainwatch_rulegen::model::{GateM, Model};

const EXIT_INVALID: u8 = 4;

#[derive(Parser)]
#[command(
    name = "chainwatch-gate",
    version,
    about = "Answer a rollout gate of thresholds.yaml against a Prometheus: proceed (0), hold (1), roll back (2), unknown (3)"
)]
struct Cli {
    /// The thresholds file the gates are defined in.
    #[arg(long, global = true, default_value = "thresholds.yaml")]
    thresholds: PathBuf,
    /// The overlay the rules Prometheus runs were rendered with, if any.
    #[arg(long, global = true, value_name = "FILE")]
    overlay: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

// Parsed once per run: the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Cmd {
    /// Evaluate one gate and exit with its answer.
    Check {
        /// Prometheus's base URL, e.g. http://prometheus:9090 (a path prefix is kept).
        #[arg(long, value_name = "URL")]
        prometheus: String,
        /// How to reach Prometheus: the polled sources' client options (Prometheus's
        /// `http_client_config`): tls_config (ca_file, cert_file, key_file, server_name,
        /// insecure_skip_verify), authorization (type, credentials_file), basic_auth (username,
        /// password_file), headers, proxy_url, follow_redirects. Relative paths resolve against
        /// the file's directory; secrets are re-read at each query.
        #[arg(long = "prometheus.config", value_name = "FILE")]
        prometheus_config: Option<PathBuf>,
        /// The gate (`chainwatch-gate list`).
        #[arg(long, value_name = "NAME")]
        gate: String,
        /// Only this network's group.
        #[arg(long, value_name = "N")]
        network: Option<String>,
        /// Only this chain's group.
        #[arg(long, value_name = "C")]
        chain: Option<String>,
        /// Evaluate at this time (now, RFC 3339 in UTC, or Unix seconds) instead of now.
        #[arg(long, value_name = "TIME", conflicts_with = "wait")]
        at: Option<String>,
        /// Re-evaluate every --interval until the gate says proceed or roll back, or this long has
        /// passed; then answer with the last evaluation.
        #[arg(long, value_name = "DURATION")]
        wait: Option<String>,
        /// Time between evaluations with --wait.
        #[arg(long, value_name = "DURATION", default_value = "30s")]
        interval: String,
        /// Timeout of each query.
        #[arg(long, value_name = "DURATION", default_value = "30s")]
        timeout: String,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Every gate with its stage text, seed, window and conditions.
    List {
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_INVALID } else { 0 });
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

fn dur(flag: &str, s: &str) -> anyhow::Result<Duration> {
    chainwatch_duration::parse_std(s).map_err(|e| anyhow::anyhow!("--{flag} `{s}`: {e}"))
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let (model, files) =
        chainwatch_rulegen::generate_rules(&cli.thresholds, cli.overlay.as_deref())
            .map_err(|e| anyhow::anyhow!("{}: {e}", cli.thresholds.display()))?;
    match cli.command {
        Cmd::List { output } => {
            print!("{}", list(&model, output)?);
            Ok(0)
        }
        Cmd::Check {
            prometheus,
            prometheus_config,
            gate,
            network,
            chain,
            at,
            wait,
            interval,
            timeout,
            output,
        } => {
            let Some(g) = model.gates.iter().find(|g| g.name == gate) else {
                let names: Vec<&str> = model.gates.iter().map(|g| g.name.as_str()).collect();
                anyhow::bail!(
                    "no gate `{gate}` in {} (gates: {})",
                    cli.thresholds.display(),
                    names.join(", ")
                );
            };
            let at = at
                .map(|a| time::parse(&a))
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let wait = wait.map(|w| dur("wait", &w)).transpose()?;
            let interval = dur("interval", &interval)?;
            let timeout = dur("timeout", &timeout)?;
            let mut scope = Vec::new();
            if let Some(c) = chain {
                scope.push(("chain".to_string(), c));
            }
            if let Some(n) = network {
                scope.push(("network".to_string(), n));
            }
            let http = prometheus_config
                .as_deref()
                .map(http_client)
                .transpose()?
                .unwrap_or_default();
            let p = Prometheus::new(&prometheus, timeout, http).map_err(anyhow::Error::msg)?;
            let defs = rules::records(&files, model.evaluation_interval.to_std())
                .map_err(anyhow::Error::msg)?;
            let cx = Context {
                defs: &defs,
                scrape_interval: model.scrape_interval.to_std(),
                evaluation_interval: model.evaluation_interval.to_std(),
            };
            let report = check(&p, &cx, g, at, scope, wait, interval);
            match output {
                Output::Text => print!("{}", report.text()),
                Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
            }
            Ok(report.exit_code)
        }
    }
}

/// `--prometheus.config FILE`, validated as a polled source's client (errors name
/// file:line:column and the field).
fn http_client(file: &std::path::Path) -> anyhow::Result<ClientConfigured> {
    let (spec, pos): (ClientSpec, _) = chainwatch_yaml::from_file(file)?;
    let dir = file
        .parent()
        .unwrap_or(std::path::Path::new(""))
        .to_path_buf();
    let c = spec
        .validate(&|p: &std::path::Path| dir.join(p))
        .map_err(|e| pos.error(e.field, e.message))?;
    // Certificates and keys are loaded now: a bad one is invalid input, not an unknown answer.
    chainwatch_exporter::source::client::Client::new(c.clone())
        .map_err(|e| pos.error(e.field, e.message))?;
    Ok(c)
}

/// One evaluation, or with `wait` evaluations every `interval` until the gate decides.
fn check(
    p: &Prometheus,
    cx: &Context,
    g: &GateM,
    at: Option<f64>,
    scope: Vec<(String, String)>,
    wait: Option<Duration>,
    interval: Duration,
) -> Report {
    let started = Instant::now();
    loop {
        let req = Request {
            at: at.unwrap_or_else(time::now),
            scope: scope.clone(),
        };
        let report = eval::evaluate(p, cx, g, &req);
        let Some(wait) = wait else {
            return report;
        };
        let left = wait.saturating_sub(started.elapsed());
        if report.verdict.is_decided() || left.is_zero() {
            return report;
        }
        let pause = interval.min(left);
        eprintln!(
            "{} {}: {}; next check in {}, {} left",
            time::now_rfc3339(),
            g.name,
            report.summary(),
            chainwatch_duration::format_std(pause),
            chainwatch_duration::format_std(Duration::from_secs(left.as_secs()))
        );
        std::thread::sleep(pause);
    }
}

#[derive(serde::Serialize)]
struct Listed<'a> {
    name: &'a str,
    group: &'a str,
    window: String,
    stage: &'a str,
    source: &'a str,
    criteria: &'a [String],
    proceed: Vec<&'a str>,
    rollback: Vec<&'a str>,
}

fn list(m: &Model, output: Output) -> anyhow::Result<String> {
    let rows: Vec<Listed> = m
        .gates
        .iter()
        .map(|g| Listed {
            name: &g.name,
            group: &g.group,
            window: g.window.to_string(),
            stage: &g.stage,
            source: &g.source,
            criteria: &g.criteria,
            proceed: g.proceed.iter().map(|c| c.name.as_str()).collect(),
            rollback: g.rollback.iter().map(|c| c.name.as_str()).collect(),
        })
        .collect();
    if let Output::Json = output {
        return Ok(format!("{}\n", serde_json::to_string_pretty(&rows)?));
    }
    let wn = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let ws = rows.iter().map(|r| r.stage.len()).max().unwrap_or(5).max(5);
    let mut s = format!("{:wn$}  {:6}  {:ws$}  SEED\n", "GATE", "WINDOW", "STAGE");
    for r in &rows {
        s.push_str(&format!(
            "{:wn$}  {:6}  {:ws$}  {}\n",
            r.name, r.window, r.stage, r.source
        ));
    }
    Ok(s)
}
