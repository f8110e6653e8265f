//! The failure scenarios of the seeds, what each applies to, and its default rate.

use crate::fleet::Family;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scenario {
    ConsensusDivergence,
    Fallbacks,
    EquilibriumDrift,
    CidFailures,
    PropagationFailures,
    SendTimeouts,
    PeersZero,
    ChainStall,
    NodeDown,
    HostDown,
    RegionDown,
    SidecarDown,
    Partition,
    NoActiveMiners,
    HighLatency,
    ValidatorsDown,
    OutOfSync,
    HighPendingTxs,
    BannedMiners,
    SlowProofs,
}

use Family::*;

/// How a scenario takes a `rate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// No rate: the scenario is on or off.
    None,
    /// A fraction of events in (0, 1], with this default.
    Fraction(f64),
    /// A relative offset in (0, 10], with this default (equilibrium drift).
    Offset(f64),
}

pub struct Info {
    pub scenario: Scenario,
    pub name: &'static str,
    pub families: &'static [Family],
    pub rate: Rate,
    pub what: &'static str,
}

pub const ALL: &[Info] = &[
    Info {
        scenario: Scenario::ConsensusDivergence,
        name: "consensus_divergence",
        families: &[Coinjecture],
        rate: Rate::Fraction(0.5),
        what: "a `CONSENSUS DIVERGENCE DETECTED! Block: N` line for `rate` of the blocks; stats `divergences` grows",
    },
    Info {
        scenario: Scenario::Fallbacks,
        name: "fallbacks",
        families: &[Coinjecture],
        rate: Rate::Fraction(0.1),
        what: "`rate` of the blocks: `Rust verification failed`, `Falling back to legacy`, verified by legacy; stats `rust_errors` and `fallback_to_legacy` grow",
    },
    Info {
        scenario: Scenario::EquilibriumDrift,
        name: "equilibrium_drift",
        families: &[Coinjecture],
        rate: Rate::Offset(0.25),
        what: "λ is logged `rate` above 0.7071 (η stays), so λ and λ/η deviate by `rate`",
    },
    Info {
        scenario: Scenario::CidFailures,
        name: "cid_failures",
        families: &[Coinjecture],
        rate: Rate::Fraction(0.4),
        what: "`rate` of the CID broadcasts log `Failed to broadcast CID` instead of `📡 Broadcasting`: success = 1 - rate",
    },
    Info {
        scenario: Scenario::PropagationFailures,
        name: "propagation_failures",
        families: &[Dilithion],
        rate: Rate::Fraction(0.25),
        what: "`rate` of the block broadcasts log `[ERROR] Broadcast failed for block` instead of `Broadcasted … to N peers`",
    },
    Info {
        scenario: Scenario::SendTimeouts,
        name: "send_timeouts",
        families: &[Dilithion],
        rate: Rate::Fraction(0.25),
        what: "`rate` of the peer sends of each broadcast log `SendMessage() timeout` (timeouts / sends = rate)",
    },
    Info {
        scenario: Scenario::PeersZero,
        name: "peers_zero",
        families: &[Coinjecture, Dilithion, Bitcell],
        rate: Rate::None,
        what: "peer counts drop to 0 in logs and APIs (getconnectioncount 0, getpeerinfo [], bitcell_peer_count 0); blocks only mined locally",
    },
    Info {
        scenario: Scenario::ChainStall,
        name: "chain_stall",
        families: &[Coinjecture, Dilithion, Pop, Bitcell],
        rate: Rate::None,
        what: "height stops (no block lines, getblockcount and bitcell_chain_height frozen); PoP rounds time out with view changes; clearing catches up",
    },
    Info {
        scenario: Scenario::NodeDown,
        name: "node_down",
        families: &[Coinjecture, Dilithion, Pop, Bitcell],
        rate: Rate::None,
        what: "the node process is down while its host and sidecar run: the node's port refuses connections (`mode`: refuse, or 503: every path answers 503, or hang: requests never answer) and its logs stop",
    },
    Info {
        scenario: Scenario::HostDown,
        name: "host_down",
        families: &[Coinjecture, Dilithion, Pop, Bitcell],
        rate: Rate::None,
        what: "the host dies: the node's port refuses and its logs stop, its sidecar process is killed (SIGKILL) and the host's address answers nothing; clearing boots the node and starts a new sidecar process",
    },
    Info {
        scenario: Scenario::RegionDown,
        name: "region_down",
        families: &[Coinjecture, Dilithion, Pop, Bitcell],
        rate: Rate::None,
        what: "host_down for every node of a region (target `region` only)",
    },
    Info {
        scenario: Scenario::SidecarDown,
        name: "sidecar_down",
        families: &[Coinjecture, Dilithion, Pop, Bitcell],
        rate: Rate::None,
        what: "the sidecar process is killed (SIGKILL) while the node runs on; its port refuses; clearing starts a new sidecar process",
    },
    Info {
        scenario: Scenario::Partition,
        name: "partition",
        families: &[Coinjecture, Dilithion, Pop, Bitcell],
        rate: Rate::None,
        what: "the network between the monitoring and the host drops every packet: the host's address accepts and never answers, while the node and its sidecar keep running",
    },
    Info {
        scenario: Scenario::NoActiveMiners,
        name: "no_active_miners",
        families: &[Bitcell],
        rate: Rate::None,
        what: "bitcell_active_miners 0, and the height stops since no miner produces",
    },
    Info {
        scenario: Scenario::HighLatency,
        name: "high_latency",
        families: &[Dilithion],
        rate: Rate::None,
        what: "getpeerinfo pingtime of cross-region peers 0.25–0.45s (above the 200ms of seed 004)",
    },
    Info {
        scenario: Scenario::ValidatorsDown,
        name: "validators_down",
        families: &[Pop],
        rate: Rate::None,
        what: "half the validators inactive (below 2/3): network health CRITICAL, rounds time out with view changes",
    },
    Info {
        scenario: Scenario::OutOfSync,
        name: "out_of_sync",
        families: &[Bitcell],
        rate: Rate::None,
        what: "bitcell_sync_progress 82.5 (percent)",
    },
    Info {
        scenario: Scenario::HighPendingTxs,
        name: "high_pending_txs",
        families: &[Bitcell],
        rate: Rate::None,
        what: "bitcell_pending_txs 1500–2000",
    },
    Info {
        scenario: Scenario::BannedMiners,
        name: "banned_miners",
        families: &[Bitcell],
        rate: Rate::Fraction(0.4),
        what: "bitcell_banned_miners so that banned / (active + banned) ≈ rate",
    },
    Info {
        scenario: Scenario::SlowProofs,
        name: "slow_proofs",
        families: &[Bitcell],
        rate: Rate::None,
        what: "`proof generated in` 35–45s",
    },
];

