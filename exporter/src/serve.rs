//! Serve mode: sources → engine → registry → HTTP, until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::watch;

use crate::config::Config;
use crate::health::Health;
use crate::pipeline;
use crate::server::{self, Web};
use crate::source::file;

pub struct WebOptions {
    pub listen_address: String,
    pub telemetry_path: String,
    pub state_dir: Option<PathBuf>,
}

pub fn run(cfg: Config, web: WebOptions) -> Result<()> {
    let mut p = pipeline::build(&cfg.profiles, &cfg.labels)?;
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
        let (tx, rx) = watch::channel(false);
        let server = tokio::spawn(server::serve(
            listener,
            Arc::new(Web {
                metrics: metrics.clone(),
                health: health.clone(),
                telemetry_path: web.telemetry_path.clone(),
            }),
            rx,
        ));

        wait_for_signal().await?;
        info!("shutting down");
        let _ = tx.send(true);
        for r in &running {
            r.stop();
        }
        let mut failed = Vec::new();
        for r in running {
            let name = r.name.clone();
            match tokio::task::spawn_blocking(move || r.join()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failed.push(format!("{name}: {e}")),
                Err(e) => failed.push(format!("{name}: {e}")),
            }
        }
        let _ = server.await;
        log_totals(&metrics);
        if !failed.is_empty() {
            anyhow::bail!("sources failed: {}", failed.join("; "));
        }
        Ok(())
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
