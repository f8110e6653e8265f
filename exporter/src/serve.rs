//! Serve mode: sources → engine → registry → HTTP, until SIGTERM or SIGINT; SIGHUP reloads.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::watch;

use crate::config::Config;
use crate::health::Health;
use crate::pipeline;
use crate::registry::Metrics;
use crate::source::prepare::Sources;
use crate::source::{self, file, journal, poll};
use crate::web::server::{self, Shared, Web};

pub struct WebOptions {
    /// `--web.listen-address`, each one listened on.
    pub listen_addresses: Vec<String>,
    /// `--web.systemd-socket`: the sockets systemd passed instead of the addresses.
    pub systemd_socket: bool,
    pub telemetry_path: String,
    pub state_dir: Option<PathBuf>,
    /// `--web.config.file`: TLS, basic auth and response headers (exporter-toolkit format).
    pub web_config: Option<PathBuf>,
    /// `--web.max-requests`: concurrent scrapes allowed; 0 for no limit.
    pub max_requests: usize,
    /// Where the configuration came from, re-read on SIGHUP (None: the built-in default).
    pub config_path: Option<PathBuf>,
}

/// One configuration at work: its registry, its sources. A reload builds the next one completely
/// before the current one is stopped, so a bad configuration never replaces a good one.
struct Prepared {
    shared: Arc<Shared>,
    engine: Arc<crate::engine::Engine>,
    sources: Sources,
    profile_names: Vec<String>,
}

struct Generation {
    shared: Arc<Shared>,
    files: Vec<file::Running>,
    journals: Vec<journal::Running>,
    polls: Vec<tokio::task::JoinHandle<()>>,
    stop_polls: watch::Sender<bool>,
}

fn prepare(cfg: &Config, state_dir: &Path) -> Result<Prepared> {
    let mut p = pipeline::build(&cfg.profiles, &cfg.labels, cfg.max_series_per_metric)?;
    let sources = source::prepare::prepare(cfg, Some(state_dir), &mut p)?;
    Ok(Prepared {
        shared: Arc::new(Shared {
            metrics: Arc::new(p.metrics),
            health: Arc::new(Health::default()),
        }),
        engine: Arc::new(p.engine),
        sources,
        profile_names: p.profile_names,
    })
}

impl Prepared {
    /// Start every source (inside the runtime: pollers are tasks).
    fn start(self) -> Result<Generation> {
        let health = self.shared.health.clone();
        let mut files = Vec::new();
        for pr in self.sources.files {
            files.push(file::start(pr, self.engine.clone(), health.clone())?);
        }
        let mut journals = Vec::new();
        for j in self.sources.journals {
            journals.push(journal::start(j, self.engine.clone(), health.clone())?);
        }
        let (stop_polls, rx) = watch::channel(false);
        let polls = self
            .sources
            .polls
            .into_iter()
            .map(|p| tokio::spawn(poll::run(p, health.clone(), rx.clone())))
            .collect();
        Ok(Generation {
            shared: self.shared,
            files,
            journals,
            polls,
            stop_polls,
        })
    }
}

/// Waits for a source thread to end.
type Join = Box<dyn FnOnce() -> Result<(), String> + Send>;

impl Generation {
    /// Stop every source: followers finish their chunk and write their checkpoints. Returns the
    /// sources that failed.
    async fn stop(self) -> Vec<String> {
        let _ = self.stop_polls.send(true);
        for r in &self.files {
            r.stop();
        }
        for r in &self.journals {
            r.stop();
        }
        let mut failed = Vec::new();
        let mut joins: Vec<(String, Join)> = Vec::new();
        for r in self.files {
            joins.push((r.name.clone(), Box::new(move || r.join())));
        }
        for r in self.journals {
            joins.push((r.name.clone(), Box::new(move || r.join())));
        }
        for (name, join) in joins {
            match tokio::task::spawn_blocking(join).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failed.push(format!("{name}: {e}")),
                Err(e) => failed.push(format!("{name}: {e}")),
            }
        }
        for t in self.polls {
            let _ = t.await;
        }
        log_totals(&self.shared.metrics);
        failed
    }
}

/// A private state directory for a process run without --state.dir: sources hand over through
/// checkpoints on a reload, so not a line is lost or counted twice while the configuration
/// changes. Removed at exit.
struct PrivateState(PathBuf);

