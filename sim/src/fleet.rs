//! The fleet file: which nodes to simulate, of which family, in which region. Plain data plus one
//! loader that checks everything before anything starts.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// The built-in fleet (`--fleet` omitted, or `--example-fleet` to print it): every family, two
/// regions, and one node per family reading its stats API instead of its log for the counters.
pub const EXAMPLE_FLEET: &str = include_str!("../fleet.example.yaml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Coinjecture,
    Dilithion,
    Pop,
    Bitcell,
}

impl Family {
    pub const ALL: [Family; 4] = [
        Family::Coinjecture,
        Family::Dilithion,
        Family::Pop,
        Family::Bitcell,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Coinjecture => "coinjecture",
            Family::Dilithion => "dilithion",
            Family::Pop => "pop",
            Family::Bitcell => "bitcell",
        }
    }

    pub fn parse(s: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.name() == s)
    }

    /// The `chain` label the built-in profiles give this family.
    pub fn chain(self) -> &'static str {
        self.name()
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The consensus wrapper's mode (seed 001): LEGACY_ONLY, SHADOW, REFACTORED_PRIMARY, REFACTORED_ONLY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ConsensusMode {
    Legacy,
    #[default]
    Shadow,
    Rust,
    Final,
}

impl ConsensusMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "legacy" | "legacy_only" => Some(Self::Legacy),
            "shadow" => Some(Self::Shadow),
            "rust" | "refactored_primary" => Some(Self::Rust),
            "final" | "refactored_only" => Some(Self::Final),
            _ => None,
        }
    }

    /// The value of `mode` in `GET /v1/consensus/stats` (seed 001 shows "shadow" and "rust").
    pub fn stats_name(self) -> &'static str {
        match self {
            Self::Legacy => "legacy",
            Self::Shadow => "shadow",
            Self::Rust => "rust",
            Self::Final => "final",
        }
    }

    /// The `ConsensusMode` enum name the node logs.
    pub fn enum_name(self) -> &'static str {
        match self {
            Self::Legacy => "LEGACY_ONLY",
            Self::Shadow => "SHADOW",
            Self::Rust => "REFACTORED_PRIMARY",
            Self::Final => "REFACTORED_ONLY",
        }
    }

    /// The engine whose result counts in this mode (`mode_used` of the verification line).
    pub fn engine(self) -> &'static str {
        match self {
            Self::Legacy | Self::Shadow => "legacy",
            Self::Rust | Self::Final => "rust",
        }
    }
}

/// Where the generated sidecar config reads a node's consensus (COINjecture) or round (PoP)
/// counters from. Both the log and the stats API count the same events, so a config reads one of
/// the two (README: "configure one of the two for a node, or the counters add up twice").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MetricsFrom {
    #[default]
    Log,
    Api,
}

/// Who gives a node's sidecar series their `region` and `node` labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Identity {
    /// The sidecar's config sets chain, network, region and node.
    #[default]
    Sidecar,
    /// The config sets chain and network only; Prometheus sets region and node as target labels
    /// (service discovery, relabeling), announced as `target_labels`.
    Target,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetSpec {
    #[serde(default = "one")]
    version: u32,
    /// Default `network` label of every node.
    #[serde(default = "testnet")]
    network: String,
    /// Default time between two blocks (or consensus rounds).
    #[serde(default)]
    block_interval: Option<String>,
    /// Default time between two batches of the other log lines.
    #[serde(default)]
    line_interval: Option<String>,
    #[serde(default)]
    sidecar: SidecarSpec,
    nodes: Vec<NodeSpecRaw>,
}

fn one() -> u32 {
    1
}

