//! Profiles embedded in the binary, one per node family of criteria.md.

pub struct Builtin {
    pub name: &'static str,
    pub summary: &'static str,
    pub yaml: &'static str,
}

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "bitcell",
        summary: "BitCell (Rust, multi-region): no log rules; its native /metrics and /health are read by API sources",
        yaml: include_str!("../../profiles/bitcell.yaml"),
    },
    Builtin {
        name: "coinjecture-consensus",
        summary: "COINjecture consensus migration wrapper (unit coinjecture-node): divergences, fallbacks, verification latency, mode",
        yaml: include_str!("../../profiles/coinjecture-consensus.yaml"),
    },
    Builtin {
        name: "coinjecture-network",
        summary: "COINjecture network API (unit coinjecture-api): equilibrium λ/η, CID gossip, peers, JSON log lines",
        yaml: include_str!("../../profiles/coinjecture-network.yaml"),
    },
    Builtin {
        name: "dilithion",
        summary: "Dilithion (C++ Bitcoin-style) node.log: blocks found/received/broadcast, heights, send timeouts, socket errors",
        yaml: include_str!("../../profiles/dilithion.yaml"),
    },
    Builtin {
        name: "pop-validator",
        summary: "Proof-of-Proof validator: consensus rounds and phases, view changes, leaders, validators, mempool",
        yaml: include_str!("../../profiles/pop-validator.yaml"),
    },
];

pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}
