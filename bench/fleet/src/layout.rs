//! Which nodes the fleet has: node `i` is of family `i mod F`, in region `(i / F) mod 4` and
//! network `(i / 4F) mod 2`, so every family has the same share of every region and network
//! whatever N is (a multiple of 8F is exact).

use crate::template::Template;

pub const REGIONS: &[&str] = &["eu-central", "us-east", "ap-south", "sa-east"];
pub const NETWORKS: &[&str] = &["testnet", "mainnet"];

#[derive(Debug, Clone)]
pub struct Node {
    pub index: usize,
    /// Index of the node's family in the template list.
    pub family: usize,
    pub chain: String,
    pub network: &'static str,
    pub region: &'static str,
    pub name: String,
}

impl Node {
    /// The constant labels every series of the node carries, in exposition order.
    pub fn constant_labels(&self) -> [(&'static str, &str); 4] {
        [
            ("chain", self.chain.as_str()),
            ("network", self.network),
            ("region", self.region),
            ("node", self.name.as_str()),
        ]
    }

    pub fn is_testnet(&self) -> bool {
        self.network == "testnet"
    }
}

pub fn nodes(templates: &[Template], n: usize) -> Vec<Node> {
    let f = templates.len().max(1);
    (0..n)
        .map(|i| {
            let t = &templates[i % f];
            let region = REGIONS[(i / f) % REGIONS.len()];
            let network = NETWORKS[(i / (f * REGIONS.len())) % NETWORKS.len()];
            Node {
                index: i,
                family: i % f,
                chain: t.chain.clone(),
                network,
                region,
                name: format!("{}-{i:05}", t.family),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn t(f: &str) -> Template {
        Template {
            family: f.into(),
            chain: f.into(),
            series: vec![],
            means: BTreeMap::new(),
        }
    }

    #[test]
    fn every_family_is_spread_evenly() {
        let ts = vec![t("a"), t("b"), t("c"), t("d")];
        let ns = nodes(&ts, 64);
        let mut count: BTreeMap<(String, &str, &str), usize> = BTreeMap::new();
        for n in &ns {
            *count
                .entry((n.chain.clone(), n.region, n.network))
                .or_default() += 1;
        }
        assert_eq!(count.len(), 4 * 4 * 2);
        assert!(count.values().all(|&c| c == 2));
        assert_eq!(ns[5].name, "b-00005");
    }
}