fn testnet() -> String {
    "testnet".into()
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SidecarSpec {
    /// `interval` of the polled sources in the generated configs.
    #[serde(default)]
    poll_interval: Option<String>,
    /// `poll_interval` of the file sources in the generated configs.
    #[serde(default)]
    file_poll_interval: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeSpecRaw {
    name: String,
    family: Family,
    region: String,
    #[serde(default)]
    network: Option<String>,
    #[serde(default)]
    block_interval: Option<String>,
    #[serde(default)]
    line_interval: Option<String>,
    /// Connected peers while healthy.
    #[serde(default)]
    peers: Option<u32>,
    #[serde(default)]
    start_height: Option<u64>,
    /// COINjecture: the consensus wrapper's mode at start.
    #[serde(default)]
    consensus_mode: Option<ConsensusMode>,
    /// COINjecture and PoP: where the generated config reads the counters both sources have.
    #[serde(default)]
    metrics_from: Option<MetricsFrom>,
    /// PoP: registered validators.
    #[serde(default)]
    validators: Option<u32>,
    /// BitCell: active miners while healthy.
    #[serde(default)]
    miners: Option<u32>,
    /// Who sets `region` and `node`: the sidecar (default) or Prometheus's target labels.
    #[serde(default)]
    identity: Identity,
}

/// A validated fleet.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub nodes: Vec<NodeSpec>,
    pub sidecar: Sidecar,
}

#[derive(Debug, Clone)]
pub struct Sidecar {
    pub poll_interval: Duration,
    pub file_poll_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    pub family: Family,
    pub region: String,
    pub network: String,
    pub block_interval: Duration,
    pub line_interval: Duration,
    pub peers: u32,
    pub start_height: u64,
    pub consensus_mode: ConsensusMode,
    pub metrics_from: MetricsFrom,
    pub validators: u32,
    pub miners: u32,
    pub identity: Identity,
    /// Position among the nodes of the same family (miner rotation, peer addresses).
    pub family_index: usize,
}

impl NodeSpec {
    /// The labels Prometheus must put on the node's target (none when the sidecar sets them).
    pub fn target_labels(&self) -> Vec<(&'static str, &str)> {
        match self.identity {
            Identity::Sidecar => Vec::new(),
            Identity::Target => vec![("node", &self.name), ("region", &self.region)],
        }
    }
}

pub fn load(path: &Path) -> Result<Fleet> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the fleet file {}", path.display()))?;
    parse(&text).with_context(|| format!("fleet file {}", path.display()))
}

pub fn parse(text: &str) -> Result<Fleet> {
    let spec: FleetSpec = serde_norway::from_str(text)?;
    if spec.version != 1 {
        bail!(
            "version: unsupported fleet version {}; this simulator reads version 1",
            spec.version
        );
    }
    if spec.nodes.is_empty() {
        bail!("nodes: list at least one node");
    }
    let default_block = duration(
        "block_interval",
        spec.block_interval.as_deref(),
        Duration::from_secs(1),
    )?;
    let default_line = duration(
        "line_interval",
        spec.line_interval.as_deref(),
        Duration::from_millis(250),
    )?;
    let poll_interval = duration(
        "sidecar.poll_interval",
        spec.sidecar.poll_interval.as_deref(),
        Duration::from_secs(1),
    )?;
    if poll_interval < Duration::from_millis(100) {
        bail!("sidecar.poll_interval: must be at least 100ms (the sidecar's minimum)");
    }
    let file_poll_interval = duration(
        "sidecar.file_poll_interval",
        spec.sidecar.file_poll_interval.as_deref(),
        Duration::from_millis(100),
    )?;
    if file_poll_interval < Duration::from_millis(10) {
        bail!("sidecar.file_poll_interval: must be at least 10ms (the sidecar's minimum)");
    }
    label_value("network", &spec.network)?;
    let mut names = HashSet::new();
    let mut per_family = std::collections::HashMap::new();
    let mut nodes = Vec::new();
    for (i, n) in spec.nodes.into_iter().enumerate() {
        let at = |f: &str| format!("nodes[{i}].{f}");
        if n.name.is_empty()
            || !n
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            bail!(
                "{}: `{}`: a node name is letters, digits, `_`, `-` or `.` (it names a directory)",
                at("name"),
                n.name
            );
        }
        if n.name == "profiles" {
            bail!(
                "{}: `profiles` is taken (DIR/profiles holds the generated profiles)",
                at("name")
            );
        }
        if !names.insert(n.name.clone()) {
            bail!("{}: duplicate node name `{}`", at("name"), n.name);
        }
        label_value(&at("region"), &n.region)?;
        let network = n.network.unwrap_or_else(|| spec.network.clone());
        label_value(&at("network"), &network)?;
        let block_interval = match n.block_interval {
            Some(s) => duration(&at("block_interval"), Some(&s), default_block)?,
            None => default_block,
        };
        let line_interval = match n.line_interval {
            Some(s) => duration(&at("line_interval"), Some(&s), default_line)?,
            None => default_line,
        };
        if block_interval < Duration::from_millis(50) {
            bail!("{}: must be at least 50ms", at("block_interval"));
        }
        if line_interval < Duration::from_millis(10) {
            bail!("{}: must be at least 10ms", at("line_interval"));
        }
        let only = |field: &str, set: bool, fam: Family| -> Result<()> {
            if set && n.family != fam {
                bail!(
                    "{}: only {} nodes have it (`{}` is {})",
                    at(field),
                    fam,
                    n.name,
                    n.family
                );
            }
            Ok(())
        };
        only(
            "consensus_mode",
            n.consensus_mode.is_some(),
            Family::Coinjecture,
        )?;
        only("validators", n.validators.is_some(), Family::Pop)?;
        only("miners", n.miners.is_some(), Family::Bitcell)?;
        if n.metrics_from.is_some() && !matches!(n.family, Family::Coinjecture | Family::Pop) {
            bail!(
                "{}: only coinjecture and pop nodes have counters in both their log and their API",
                at("metrics_from")
            );
        }
        let validators = n.validators.unwrap_or(4);
        if !(1..=1000).contains(&validators) {
            bail!("{}: between 1 and 1000", at("validators"));
        }
        let miners = n.miners.unwrap_or(5);
        if !(1..=10_000).contains(&miners) {
            bail!("{}: between 1 and 10000", at("miners"));
        }
        let peers = n.peers.unwrap_or(8);
        if !(1..=1000).contains(&peers) {
            bail!(
                "{}: between 1 and 1000 (peers_zero simulates 0)",
                at("peers")
            );
        }
        let idx = per_family.entry(n.family).or_insert(0usize);
        nodes.push(NodeSpec {
            name: n.name,
            family: n.family,
            region: n.region,
            network,
            block_interval,
            line_interval,
            peers,
            start_height: n.start_height.unwrap_or(1000),
            consensus_mode: n.consensus_mode.unwrap_or_default(),
            metrics_from: n.metrics_from.unwrap_or_default(),
            validators,
            miners,
            identity: n.identity,
            family_index: *idx,
        });
        *idx += 1;
    }
    Ok(Fleet {
        nodes,
        sidecar: Sidecar {
            poll_interval,
            file_poll_interval,
        },
    })
}