impl Drop for PrivateState {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn run(cfg: Config, web: WebOptions) -> Result<()> {
    crate::memory::configure();
    // First: a bad web config must stop us before anything runs or listens.
    let security = load_security(web.web_config.as_deref())?;
    let mut private = None;
    let state_dir = match web.state_dir.clone().or(cfg.state_dir.clone()) {
        Some(d) => d,
        None => {
            let d = std::env::temp_dir().join(format!("chainwatch-{}", std::process::id()));
            private = Some(PrivateState(d.clone()));
            d
        }
    };
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("creating the state directory {}", state_dir.display()))?;
    let first = prepare(&cfg, &state_dir)?;
    let listeners = crate::web::listen::listeners(&web.listen_addresses, web.systemd_socket)?;
    // Reload outcome lives outside the generations: it must survive the swap it reports on.
    let mut meta = Metrics::new(&cfg.labels)?;
    meta.register_process_metrics()?;
    let reload_ok = meta
        .gauge_vec("chainwatch_config_last_reload_successful", &[])?
        .with_label_values(&[] as &[&str]);
    let reload_ts = meta
        .gauge_vec(
            "chainwatch_config_last_reload_success_timestamp_seconds",
            &[],
        )?
        .with_label_values(&[] as &[&str]);
    reload_ok.set(1.0);
    reload_ts.set(now());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("chainwatch-http")
        .build()
        .context("starting the async runtime")?;
    let result = rt.block_on(async move {
        // Before anything listens: a SIGTERM sent as soon as "listening" is logged or /health
        // answers must reach our handler, not the default action (death by signal, no final count).
        let mut signals = Signals::install()?;
        let mut bound = Vec::new();
        for l in listeners {
            let l = tokio::net::TcpListener::from_std(l).context("listening socket")?;
            info!(
                "listening",
                address = l.local_addr()?,
                telemetry_path = web.telemetry_path,
                profiles = first.profile_names.join(","),
                systemd_socket = web.systemd_socket
            );
            bound.push(l);
        }
        let webstate = Arc::new(Web::new(
            Arc::new(meta),
            first.shared.clone(),
            web.telemetry_path.clone(),
            security,
            web.max_requests,
        ));
        let mut current = first.start()?;
        let (tx, rx) = watch::channel(false);
        let servers: Vec<_> = bound
            .into_iter()
            .map(|l| tokio::spawn(server::serve(l, webstate.clone(), rx.clone())))
            .collect();
        loop {
            match signals.next().await {
                Signal::Stop => break,
                Signal::Reload => {
                    info!(
                        "reloading configuration",
                        file = web
                            .config_path
                            .as_ref()
                            .map_or("<built-in default>".into(), |p| p.display().to_string())
                    );
                    let next = Config::load_or_default(web.config_path.as_deref())
                        .map_err(anyhow::Error::new)
                        .and_then(|c| {
                            if c.state_dir.is_some() && c.state_dir != cfg.state_dir {
                                warn!("state_dir changes take effect at the next restart");
                            }
                            prepare(&c, &state_dir)
                        });
                    match next {
                        Err(e) => {
                            reload_ok.set(0.0);
                            error!(
                                "reload failed; the previous configuration keeps running",
                                error = format!("{e:#}")
                            );
                        }
                        Ok(next) => {
                            let names = next.profile_names.join(",");
                            let failed = std::mem::replace(&mut current, Generation::placeholder())
                                .stop()
                                .await;
                            for f in failed {
                                warn!("source failed", error = f);
                            }
                            webstate.swap(next.shared.clone());
                            current = next.start()?;
                            reload_ok.set(1.0);
                            reload_ts.set(now());
                            info!("configuration reloaded", profiles = names);
                        }
                    }
                }
            }
        }
        info!("shutting down");
        let _ = tx.send(true);
        let failed = current.stop().await;
        for s in servers {
            let _ = s.await;
        }
        if !failed.is_empty() {
            anyhow::bail!("sources failed: {}", failed.join("; "));
        }
        Ok(())
    });
    drop(private);
    result
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Generation {
    /// An empty generation, to move the running one out for stopping.
    fn placeholder() -> Generation {
        let (stop_polls, _) = watch::channel(false);
        Generation {
            shared: Arc::new(Shared {
                metrics: Arc::new(Metrics::empty()),
                health: Arc::new(Health::default()),
            }),
            files: Vec::new(),
            journals: Vec::new(),
            polls: Vec::new(),
            stop_polls,
        }
    }
}

enum Signal {
    Stop,
    Reload,
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            hup: signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Stop,
            _ = self.int.recv() => Signal::Stop,
            _ = self.hup.recv() => Signal::Reload,
        }
    }
}

/// Load `--web.config.file` (errors carry file:line:column, so they exit with code 2).
pub fn load_security(path: Option<&std::path::Path>) -> Result<server::Security> {
    let Some(path) = path else {
        return Ok(server::Security::default());
    };
    let c = crate::web::config::load(path)?;
    info!(
        "web config loaded",
        file = path.display(),
        tls = c.tls.is_some(),
        basic_auth = c.auth.is_some(),
        headers = c.headers.len()
    );
    Ok(server::Security {
        tls: c.tls,
        auth: c.auth,
        headers: c.headers,
    })
}

/// The last word of a run: what each source read and each rule matched, so that counts survive
/// in the log across a restart (Prometheus counters start again from zero).
fn log_totals(metrics: &crate::registry::Metrics) {
    for fam in metrics.registry().gather() {
        let name = fam.name();
        if name != "chainwatch_source_lines_read_total" && name != "chainwatch_rule_matches_total" {
            continue;
        }
        for m in fam.get_metric() {
            let labels: Vec<String> = m
                .get_label()
                .iter()
                .filter(|l| l.name() == "source" || l.name() == "rule")
                .map(|l| format!("{}={}", l.name(), l.value()))
                .collect();
            info!(
                "final count",
                metric = name,
                labels = labels.join(","),
                value = m.get_counter().get_value()
            );
        }
    }
}
