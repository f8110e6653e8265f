//! One simulated node: its state, the log lines it writes as time passes, and the answers of its
//! stats API. Everything here is synchronous and driven by `tick(now)`, so it is easy to test; the
//! HTTP side (`http.rs`) only calls in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use crate::family::{bitcell::Bitcell, coinjecture::Coinjecture, dilithion::Dilithion, pop::Pop};
use crate::fleet::{Family, NodeSpec};
use crate::logfile::{syslog_timestamp, LogFile, Rng};
use crate::scenario::{Active, DownMode, Scenario};

/// An HTTP answer, built without any HTTP library.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(status: u16, v: &Value) -> Self {
        let mut body = serde_json::to_vec_pretty(v).unwrap_or_default();
        body.push(b'\n');
        Reply {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body,
        }
    }

    pub fn text(status: u16, content_type: &'static str, body: String) -> Self {
        Reply {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into_bytes(),
        }
    }

    pub fn not_found(path: &str, routes: &str) -> Self {
        Reply::json(
            404,
            &json!({"error": format!("no route {path}; this node serves {routes}")}),
        )
    }
}

/// A request as the node sees it.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub authorization: Option<&'a str>,
    pub body: &'a [u8],
}

/// What a family's code gets to write lines and read the node's situation.
pub struct Ctx<'a> {
    pub spec: &'a NodeSpec,
    pub height: u64,
    /// The height (PoP: round number) this block slot stands for, whether produced or not.
    pub round: u64,
    pub peers: u32,
    pub port: u16,
    pub rng: &'a mut Rng,
    pub scenarios: &'a BTreeMap<Scenario, Active>,
    out: &'a mut Vec<(usize, String)>,
}

impl Ctx<'_> {
    /// The rate of an active scenario, if it is on.
    pub fn rate(&self, s: Scenario) -> Option<f64> {
        self.scenarios.get(&s).map(|a| a.rate)
    }

    pub fn on(&self, s: Scenario) -> bool {
        self.scenarios.contains_key(&s)
    }

    /// A line for log file `file` (0: node.log; COINjecture's 1: api.log), after the
    /// `<unit>[pid]: ` prefix.
    pub fn log(&mut self, file: usize, msg: String) {
        self.out.push((file, msg));
    }
}

pub enum Fam {
    Coinjecture(Coinjecture),
    Dilithion(Dilithion),
    Pop(Pop),
    Bitcell(Bitcell),
}

/// Dispatch to the family's own code.
macro_rules! fam {
    ($self:expr, $f:ident => $e:expr) => {
        match $self {
            Fam::Coinjecture($f) => $e,
            Fam::Dilithion($f) => $e,
            Fam::Pop($f) => $e,
            Fam::Bitcell($f) => $e,
        }
    };
}

pub struct Node {
    pub spec: NodeSpec,
    pub port: u16,
    pub dir: PathBuf,
    pub scenarios: BTreeMap<Scenario, Active>,
    pub height: u64,
    pub fam: Fam,
    start: Instant,
    last_slot: u64,
    last_line_slot: u64,
    line_no: u64,
    /// The node was down or stalled: the next block catches up with the network at once.
    behind: bool,
    was_down: bool,
    rng: Rng,
    pid: u32,
    logs: Vec<LogFile>,
    /// Log files and the unit that writes each.
    units: Vec<&'static str>,
}