fn label_value(field: &str, v: &str) -> Result<()> {
    if v.is_empty()
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        bail!("{field}: `{v}`: use letters, digits, `_`, `-` or `.`");
    }
    Ok(())
}

fn duration(field: &str, v: Option<&str>, default: Duration) -> Result<Duration> {
    match v {
        None => Ok(default),
        Some(s) => chainwatch_duration::parse_std(s).map_err(|e| anyhow::anyhow!("{field}: {e}")),
    }
}

/// A duration as the sidecar's config reads it (the workspace's one grammar).
pub fn format_duration(d: Duration) -> String {
    chainwatch_duration::format_std(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_fleet_is_valid_and_spans_families_and_regions() {
        let f = parse(EXAMPLE_FLEET).unwrap();
        let fams: HashSet<_> = f.nodes.iter().map(|n| n.family).collect();
        assert_eq!(fams.len(), 4);
        let regions: HashSet<_> = f.nodes.iter().map(|n| n.region.as_str()).collect();
        assert!(regions.len() >= 2);
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse(
            "nodes: [{name: a, family: dilithion, region: eu}, {name: a, family: pop, region: us}]",
        )
        .unwrap_err();
        assert!(e.to_string().contains("nodes[1].name: duplicate"), "{e}");
        let e = parse("nodes: [{name: a, family: eth, region: eu}]").unwrap_err();
        assert!(e.to_string().contains("eth"), "{e}");
        let e = parse("nodes: [{name: a, family: pop, region: eu, miners: 3}]").unwrap_err();
        assert!(e.to_string().contains("nodes[0].miners"), "{e}");
        let e = parse("block_interval: 5 parsecs\nnodes: [{name: a, family: pop, region: eu}]")
            .unwrap_err();
        assert!(e.to_string().contains("block_interval"), "{e}");
        let e = parse("nodes: [{name: a b, family: pop, region: eu}]").unwrap_err();
        assert!(e.to_string().contains("nodes[0].name"), "{e}");
        let e = parse("nodes: []").unwrap_err();
        assert!(e.to_string().contains("at least one"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(Duration::from_secs(1)), "1s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    }
}
