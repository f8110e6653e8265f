//! Command line: flags are defined once here; `--help` is generated from these definitions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::config::{Config, DEFAULT_MAX_LINE_BYTES};
use crate::log::{Format, Level};
use crate::{pipeline, profile, replay, serve};

/// 9100–9999, the range of Prometheus's default port allocations, is fully allocated; 19942 is
/// outside it and below the Linux ephemeral range.
pub const DEFAULT_LISTEN: &str = ":19942";

#[derive(Parser, Debug)]
#[command(
    name = "chainwatch-exporter",
    version,
    long_version = crate::version::LONG,
    about = "Follows a blockchain node's logs and exports standardized Prometheus metrics."
)]
pub struct Cli {
    /// Configuration file (YAML). Without it, the sidecar serves the built-in default: ./node.log* with the dilithion profile.
    #[arg(long = "config", global = true)]
    pub config: Option<PathBuf>,
    /// Address to listen on for HTTP requests; repeat to listen on several.
    #[arg(long = "web.listen-address", default_value = DEFAULT_LISTEN)]
    pub listen_addresses: Vec<String>,
    /// Use the sockets systemd passes (socket activation) instead of --web.listen-address.
    #[arg(long = "web.systemd-socket")]
    pub systemd_socket: bool,
    /// Maximum number of concurrent scrapes; more are answered 503 at once. 0 means no limit.
    #[arg(long = "web.max-requests", default_value_t = 40)]
    pub max_requests: usize,
    /// Path under which to expose metrics.
    #[arg(long = "web.telemetry-path", default_value = "/metrics")]
    pub telemetry_path: String,
    /// Directory for read checkpoints, so a restart neither loses nor recounts lines (overrides `state_dir` in the config).
    #[arg(long = "state.dir")]
    pub state_dir: Option<PathBuf>,
    /// Web configuration file (exporter-toolkit format): TLS, basic auth, response headers.
    #[arg(long = "web.config.file", global = true)]
    pub web_config: Option<PathBuf>,
    /// Only log messages with this severity or above.
    #[arg(long = "log.level", value_enum, default_value = "info", global = true)]
    pub log_level: Level,
    /// Output format of log messages: logfmt or json.
    #[arg(
        long = "log.format",
        value_enum,
        default_value = "logfmt",
        global = true
    )]
    pub log_format: Format,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Read logs from start to EOF through profiles and print the metrics (Prometheus text format).
    /// With --config, the configuration's profiles, constant labels and caps apply; flags override them.
    Replay {
        /// Built-in profile name or profile file; repeat to merge several. Replaces the configuration's profiles.
        #[arg(long = "profile")]
        profiles: Vec<String>,
        /// Constant label, e.g. --label node=n1 (chain, network, region, node); overrides the configuration's.
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// Lines longer than this are truncated and counted [default: the configuration's, else 65536].
        #[arg(long = "max-line-bytes")]
        max_line_bytes: Option<usize>,
        /// Cap on the label sets of one metric; samples past it are dropped and counted [default: the configuration's, else 2000].
        #[arg(long = "max-series-per-metric")]
        max_series_per_metric: Option<usize>,
        /// Instead of the metrics, list the most frequent shapes of the lines no rule matched.
        #[arg(long = "unmatched")]
        unmatched: bool,
        /// With --unmatched: how many shapes to list.
        #[arg(long = "top", default_value_t = 20, requires = "unmatched")]
        top: usize,
        /// Write the history the lines make, each at its own time (the profiles' `time:`, a
        /// journal entry's __REALTIME_TIMESTAMP), sampled every --resolution: the input of
        /// `promtool tsdb create-blocks-from openmetrics`. Needs --format openmetrics.
        #[arg(long = "timestamps", requires = "format", conflicts_with = "unmatched")]
        timestamps: bool,
        /// Output format: text (the final state, the exposition format) or openmetrics.
        #[arg(long = "format", value_enum, default_value = "text")]
        format: ReplayFormat,
        /// With --timestamps: the time between two samples of a series (a scrape interval).
        #[arg(long = "resolution", default_value = "15s", requires = "timestamps")]
        resolution: String,
        /// With --timestamps: how the input is framed (auto: `journalctl -o json` and `-o export`
        /// are told by their first bytes, anything else is lines of text).
        #[arg(
            long = "input",
            value_enum,
            default_value = "auto",
            requires = "timestamps"
        )]
        input: ReplayInput,
        /// Log files to read (gzip-compressed ones are read decompressed; `-` is standard input).
        #[arg(required = true)]
        logs: Vec<PathBuf>,
    },
    /// Run the test cases of profiles (their `tests:`) or of test files (`profiles:` + `tests:`);
    /// exit 1 with a diff when one fails.
    Test {
        /// Test files, profile files, or built-in profile names.
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Print the metric catalog as Markdown (the source of docs/metrics.md), with the metrics the
    /// given profiles declare.
    Catalog {
        /// Built-in profile name or profile file whose `metrics:` to document; repeatable.
        #[arg(long = "profile")]
        profiles: Vec<String>,
    },
    /// List the built-in profiles.
    Profiles {
        /// Print this built-in profile's YAML instead of the list.
        show: Option<String>,
    },
    /// Validate the configuration and its profiles, then exit.
    CheckConfig,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not name=value"))?;
    Ok((k.to_string(), v.to_string()))
}