impl Scenario {
    pub fn info(self) -> &'static Info {
        ALL.iter()
            .find(|i| i.scenario == self)
            .expect("every scenario is listed")
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn parse(s: &str) -> Option<Scenario> {
        ALL.iter().find(|i| i.name == s).map(|i| i.scenario)
    }

    pub fn applies_to(self, f: Family) -> bool {
        self.info().families.contains(&f)
    }

    /// Does it act on the sidecar process or the host's address (which exist only when the
    /// simulator runs the sidecars)?
    pub fn needs_sidecar(self) -> bool {
        matches!(self, Scenario::SidecarDown | Scenario::Partition)
    }
}

pub fn names() -> Vec<&'static str> {
    let mut v: Vec<_> = ALL.iter().map(|i| i.name).collect();
    v.push("all_clear");
    v
}

/// How a node that is down answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DownMode {
    /// The listener is closed: connections are refused.
    #[default]
    Refuse,
    /// Every path answers 503.
    Unavailable,
    /// Requests are accepted and never answered.
    Hang,
}

impl DownMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "refuse" => Some(Self::Refuse),
            "503" | "unavailable" => Some(Self::Unavailable),
            "hang" => Some(Self::Hang),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Refuse => "refuse",
            Self::Unavailable => "503",
            Self::Hang => "hang",
        }
    }
}

/// An active scenario on a node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Active {
    pub rate: f64,
    pub mode: DownMode,
}