impl Node {
    /// Create the node's directory, log files (and cookie), and write its start-up lines.
    pub fn new(spec: NodeSpec, port: u16, root: &Path, start: Instant) -> std::io::Result<Self> {
        let dir = root.join(&spec.name);
        std::fs::create_dir_all(&dir)?;
        let mut rng = Rng::seeded(&spec.name);
        let (fam, files): (Fam, &[(&str, &'static str)]) = match spec.family {
            Family::Coinjecture => (
                Fam::Coinjecture(Coinjecture::new(&spec)),
                &[
                    ("node.log", "coinjecture-node"),
                    ("api.log", "coinjecture-api"),
                ],
            ),
            Family::Dilithion => (
                Fam::Dilithion(Dilithion::new(&dir, &mut rng)?),
                &[("node.log", "dilithiond")],
            ),
            Family::Pop => (Fam::Pop(Pop::new(&spec)), &[("node.log", "pop-validator")]),
            Family::Bitcell => (
                Fam::Bitcell(Bitcell::new()),
                &[("node.log", "bitcell-node")],
            ),
        };
        let mut logs = Vec::new();
        for (f, _) in files {
            logs.push(LogFile::open(&dir.join(f))?);
        }
        let pid = 1000 + rng.int(0, 30_000) as u32;
        let mut node = Node {
            height: spec.start_height,
            port,
            dir,
            scenarios: BTreeMap::new(),
            fam,
            start,
            last_slot: 0,
            last_line_slot: 0,
            line_no: 0,
            behind: false,
            was_down: false,
            rng,
            pid,
            logs,
            units: files.iter().map(|(_, u)| *u).collect(),
            spec,
        };
        node.emit(|fam, ctx| fam!(fam, f => f.startup(ctx)))?;
        Ok(node)
    }

    pub fn log_paths(&self) -> Vec<PathBuf> {
        self.logs.iter().map(|l| l.path.clone()).collect()
    }

    pub fn cookie_path(&self) -> Option<PathBuf> {
        match &self.fam {
            Fam::Dilithion(d) => Some(d.cookie_path.clone()),
            _ => None,
        }
    }

    pub fn peers(&self) -> u32 {
        if self.scenarios.contains_key(&Scenario::PeersZero) {
            0
        } else {
            self.spec.peers
        }
    }

    /// How the node answers while down, or None while up. A host that is down refuses: nothing
    /// listens on a machine that is off.
    pub fn down_mode(&self) -> Option<DownMode> {
        if self.host_down() {
            return Some(DownMode::Refuse);
        }
        self.scenarios.get(&Scenario::NodeDown).map(|a| a.mode)
    }

    /// Is the whole host down (the node, its sidecar and its address)?
    pub fn host_down(&self) -> bool {
        self.scenarios.contains_key(&Scenario::HostDown)
            || self.scenarios.contains_key(&Scenario::RegionDown)
    }

    /// Should the host's sidecar process run now?
    pub fn sidecar_runs(&self) -> bool {
        !self.host_down() && !self.scenarios.contains_key(&Scenario::SidecarDown)
    }

    /// Does the monitoring network reach the host now?
    pub fn reachable(&self) -> bool {
        !self.host_down() && !self.scenarios.contains_key(&Scenario::Partition)
    }

    /// Does the node produce blocks (rounds) now?
    fn producing(&self) -> bool {
        if self.scenarios.contains_key(&Scenario::ChainStall) {
            return false;
        }
        match &self.fam {
            Fam::Bitcell(_) => !self.scenarios.contains_key(&Scenario::NoActiveMiners),
            Fam::Pop(_) => !self.scenarios.contains_key(&Scenario::ValidatorsDown),
            _ => true,
        }
    }

    pub fn set_scenario(&mut self, s: Scenario, a: Option<Active>) {
        match a {
            Some(a) => {
                self.scenarios.insert(s, a);
            }
            None => {
                self.scenarios.remove(&s);
            }
        }
        if let Fam::Pop(p) = &mut self.fam {
            p.set_validators_down(self.scenarios.contains_key(&Scenario::ValidatorsDown));
        }
    }

    /// Switch the COINjecture consensus wrapper's mode (logs `Consensus mode changed to …`).
    pub fn set_consensus_mode(&mut self, m: crate::fleet::ConsensusMode) -> std::io::Result<()> {
        self.emit(|fam, ctx| {
            if let Fam::Coinjecture(c) = fam {
                c.set_mode(m, ctx)
            }
        })
    }

    /// Advance to `now`: blocks due since the last tick, then the periodic lines. Nothing happens
    /// while the node is down.
    pub fn tick(&mut self, now: Instant) -> std::io::Result<()> {
        if self.down_mode().is_some() {
            self.was_down = true;
            self.behind = true;
            return Ok(());
        }
        if self.was_down {
            // A restart: a new process, its start-up lines.
            self.was_down = false;
            self.pid += 1 + self.rng.int(0, 50) as u32;
            self.emit(|fam, ctx| fam!(fam, f => f.startup(ctx)))?;
        }
        let elapsed = now.saturating_duration_since(self.start);
        let slot = slots(elapsed, self.spec.block_interval);
        while self.last_slot < slot {
            if !self.producing() {
                // A slot without a block; after a long pause only the last one is logged.
                self.last_slot = (self.last_slot + 1).max(slot.saturating_sub(10));
                self.behind = true;
                self.emit(|fam, ctx| fam!(fam, f => f.stalled(ctx)))?;
                continue;
            }
            if self.behind || slot - self.last_slot > 10 {
                // Back after a stall or a restart: catch up with the network in one step.
                self.last_slot = slot;
                self.behind = false;
                let target = self.spec.start_height + slot;
                if target > self.height + 1 {
                    let n = target - 1 - self.height;
                    self.height = target - 1;
                    self.emit(|fam, ctx| fam!(fam, f => f.synced(ctx, n)))?;
                }
            } else {
                self.last_slot += 1;
            }
            self.height = (self.spec.start_height + self.last_slot).max(self.height);
            self.emit(|fam, ctx| fam!(fam, f => f.block(ctx)))?;
        }
        let line_slot = slots(elapsed, self.spec.line_interval);
        if line_slot > self.last_line_slot {
            self.last_line_slot = line_slot;
            let k = self.line_no;
            self.line_no += 1;
            self.emit(|fam, ctx| fam!(fam, f => f.tick(ctx, k)))?;
        }
        Ok(())
    }

    /// Run `f` with a context, then write what it logged.
    fn emit(&mut self, f: impl FnOnce(&mut Fam, &mut Ctx)) -> std::io::Result<()> {
        let mut out = Vec::new();
        let peers = self.peers();
        let mut ctx = Ctx {
            spec: &self.spec,
            height: self.height,
            round: self.spec.start_height + self.last_slot,
            peers,
            port: self.port,
            rng: &mut self.rng,
            scenarios: &self.scenarios,
            out: &mut out,
        };
        f(&mut self.fam, &mut ctx);
        if out.is_empty() {
            return Ok(());
        }
        let ts = syslog_timestamp(SystemTime::now());
        for (file, msg) in out {
            let line = format!(
                "{ts} {} {}[{}]: {msg}",
                self.spec.name, self.units[file], self.pid
            );
            self.logs[file].write_line(&line)?;
        }
        Ok(())
    }

    /// Answer one request of the node's API (the caller has already handled a node that is down).
    pub fn handle(&mut self, req: &Request) -> Reply {
        if req.path == "/health" {
            return if req.method == "GET" || req.method == "HEAD" {
                Reply::json(
                    200,
                    &json!({"status": "ok", "node": self.spec.name, "height": self.height}),
                )
            } else {
                Reply::json(405, &json!({"error": "GET /health"}))
            };
        }
        let peers = self.peers();
        let mut out = Vec::new();
        let ctx = Ctx {
            spec: &self.spec,
            height: self.height,
            round: self.spec.start_height + self.last_slot,
            peers,
            port: self.port,
            rng: &mut self.rng,
            scenarios: &self.scenarios,
            out: &mut out,
        };
        fam!(&mut self.fam, f => f.handle(ctx, req))
    }

    /// The node as `GET /state` shows it.
    pub fn state(&self) -> Value {
        let scenarios: serde_json::Map<String, Value> = self
            .scenarios
            .iter()
            .map(|(s, a)| {
                let v = match s {
                    Scenario::NodeDown => json!({"mode": a.mode.name()}),
                    _ => match s.info().rate {
                        crate::scenario::Rate::None => json!({}),
                        _ => json!({"rate": a.rate}),
                    },
                };
                (s.name().to_string(), v)
            })
            .collect();
        let base = format!("http://127.0.0.1:{}", self.port);
        json!({
            "name": self.spec.name,
            "family": self.spec.family.name(),
            "chain": self.spec.family.chain(),
            "network": self.spec.network,
            "region": self.spec.region,
            "up": self.down_mode().is_none(),
            "host_up": !self.host_down(),
            "reachable": self.reachable(),
            "producing": self.producing(),
            "height": self.height,
            "peers": self.peers(),
            "pid": self.pid,
            "api_url": base,
            "health_url": format!("{base}/health"),
            "endpoints": endpoints(self.spec.family, &base),
            "logs": self.log_paths(),
            "cookie_file": self.cookie_path(),
            "config": self.dir.join("chainwatch.yaml"),
            "metrics_from": match self.spec.metrics_from {
                crate::fleet::MetricsFrom::Log => "log",
                crate::fleet::MetricsFrom::Api => "api",
            },
            "scenarios": scenarios,
            "stats": fam!(&self.fam, f => f.state(self)),
        })
    }
}

/// The node's API URLs by what they serve.
pub fn endpoints(family: Family, base: &str) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("health".into(), json!(format!("{base}/health")));
    match family {
        Family::Coinjecture => {
            m.insert(
                "consensus_stats".into(),
                json!(format!("{base}/v1/consensus/stats")),
            );
        }
        Family::Dilithion => {
            m.insert("jsonrpc".into(), json!(format!("{base}/")));
        }
        Family::Pop => {
            m.insert("status".into(), json!(format!("{base}/status")));
        }
        Family::Bitcell => {
            m.insert("metrics".into(), json!(format!("{base}/metrics")));
        }
    }
    Value::Object(m)
}

fn slots(elapsed: Duration, interval: Duration) -> u64 {
    (elapsed.as_nanos() / interval.as_nanos().max(1)) as u64
}

/// What every family implements.
pub trait Behaviour {
    /// Lines of a (re)start.
    fn startup(&mut self, ctx: &mut Ctx);
    /// A new block (PoP: a completed round) at `ctx.height`.
    fn block(&mut self, ctx: &mut Ctx);
    /// A block slot while the node does not produce.
    fn stalled(&mut self, _ctx: &mut Ctx) {}
    /// The node caught up `n` blocks at once (after a stall or a restart), up to `ctx.height`.
    fn synced(&mut self, _ctx: &mut Ctx, _n: u64) {}
    /// The periodic lines; `k` counts the calls.
    fn tick(&mut self, ctx: &mut Ctx, k: u64);
    /// The family's API routes (`/health` is common).
    fn handle(&mut self, ctx: Ctx, req: &Request) -> Reply;
    /// Family state for `GET /state`.
    fn state(&self, node: &Node) -> Value;
}