/// `test` found a failing case; the report is already printed.
#[derive(Debug, thiserror::Error)]
#[error("test cases failed")]
struct TestsFailed;

/// Flags that do not fit together (clap checks each flag alone).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

/// Exit codes: 0 success, 1 runtime failure (or a failing test case), 2 invalid input (flags,
/// config, profile).
pub fn main() -> i32 {
    let cli = Cli::parse();
    crate::log::init(cli.log_level, cli.log_format);
    match run(cli) {
        Ok(()) => 0,
        Err(e) if e.is::<TestsFailed>() => 1,
        Err(e) => {
            let invalid = e.chain().any(|c| {
                c.is::<chainwatch_yaml::SpecError>()
                    || c.is::<crate::profile::LoadErrors>()
                    || c.is::<crate::registry::RegistryError>()
                    || c.is::<UsageError>()
            });
            eprintln!("chainwatch-exporter: {e:#}");
            if invalid {
                2
            } else {
                1
            }
        }
    }
}

/// What `replay` runs with: the configuration's profiles, labels and caps when one is given, each
/// overridden by its flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReplayFormat {
    Text,
    Openmetrics,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReplayInput {
    Auto,
    Text,
    JournalJson,
    JournalExport,
}

struct ReplaySettings {
    profiles: Vec<String>,
    labels: BTreeMap<String, String>,
    max_line_bytes: usize,
    max_series_per_metric: usize,
}

