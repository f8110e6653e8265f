//! chainwatch-sim: a simulated fleet of blockchain nodes for chainwatch's end-to-end tests and
//! demo. Test support, not part of the sidecar.
//!
//! Each node writes journal-style log lines in the wording the built-in profiles read, serves its
//! stats API and `/health` on a loopback port, and keeps consistent state (height per block
//! interval, peers, running totals). With `--sidecar BIN` each node gets a host: its sidecar as a
//! real process and the address Prometheus scrapes it at, so a host can die with its sidecar or
//! be cut off by a partition. A control API injects the seeds' failure scenarios.

pub mod control;
pub mod family;
pub mod fleet;
pub mod host;
pub mod http;
pub mod logfile;
pub mod net;
pub mod node;
pub mod scenario;
pub mod sidecar;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use serde_json::json;

use crate::control::Control;
use crate::fleet::Fleet;
use crate::host::{Host, SidecarCmd};
use crate::http::NodeHandle;
use crate::node::Node;

#[derive(Parser, Debug)]
#[command(
    name = "chainwatch-sim",
    version,
    about = "Simulated fleet of blockchain nodes (logs, stats APIs, failure scenarios) for chainwatch's tests and demo.",
    after_help = "Prints one JSON object (control URL, every node's URLs, logs, sidecar config and, with --sidecar, the sidecar's URL) on the first line of stdout, then runs until SIGTERM or SIGINT.\nControl API: GET /state, GET /scenarios, POST /scenario {\"scenario\": …, \"node\"|\"region\"|\"family\": …, \"on\": true|false, \"rate\": …}, POST /mode."
)]
pub struct Cli {
    /// Fleet file (YAML); without it, the built-in example fleet (see --example-fleet).
    #[arg(long)]
    pub fleet: Option<PathBuf>,
    /// Directory for the nodes' logs, cookies and sidecar configs (DIR/<node>/).
    #[arg(long, required_unless_present = "example_fleet")]
    pub dir: Option<PathBuf>,
    /// Address of the control API (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub control: String,
    /// Also write each node's sidecar config to DIR2/<node>.yaml.
    #[arg(long = "emit-config")]
    pub emit_config: Option<PathBuf>,
    /// Run this chainwatch-exporter binary as each node's sidecar, on its generated config,
    /// reached at the host's address (`sidecar_url`); hosts, sidecars and partitions can then
    /// fail (host_down, region_down, sidecar_down, partition).
    #[arg(long)]
    pub sidecar: Option<PathBuf>,
    /// Print the built-in example fleet and exit.
    #[arg(long = "example-fleet")]
    pub example_fleet: bool,
}

/// Run the command line; returns the exit code (0 ok, 1 runtime failure, 2 invalid input).
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    if cli.example_fleet {
        print!("{}", fleet::EXAMPLE_FLEET);
        return 0;
    }
    let fleet = match &cli.fleet {
        Some(p) => fleet::load(p),
        None => fleet::parse(fleet::EXAMPLE_FLEET).context("the built-in example fleet"),
    };
    let fleet = match fleet {
        Ok(f) => f,
        Err(e) => {
            eprintln!("chainwatch-sim: {e:#}");
            return 2;
        }
    };
    let control: std::net::SocketAddr = match cli.control.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "chainwatch-sim: --control {}: {e} (give host:port, e.g. 127.0.0.1:0)",
                cli.control
            );
            return 2;
        }
    };
    let dir = cli.dir.clone().expect("clap requires --dir");
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chainwatch-sim: starting the runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(run(
        fleet,
        &dir,
        control,
        cli.emit_config.as_deref(),
        cli.sidecar.as_deref(),
    )) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("chainwatch-sim: {e:#}");
            1
        }
    }
}

