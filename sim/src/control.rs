//! The control API: inject and clear the seeds' failure scenarios per node, region or family, and
//! read every node's state. JSON in, JSON out; a request that cannot apply is a 400 that says why.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::fleet::{ConsensusMode, Family};
use crate::http::NodeHandle;
use crate::node::Reply;
use crate::scenario::{self, Active, DownMode, Rate, Scenario};

pub struct Control {
    pub nodes: Vec<Arc<NodeHandle>>,
    pub dir: PathBuf,
    pub control_url: String,
    /// Does the simulator run the sidecars (`--sidecar`)?
    pub sidecars: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioReq {
    scenario: String,
    #[serde(default)]
    node: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    family: Option<String>,
    #[serde(default)]
    on: Option<bool>,
    #[serde(default)]
    rate: Option<f64>,
    #[serde(default)]
    mode: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeReq {
    mode: String,
    #[serde(default)]
    node: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    family: Option<String>,
}

type Failure = (u16, String);

fn bad(msg: impl Into<String>) -> Failure {
    (400, msg.into())
}

impl Control {
    pub fn handle(&self, method: &str, path: &str, body: &[u8]) -> Reply {
        let r = match (method, path) {
            ("GET" | "HEAD", "/health") => Ok(json!({"status": "ok"})),
            ("GET" | "HEAD", "/state") => Ok(self.state()),
            ("GET" | "HEAD", "/scenarios") => Ok(scenarios()),
            ("POST", "/scenario") => parse(body).and_then(|r| self.scenario(r)),
            ("POST", "/mode") => parse(body).and_then(|r| self.mode(r)),
            (_, "/health" | "/state" | "/scenarios" | "/scenario" | "/mode") => Err((
                405,
                format!("{method} {path}: not allowed (GET /state, GET /scenarios, POST /scenario, POST /mode)"),
            )),
            _ => Err((
                404,
                format!("no route {path} (GET /state, GET /scenarios, POST /scenario, POST /mode)"),
            )),
        };
        match r {
            Ok(v) => Reply::json(200, &v),
            Err((status, msg)) => Reply::json(status, &json!({"error": msg})),
        }
    }

    pub fn state(&self) -> Value {
        let nodes: Vec<Value> = self.nodes.iter().map(|h| h.state()).collect();
        let regions: BTreeSet<&str> = self.nodes.iter().map(|h| h.region.as_str()).collect();
        json!({
            "control_url": self.control_url,
            "dir": self.dir,
            "regions": regions,
            "nodes": nodes,
        })
    }

    /// The nodes a request names: exactly one of `node`, `region`, `family`; none means every node
    /// when `all_allowed`.
    fn targets(
        &self,
        node: &Option<String>,
        region: &Option<String>,
        family: &Option<String>,
        all_allowed: bool,
    ) -> Result<(String, Vec<usize>), Failure> {
        let given = [node.is_some(), region.is_some(), family.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if given > 1 {
            return Err(bad("name one target: `node`, `region` or `family`"));
        }
        if let Some(n) = node {
            return match self.nodes.iter().position(|h| &h.name == n) {
                Some(i) => Ok((format!("node {n}"), vec![i])),
                None => Err(bad(format!(
                    "unknown node `{n}`; the fleet has {}",
                    self.nodes
                        .iter()
                        .map(|h| h.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
            };
        }
        if let Some(r) = region {
            let v: Vec<usize> = (0..self.nodes.len())
                .filter(|&i| &self.nodes[i].region == r)
                .collect();
            if v.is_empty() {
                let regions: BTreeSet<&str> =
                    self.nodes.iter().map(|h| h.region.as_str()).collect();
                return Err(bad(format!(
                    "unknown region `{r}`; the fleet's regions are {}",
                    regions.into_iter().collect::<Vec<_>>().join(", ")
                )));
            }
            return Ok((format!("region {r}"), v));
        }
        if let Some(f) = family {
            let fam = Family::parse(f).ok_or_else(|| {
                bad(format!(
                    "unknown family `{f}`; families: coinjecture, dilithion, pop, bitcell"
                ))
            })?;
            let v: Vec<usize> = (0..self.nodes.len())
                .filter(|&i| self.nodes[i].family == fam)
                .collect();
            if v.is_empty() {
                return Err(bad(format!("the fleet has no {f} node")));
            }
            return Ok((format!("family {f}"), v));
        }
        if all_allowed {
            Ok(("every node".into(), (0..self.nodes.len()).collect()))
        } else {
            Err(bad("name a target: `node`, `region` or `family`"))
        }
    }

    fn scenario(&self, r: ScenarioReq) -> Result<Value, Failure> {
        if r.scenario == "all_clear" {
            if r.on == Some(false) || r.rate.is_some() || r.mode.is_some() {
                return Err(bad("all_clear takes only a target (none: every node)"));
            }
            let (_, idx) = self.targets(&r.node, &r.region, &r.family, true)?;
            for &i in &idx {
                let h = &self.nodes[i];
                {
                    let mut n = h.lock();
                    let on: Vec<Scenario> = n.scenarios.keys().copied().collect();
                    for s in on {
                        n.set_scenario(s, None);
                    }
                }
                h.sync();
            }
            let names = self.names(&idx);
            eprintln!("chainwatch-sim: all_clear on {}", names.join(", "));
            return Ok(json!({"scenario": "all_clear", "on": false, "nodes": names}));
        }
        let s = Scenario::parse(&r.scenario).ok_or_else(|| {
            bad(format!(
                "unknown scenario `{}`; scenarios: {}",
                r.scenario,
                scenario::names().join(", ")
            ))
        })?;
        let info = s.info();
        if s == Scenario::RegionDown && r.region.is_none() {
            return Err(bad(
                "region_down takes a `region` (host_down and node_down take a node, a region or a family)",
            ));
        }
        let on = r.on.unwrap_or(true);
        let rate = match (info.rate, r.rate) {
            (_, Some(_)) if !on => return Err(bad("`rate` goes with `on: true`")),
            (Rate::None, Some(_)) => return Err(bad(format!("{} takes no `rate`", info.name))),
            (Rate::Fraction(_), Some(x)) if !(x > 0.0 && x <= 1.0) => {
                return Err(bad(format!(
                    "{}: `rate` is a fraction of events in (0, 1]",
                    info.name
                )))
            }
            (Rate::Offset(_), Some(x)) if !(x > 0.0 && x <= 10.0) => {
                return Err(bad(format!(
                    "{}: `rate` is a relative offset in (0, 10]",
                    info.name
                )))
            }
            (_, Some(x)) => x,
            (Rate::Fraction(d) | Rate::Offset(d), None) => d,
            (Rate::None, None) => 0.0,
        };
        let mode = match (&r.mode, s) {
            (None, _) => DownMode::default(),
            (Some(_), _) if !on => return Err(bad("`mode` goes with `on: true`")),
            (Some(m), Scenario::NodeDown) => DownMode::parse(m).ok_or_else(|| {
                bad(format!(
                    "unknown mode `{m}`; a node that is down can `refuse`, answer `503` or `hang`"
                ))
            })?,
            (Some(_), _) => {
                return Err(bad(format!(
                    "{} takes no `mode` (node_down does: a host that is down answers nothing)",
                    info.name
                )))
            }
        };
        if s.needs_sidecar() && !self.sidecars {
            return Err(bad(format!(
                "{} acts on the sidecars, and this simulator runs none (start it with --sidecar BIN)",
                info.name
            )));
        }
        let (target, idx) = self.targets(&r.node, &r.region, &r.family, false)?;
        let fams: Vec<&str> = info.families.iter().map(|f| f.name()).collect();
        let idx: Vec<usize> = if r.node.is_some() {
            let h = &self.nodes[idx[0]];
            if !s.applies_to(h.family) {
                return Err(bad(format!(
                    "{} applies to {} nodes; `{}` is a {} node",
                    info.name,
                    fams.join(", "),
                    h.name,
                    h.family
                )));
            }
            idx
        } else {
            let v: Vec<usize> = idx
                .into_iter()
                .filter(|&i| s.applies_to(self.nodes[i].family))
                .collect();
            if v.is_empty() {
                return Err(bad(format!(
                    "{} applies to {} nodes; {target} has none",
                    info.name,
                    fams.join(", ")
                )));
            }
            v
        };
        for &i in &idx {
            let h = &self.nodes[i];
            h.lock()
                .set_scenario(s, on.then_some(Active { rate, mode }));
            h.sync();
        }
        let names = self.names(&idx);
        eprintln!(
            "chainwatch-sim: {} {}: {}",
            info.name,
            if on { "on" } else { "off" },
            names.join(", ")
        );
        let mut v = json!({"scenario": info.name, "on": on, "nodes": names});
        if on && info.rate != Rate::None {
            v["rate"] = json!(rate);
        }
        if on && s == Scenario::NodeDown {
            v["mode"] = json!(mode.name());
        }
        Ok(v)
    }

    fn mode(&self, r: ModeReq) -> Result<Value, Failure> {
        let m = ConsensusMode::parse(&r.mode).ok_or_else(|| {
            bad(format!(
                "unknown consensus mode `{}`; modes: legacy, shadow, rust, final (or LEGACY_ONLY, SHADOW, REFACTORED_PRIMARY, REFACTORED_ONLY)",
                r.mode
            ))
        })?;
        let (target, idx) = self.targets(&r.node, &r.region, &r.family, false)?;
        let idx: Vec<usize> = idx
            .into_iter()
            .filter(|&i| self.nodes[i].family == Family::Coinjecture)
            .collect();
        if idx.is_empty() {
            return Err(bad(format!(
                "consensus modes belong to coinjecture nodes; {target} has none"
            )));
        }
        for &i in &idx {
            self.nodes[i]
                .lock()
                .set_consensus_mode(m)
                .map_err(|e| (500, format!("writing the log: {e}")))?;
        }
        Ok(json!({"mode": m.stats_name(), "nodes": self.names(&idx)}))
    }

    fn names(&self, idx: &[usize]) -> Vec<String> {
        idx.iter().map(|&i| self.nodes[i].name.clone()).collect()
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(body).map_err(|e| bad(format!("request body: {e}")))
}

/// `GET /scenarios`: what each scenario does, to which families, with which default rate.
pub fn scenarios() -> Value {
    let mut v: Vec<Value> = scenario::ALL
        .iter()
        .map(|i| {
            let mut o = json!({
                "scenario": i.name,
                "families": i.families.iter().map(|f| f.name()).collect::<Vec<_>>(),
                "what": i.what,
            });
            match i.rate {
                Rate::Fraction(d) | Rate::Offset(d) => o["default_rate"] = json!(d),
                Rate::None => {}
            }
            o
        })
        .collect();
    v.push(json!({
        "scenario": "all_clear",
        "families": ["coinjecture", "dilithion", "pop", "bitcell"],
        "what": "clears every scenario of the target (none: every node); nodes, hosts and sidecars that were down start again and nodes catch up",
    }));
    Value::Array(v)
}
