//! Serve mode: sources → engine → registry → HTTP, until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::watch;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::api::fetch::Target;
use crate::api::Api;
use crate::config::{ApiSource, ApiSourceKind, Config};
use crate::health::Health;
use crate::pipeline;
use crate::profile::spec::ApiKind;
use crate::registry::Metrics;
use crate::server::{self, Web};
use crate::source::api::Poller;
use crate::source::poll::{self, PollMetrics};
use crate::source::{file, journal};

pub struct WebOptions {
    pub listen_address: String,
    pub telemetry_path: String,
    pub state_dir: Option<PathBuf>,
    /// `--web.config.file`: TLS, basic auth and response headers (exporter-toolkit format).
    pub web_config: Option<PathBuf>,
}

pub fn run(cfg: Config, web: WebOptions) -> Result<()> {
    // First: a bad web config must stop us before anything runs or listens.
    let security = load_security(web.web_config.as_deref())?;
    let mut p = pipeline::build(&cfg.profiles, &cfg.labels, cfg.max_series_per_metric)?;
    let state_dir = web.state_dir.clone().or(cfg.state_dir.clone());
    if let Some(d) = &state_dir {
        std::fs::create_dir_all(d)
            .with_context(|| format!("creating --state.dir {}", d.display()))?;
    }
    let mut prepared = Vec::new();
    for f in &cfg.files {
        let mut f = f.clone();
        f.paths = file::absolutize(&f.paths);
        prepared.push(file::prepare(
            &f,
            state_dir.as_deref(),
            cfg.max_line_bytes,
            &p.engine,
            &mut p.metrics,
        )?);
    }
    let mut journals = Vec::new();
    for j in &cfg.journals {
        journals.push(journal::prepare(
            j,
            state_dir.as_deref(),
            cfg.max_line_bytes,
            &p.engine,
            &mut p.metrics,
        )?);
    }
    let mut pollers = Vec::new();
    for a in &cfg.apis {
        pollers.push(prepare_poller(&cfg, a, &p.apis, &mut p.metrics)?);
    }
    let engine = Arc::new(p.engine);
    let metrics = Arc::new(p.metrics);
    let health = Arc::new(Health::default());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("chainwatch-http")
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let addr = parse_listen(&web.listen_address)?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr} (--web.listen-address)"))?;
        let local = listener.local_addr()?;
        info!(
            "listening",
            address = local,
            telemetry_path = web.telemetry_path,
            profiles = p.profile_names.join(",")
        );

        let mut running = Vec::new();
        for pr in prepared {
            running.push(file::start(pr, engine.clone(), health.clone())?);
        }
        let mut running_journals = Vec::new();
        for j in journals {
            running_journals.push(journal::start(j, engine.clone(), health.clone())?);
        }
        let (tx, rx) = watch::channel(false);
        let mut polls = Vec::new();
        for (poller, interval, pm) in pollers {
            polls.push(tokio::spawn(poll::run(
                poller,
                interval,
                pm,
                health.clone(),
                rx.clone(),
            )));
        }
        let server = tokio::spawn(server::serve(
            listener,
            Arc::new(Web {
                metrics: metrics.clone(),
                health: health.clone(),
                telemetry_path: web.telemetry_path.clone(),
                security,
            }),
            rx,
        ));

        wait_for_signal().await?;
        info!("shutting down");
        let _ = tx.send(true);
        for r in &running {
            r.stop();
        }
        for r in &running_journals {
            r.stop();
        }
        let mut failed = Vec::new();
        for r in running_journals {
            let name = r.name.clone();
            match tokio::task::spawn_blocking(move || r.join()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failed.push(format!("{name}: {e}")),
                Err(e) => failed.push(format!("{name}: {e}")),
            }
        }
        for r in running {
            let name = r.name.clone();
            match tokio::task::spawn_blocking(move || r.join()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failed.push(format!("{name}: {e}")),
                Err(e) => failed.push(format!("{name}: {e}")),
            }
        }
        for t in polls {
            let _ = t.await;
        }
        let _ = server.await;
        log_totals(&metrics);
        if !failed.is_empty() {
            anyhow::bail!("sources failed: {}", failed.join("; "));
        }
        Ok(())
    })
}