async fn run(
    fleet: Fleet,
    dir: &Path,
    control: std::net::SocketAddr,
    emit: Option<&Path>,
    sidecar_bin: Option<&Path>,
) -> Result<()> {
    // Handlers first: a SIGTERM right after the first line is printed must stop us cleanly.
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = std::fs::canonicalize(dir)?;
    if let Some(e) = emit {
        std::fs::create_dir_all(e).with_context(|| format!("creating {}", e.display()))?;
    }
    let profiles_dir = dir.join("profiles");
    sidecar::write_profiles(&profiles_dir)
        .with_context(|| format!("writing profiles into {}", profiles_dir.display()))?;
    let start = Instant::now();
    let mut handles = Vec::new();
    let mut listeners = Vec::new();
    let mut announced = Vec::new();
    for spec in &fleet.nodes {
        let l = http::bind(0).context("binding a loopback port")?;
        let port = l.local_addr()?.port();
        let node = Node::new(spec.clone(), port, &dir, start)
            .with_context(|| format!("node {}", spec.name))?;
        let logs = node.log_paths();
        let cookie = node.cookie_path();
        let config = sidecar::render(
            &sidecar::NodeView {
                spec,
                port,
                logs: &logs,
                cookie: cookie.as_deref(),
                profiles_dir: &profiles_dir,
            },
            &fleet.sidecar,
        );
        let config_path = node.dir.join("chainwatch.yaml");
        std::fs::write(&config_path, &config)
            .with_context(|| format!("writing {}", config_path.display()))?;
        if let Some(e) = emit {
            let p = e.join(format!("{}.yaml", spec.name));
            std::fs::write(&p, &config).with_context(|| format!("writing {}", p.display()))?;
        }
        let host = match sidecar_bin {
            Some(bin) => Some(
                Host::new(
                    &spec.name,
                    SidecarCmd {
                        bin: bin.to_path_buf(),
                        config: config_path.clone(),
                        state_dir: node.dir.join("sidecar-state"),
                        log: node.dir.join("sidecar.log"),
                    },
                )
                .await
                .with_context(|| format!("the host of node {}", spec.name))?,
            ),
            None => None,
        };
        let base = format!("http://127.0.0.1:{port}");
        announced.push(json!({
            "name": spec.name,
            "family": spec.family.name(),
            "network": spec.network,
            "region": spec.region,
            "api_url": base,
            "health_url": format!("{base}/health"),
            "endpoints": node::endpoints(spec.family, &base),
            "logs": logs,
            "cookie_file": cookie,
            "config": config_path,
            "target_labels": spec
                .target_labels()
                .into_iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect::<serde_json::Map<_, _>>(),
            "sidecar_url": host.as_ref().map(|h| h.link.url()),
            "sidecar_log": host.as_ref().map(|_| node.dir.join("sidecar.log")),
        }));
        handles.push(NodeHandle::new(node, host));
        listeners.push(l);
    }
    let ctl_listener = tokio::net::TcpListener::bind(control)
        .await
        .with_context(|| format!("binding the control API on {control}"))?;
    let ctl_addr = ctl_listener.local_addr()?;
    let control_url = format!("http://{ctl_addr}");
    let ctl = Arc::new(Control {
        nodes: handles.clone(),
        dir: dir.clone(),
        control_url: control_url.clone(),
        sidecars: sidecar_bin.is_some(),
    });
    for (h, l) in handles.iter().zip(listeners) {
        tokio::spawn(http::serve_node(h.clone(), l));
        tokio::spawn(ticker(h.clone()));
    }
    // Every sidecar listens before the first line says where they are.
    for h in &handles {
        h.sync();
    }
    for host in handles.iter().filter_map(|h| h.host.as_ref()) {
        if let Err(e) = host.ready(SIDECAR_START).await {
            stop_sidecars(&handles).await;
            anyhow::bail!(e);
        }
    }
    tokio::spawn(http::serve_control(ctl, ctl_listener));
    let first = json!({
        "control": ctl_addr.to_string(),
        "control_url": control_url,
        "dir": dir,
        "nodes": announced,
    });
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{first}")?;
        out.flush()?;
    }
    eprintln!(
        "chainwatch-sim: {} nodes under {}; control API on {control_url}",
        handles.len(),
        dir.display()
    );
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    eprintln!("chainwatch-sim: stopping");
    stop_sidecars(&handles).await;
    Ok(())
}

/// How long a sidecar may take to start listening.
const SIDECAR_START: std::time::Duration = std::time::Duration::from_secs(30);

/// Stop every sidecar (SIGTERM, SIGKILL after 5s), all at once.
async fn stop_sidecars(handles: &[Arc<NodeHandle>]) {
    let hosts = handles.iter().filter_map(|h| h.host.clone());
    let stops: Vec<_> = hosts
        .map(|h| tokio::spawn(async move { h.shutdown(std::time::Duration::from_secs(5)).await }))
        .collect();
    for s in stops {
        let _ = s.await;
    }
}

/// Drive one node: blocks and periodic lines as time passes.
async fn ticker(h: Arc<NodeHandle>) {
    let spec = h.spec();
    let period = spec.line_interval.min(spec.block_interval) / 2;
    let mut iv = tokio::time::interval(period.max(std::time::Duration::from_millis(5)));
    iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        iv.tick().await;
        if let Err(e) = h.lock().tick(Instant::now()) {
            eprintln!("chainwatch-sim: {}: writing the log: {e}", h.name);
        }
    }
}
