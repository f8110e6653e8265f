//! A ready-to-use chainwatch-exporter config per simulated node: the family's built-in profiles,
//! the constant labels, a file source on its logs, its API sources and a health source.

use std::path::Path;

use crate::fleet::{format_duration, Family, Identity, MetricsFrom, NodeSpec, Sidecar};

/// Companion profiles for `metrics_from: api` (written to DIR/profiles/): the API's counters
/// through the built-in mapping, the rest of the log through the rules that do not count the same
/// events again.
pub const PROFILES: &[(&str, &str)] = &[
    (
        "coinjecture-consensus-api.yaml",
        include_str!("../profiles/coinjecture-consensus-api.yaml"),
    ),
    (
        "pop-validator-api.yaml",
        include_str!("../profiles/pop-validator-api.yaml"),
    ),
];

/// Write the companion profiles into `dir`.
pub fn write_profiles(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in PROFILES {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}

/// What a config needs to know of a running node.
pub struct NodeView<'a> {
    pub spec: &'a NodeSpec,
    pub port: u16,
    pub logs: &'a [std::path::PathBuf],
    pub cookie: Option<&'a Path>,
    /// Where `write_profiles` put the companion profiles.
    pub profiles_dir: &'a Path,
}

/// YAML single-quoted scalar.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub fn render(n: &NodeView, sidecar: &Sidecar) -> String {
    let spec = n.spec;
    let base = format!("http://127.0.0.1:{}", n.port);
    let interval = format_duration(sidecar.poll_interval);
    // Half the interval: a node that hangs is a timeout well before the next poll.
    let timeout = format_duration(sidecar.poll_interval / 2);
    let own = |f: &str| q(&n.profiles_dir.join(f).to_string_lossy());
    let profiles: Vec<String> = match (spec.family, spec.metrics_from) {
        (Family::Coinjecture, MetricsFrom::Log) => {
            vec!["coinjecture-network".into(), "coinjecture-consensus".into()]
        }
        (Family::Coinjecture, MetricsFrom::Api) => vec![
            "coinjecture-network".into(),
            own("coinjecture-consensus-api.yaml"),
        ],
        (Family::Dilithion, _) => vec!["dilithion".into()],
        (Family::Pop, MetricsFrom::Log) => vec!["pop-validator".into()],
        (Family::Pop, MetricsFrom::Api) => vec![own("pop-validator-api.yaml")],
        (Family::Bitcell, _) => vec!["bitcell".into()],
    };
    let identity = match spec.identity {
        Identity::Sidecar => format!("  region: {}\n  node: {}\n", spec.region, spec.name),
        // Prometheus's target labels say which node and region this is.
        Identity::Target => String::new(),
    };
    let mut out = format!(
        "# chainwatch-exporter config for the simulated {fam} node {name} ({region}), written by chainwatch-sim.\n\
         # Run: chainwatch-exporter --config <this file> --web.listen-address 127.0.0.1:<port>\n\
         {target}\
         version: 1\n\
         profiles: [{profiles}]\n\
         labels:\n  chain: {chain}\n  network: {network}\n{identity}\
         sources:\n",
        fam = spec.family,
        name = spec.name,
        region = spec.region,
        target = if spec.identity == Identity::Target {
            format!(
                "# region and node are Prometheus's target labels: node=\"{}\", region=\"{}\".\n",
                spec.name, spec.region
            )
        } else {
            String::new()
        },
        chain = spec.family.chain(),
        network = spec.network,
        profiles = profiles.join(", "),
    );
    let logs = n.logs;
    if !logs.is_empty() {
        let paths: Vec<String> = logs.iter().map(|p| q(&p.to_string_lossy())).collect();
        out.push_str(&format!(
            "  - name: logs\n    type: file\n    paths: [{}]\n    poll_interval: {}\n",
            paths.join(", "),
            format_duration(sidecar.file_poll_interval)
        ));
    }
    let api = |name: &str, kind: &str, url: &str, mapping: Option<&str>| {
        let mut s = format!("  - name: {name}\n    type: {kind}\n    url: {}\n", q(url));
        if let Some(m) = mapping {
            s.push_str(&format!("    mapping: {m}\n"));
        }
        s.push_str(&format!(
            "    interval: {interval}\n    timeout: {timeout}\n"
        ));
        s
    };
    match (spec.family, spec.metrics_from) {
        (Family::Coinjecture, MetricsFrom::Api) => out.push_str(&api(
            "consensus-stats",
            "http_json",
            &base,
            Some("consensus_stats"),
        )),
        (Family::Dilithion, _) => {
            out.push_str(&api("rpc", "jsonrpc", &base, Some("dilithion_rpc")));
            if let Some(c) = n.cookie {
                out.push_str(&format!("    cookie_file: {}\n", q(&c.to_string_lossy())));
            }
        }
        (Family::Pop, MetricsFrom::Api) => {
            out.push_str(&api("status", "http_json", &base, Some("pop_status")))
        }
        (Family::Bitcell, _) => {
            out.push_str(&api("native", "prometheus", &base, Some("bitcell_native")))
        }
        _ => {}
    }
    out.push_str(&api("health", "health", &format!("{base}/health"), None));
    out
}