/// Resolve a polled source's mapping and build its poller and self-metrics.
pub fn prepare_poller(
    cfg: &Config,
    a: &ApiSource,
    apis: &BTreeMap<String, Arc<Api>>,
    metrics: &mut Metrics,
) -> Result<(Poller, Duration, PollMetrics)> {
    let at = |f: &str| format!("sources[{}].{f}", a.index);
    let pm = PollMetrics::new(metrics, &a.name)?;
    let wanted = match a.kind {
        ApiSourceKind::HttpJson => ApiKind::HttpJson,
        ApiSourceKind::JsonRpc => ApiKind::Jsonrpc,
        ApiSourceKind::Prometheus => ApiKind::Prometheus,
        ApiSourceKind::Health => {
            let target =
                Target::parse(&a.url, None).map_err(|e| cfg.positions.error(at("url"), e))?;
            let up = metrics
                .gauge_vec("chain_node_up", &[])?
                .with_label_values(&[] as &[&str]);
            let duration = metrics
                .gauge_vec("chain_node_health_probe_duration_seconds", &[])?
                .with_label_values(&[] as &[&str]);
            return Ok((
                Poller::Health {
                    target,
                    up,
                    duration,
                    timeout: a.timeout,
                },
                a.interval,
                pm,
            ));
        }
    };
    let fitting: Vec<&Arc<Api>> = apis.values().filter(|x| x.bound.kind() == wanted).collect();
    let api = match &a.mapping {
        Some(n) => {
            let api = apis.get(n).ok_or_else(|| {
                let names: Vec<&str> = fitting.iter().map(|x| x.name.as_str()).collect();
                cfg.positions.error(
                    at("mapping"),
                    format!(
                        "no mapping `{n}` in the profiles (`{}` mappings: {})",
                        wanted.name(),
                        if names.is_empty() {
                            "none".into()
                        } else {
                            names.join(", ")
                        }
                    ),
                )
            })?;
            if api.bound.kind() != wanted {
                return Err(cfg
                    .positions
                    .error(
                        at("mapping"),
                        format!(
                            "mapping `{n}` is a {} mapping, not {}",
                            api.bound.kind().name(),
                            wanted.name()
                        ),
                    )
                    .into());
            }
            api.clone()
        }
        None => match fitting.as_slice() {
            [one] => (*one).clone(),
            [] => {
                return Err(cfg
                    .positions
                    .error(
                        at("type"),
                        format!("the profiles define no `{}` mapping", wanted.name()),
                    )
                    .into())
            }
            many => {
                let names: Vec<&str> = many.iter().map(|x| x.name.as_str()).collect();
                return Err(cfg
                    .positions
                    .error(
                        at("mapping"),
                        format!(
                            "several `{}` mappings fit; choose one with `mapping:` ({})",
                            wanted.name(),
                            names.join(", ")
                        ),
                    )
                    .into());
            }
        },
    };
    let target = Target::parse(&a.url, api.path.as_deref())
        .map_err(|e| cfg.positions.error(at("url"), e))?;
    let poller = match a.kind {
        ApiSourceKind::HttpJson => Poller::HttpJson {
            target,
            api,
            timeout: a.timeout,
            max_body: a.max_body_bytes,
        },
        ApiSourceKind::JsonRpc => Poller::JsonRpc {
            target,
            api,
            auth: a.auth.clone(),
            timeout: a.timeout,
            max_body: a.max_body_bytes,
        },
        ApiSourceKind::Prometheus => Poller::Prometheus {
            target,
            api,
            timeout: a.timeout,
            max_body: a.max_body_bytes,
        },
        ApiSourceKind::Health => unreachable!("returned above"),
    };
    Ok((poller, a.interval, pm))
}

/// Load `--web.config.file` (errors carry file:line:column, so they exit with code 2).
pub fn load_security(path: Option<&std::path::Path>) -> Result<server::Security> {
    let Some(path) = path else {
        return Ok(server::Security::default());
    };
    let c = crate::web_config::load(path)?;
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

/// `:9942`, `0.0.0.0:9942`, `127.0.0.1:0`, `[::1]:9942`.
fn parse_listen(s: &str) -> Result<SocketAddr> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.parse()
        .with_context(|| format!("--web.listen-address `{s}` is not host:port"))
}

async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
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