fn replay_settings(
    config: Option<&Path>,
    profiles: Vec<String>,
    labels: Vec<(String, String)>,
    max_line_bytes: Option<usize>,
    max_series_per_metric: Option<usize>,
) -> Result<ReplaySettings> {
    let base = match config {
        Some(p) => {
            let c = Config::load(p)?;
            ReplaySettings {
                profiles: c.profiles,
                labels: c.labels,
                max_line_bytes: c.max_line_bytes,
                max_series_per_metric: c.max_series_per_metric,
            }
        }
        None => {
            if profiles.is_empty() {
                return Err(UsageError(
                    "replay needs --profile NAME|FILE, or --config FILE for its profiles".into(),
                )
                .into());
            }
            ReplaySettings {
                profiles: Vec::new(),
                labels: BTreeMap::new(),
                max_line_bytes: DEFAULT_MAX_LINE_BYTES,
                max_series_per_metric: crate::registry::DEFAULT_SERIES_CAP,
            }
        }
    };
    let mut s = base;
    if !profiles.is_empty() {
        s.profiles = profiles;
    }
    s.labels.extend(labels);
    s.max_line_bytes = max_line_bytes.unwrap_or(s.max_line_bytes).max(1);
    s.max_series_per_metric = max_series_per_metric.unwrap_or(s.max_series_per_metric);
    Ok(s)
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Some(Command::Catalog { profiles }) => {
            let text = if profiles.is_empty() {
                chainwatch_catalog::to_markdown()
            } else {
                let p = pipeline::build(&profiles, &BTreeMap::new(), 1)?;
                p.metrics.catalog().to_markdown()
            };
            print!("{text}");
            Ok(())
        }
        Some(Command::Test { files }) => {
            let mut failed = false;
            for f in &files {
                let suite = crate::profile_test::load(f)?;
                let outcome = crate::profile_test::run(&suite)?;
                print!("{}", outcome.report);
                failed |= !outcome.passed;
            }
            if failed {
                return Err(TestsFailed.into());
            }
            Ok(())
        }
        Some(Command::Profiles { show: None }) => {
            for b in profile::BUILTINS {
                println!("{:<24} {}", b.name, b.summary);
            }
            Ok(())
        }
        Some(Command::Profiles { show: Some(name) }) => {
            let b =
                profile::builtin(&name).with_context(|| format!("no built-in profile `{name}`"))?;
            print!("{}", b.yaml);
            Ok(())
        }
        Some(Command::Replay {
            profiles,
            labels,
            max_line_bytes,
            max_series_per_metric,
            unmatched,
            top,
            timestamps,
            format,
            resolution,
            input,
            logs,
        }) => {
            let s = replay_settings(
                cli.config.as_deref(),
                profiles,
                labels,
                max_line_bytes,
                max_series_per_metric,
            )?;
            let mut p = pipeline::build(&s.profiles, &s.labels, s.max_series_per_metric)?;
            if timestamps || format == ReplayFormat::Openmetrics {
                if !timestamps {
                    return Err(UsageError(
                        "--format openmetrics writes a history: add --timestamps".into(),
                    )
                    .into());
                }
                let res = chainwatch_duration::Duration::parse(&resolution)
                    .map_err(|e| UsageError(format!("--resolution {resolution}: {e}")))?;
                if res.is_zero() {
                    return Err(UsageError("--resolution must be above 0".into()).into());
                }
                let input = match input {
                    ReplayInput::Auto => crate::backfill::Input::Auto,
                    ReplayInput::Text => crate::backfill::Input::Text,
                    ReplayInput::JournalJson => crate::backfill::Input::JournalJson,
                    ReplayInput::JournalExport => crate::backfill::Input::JournalExport,
                };
                let times = std::mem::replace(
                    &mut p.times,
                    crate::timestamps::LineTime::compile(&[]).expect("no profile, no error"),
                );
                let stdout = std::io::stdout();
                let mut out = stdout.lock();
                let rep = crate::backfill::backfill(
                    &mut p,
                    &times,
                    &logs,
                    input,
                    res.ms(),
                    s.max_line_bytes,
                    &mut out,
                )?;
                eprintln!("{}", rep.text());
                return Ok(());
            }
            let text = if unmatched {
                replay::unmatched(&mut p, &logs, s.max_line_bytes, top)?
            } else {
                replay::replay(&mut p, &logs, s.max_line_bytes)?
            };
            use std::io::Write;
            std::io::stdout()
                .lock()
                .write_all(text.as_bytes())
                .context("writing to stdout")?;
            Ok(())
        }
        Some(Command::CheckConfig) => {
            let cfg = Config::load_or_default(cli.config.as_deref())?;
            let mut p = pipeline::build(&cfg.profiles, &cfg.labels, cfg.max_series_per_metric)?;
            // Every source prepared as serving prepares it (mappings resolved), none started.
            let sources = crate::source::prepare::prepare(&cfg, cfg.state_dir.as_deref(), &mut p)?;
            if let Some(w) = cli.web_config.as_deref() {
                serve::load_security(Some(w))?;
                println!("{}: OK", w.display());
            }
            println!(
                "{}: OK ({} profile(s), {} rule(s), {} mapping(s), {} source(s))",
                cfg.file.display(),
                p.profile_names.len(),
                p.engine.rules().len(),
                p.apis.len(),
                sources.len()
            );
            // What the series will carry once environment variables are expanded; labels left
            // out here are the Prometheus target labels' to set.
            let labels: Vec<String> = p.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            println!("constant labels: {{{}}}", labels.join(", "));
            Ok(())
        }
        None => {
            let cfg = Config::load_or_default(cli.config.as_deref())?;
            serve::run(
                cfg,
                serve::WebOptions {
                    listen_addresses: cli.listen_addresses,
                    systemd_socket: cli.systemd_socket,
                    telemetry_path: cli.telemetry_path,
                    state_dir: cli.state_dir,
                    web_config: cli.web_config,
                    max_requests: cli.max_requests,
                    config_path: cli.config.clone(),
                },
            )
        }
    }
}
