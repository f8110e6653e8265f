//! N nodes of the captured families with their series, each with its value generator and its
//! exposition prefix (`name{labels}`) built once: what `/metrics` and the history both print.

use std::fmt::Write as _;
use std::io::Write;

use crate::layout::{self, Node};
use crate::template::Template;
use crate::values::{self, Gen};

pub struct NodeSeries {
    /// The series name as selected in PromQL (`x_bucket`, `y_total`).
    pub name: String,
    /// `# TYPE` line to print before this series (the first series of its metric).
    pub type_line: Option<String>,
    pub prefix: String,
    /// The prefix with the target labels Prometheus adds at scrape (`job`, `instance`): what the
    /// backfilled history must carry to be the same series as the scraped one.
    pub stored: String,
    pub gen: Gen,
}

pub struct Fleet {
    pub nodes: Vec<Node>,
    /// Per node, its series.
    pub series: Vec<Vec<NodeSeries>>,
    /// Unix seconds at which every counter started from its captured value.
    pub origin: f64,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Fleet {
    pub fn new(templates: &[Template], n: usize, origin: f64, job: &str) -> Fleet {
        let nodes = layout::nodes(templates, n);
        let series = nodes
            .iter()
            .map(|node| {
                let t = &templates[node.family];
                let mut last_family = String::new();
                t.series
                    .iter()
                    .map(|s| {
                        let metric = chainwatch_catalog::resolve_series(&s.name);
                        let family = metric.map(|m| m.name).unwrap_or(&s.name).to_string();
                        let type_line = (family != last_family).then(|| {
                            let ty = metric
                                .map(|m| m.kind.prometheus_type())
                                .unwrap_or("untyped");
                            format!("# TYPE {family} {ty}\n")
                        });
                        last_family = family;
                        let mut prefix = format!("{}{{", s.name);
                        let mut first = true;
                        let constant = node.constant_labels();
                        let own = s.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()));
                        for (k, v) in own.chain(constant.iter().copied()) {
                            if !first {
                                prefix.push(',');
                            }
                            first = false;
                            let _ = write!(prefix, "{k}=\"{}\"", escape(v));
                        }
                        let stored = format!(
                            "{prefix},job=\"{}\",instance=\"{}\"}}",
                            escape(job),
                            escape(&node.name)
                        );
                        prefix.push('}');
                        NodeSeries {
                            name: s.name.clone(),
                            type_line,
                            prefix,
                            stored,
                            gen: values::gen(node, t, s),
                        }
                    })
                    .collect()
            })
            .collect();
        Fleet {
            nodes,
            series,
            origin,
        }
    }

    pub fn node(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// The node's `/metrics` (Prometheus text format 0.0.4) at Unix time `t`.
    pub fn render(&self, node: usize, t: f64) -> String {
        let mut out = String::with_capacity(self.series[node].len() * 160);
        for s in &self.series[node] {
            if let Some(l) = &s.type_line {
                out.push_str(l);
            }
            let _ = writeln!(out, "{} {}", s.prefix, s.gen.at(t, self.origin));
        }
        out
    }

    /// OpenMetrics samples of `[from, to)` on the `step` grid, for the series `history` gives a
    /// lookback for (seconds before `end`); series by series, so each is in time order.
    pub fn write_history(
        &self,
        history: &dyn Fn(&str) -> Option<u64>,
        end: u64,
        from: u64,
        to: u64,
        step: u64,
        out: &mut dyn Write,
    ) -> std::io::Result<u64> {
        let mut samples = 0;
        let to = to.min(end);
        for node in &self.series {
            for s in node {
                let Some(h) = history(&s.name) else { continue };
                let start = from.max(end.saturating_sub(h));
                let mut t = start.div_ceil(step) * step;
                while t < to {
                    writeln!(out, "{} {} {t}", s.stored, s.gen.at(t as f64, self.origin))?;
                    t += step;
                    samples += 1;
                }
            }
        }
        writeln!(out, "# EOF")?;
        Ok(samples)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::parse;

    const TEXT: &str = r#"chain_block_height{chain="dilithion",network="testnet",region="eu",node="d1"} 1200
chain_peer_ping_seconds{peer="10.0.0.1:8444",chain="dilithion",network="testnet",region="eu",node="d1"} 0.05
chain_send_timeouts_total{chain="dilithion",network="testnet",region="eu",node="d1"} 0
"#;

    #[test]
    fn renders_constant_labels_and_types() {
        let t = parse("dilithion", TEXT).unwrap();
        let f = Fleet::new(&[t], 3, 0.0, "cw");
        let text = f.render(2, 600.0);
        assert!(
            text.starts_with("# TYPE chain_block_height gauge\n"),
            "{text}"
        );
        assert!(text.contains(
            "chain_peer_ping_seconds{peer=\"10.0.0.1:8444\",chain=\"dilithion\",network=\"testnet\",region=\"ap-south\",node=\"dilithion-00002\"} "
        ), "{text}");
        assert!(text.contains("# TYPE chain_send_timeouts_total counter\n"));
    }

    #[test]
    fn history_is_on_the_grid_within_each_series_lookback() {
        let t = parse("dilithion", TEXT).unwrap();
        let f = Fleet::new(&[t], 2, 0.0, "cw");
        let mut out = Vec::new();
        let h = |n: &str| (n == "chain_block_height").then_some(120);
        let n = f.write_history(&h, 1000, 0, 2000, 15, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        // 880..1000 on a 15s grid: 885, 900, …, 990 → 8 samples per node.
        assert_eq!(n, 16);
        let first = text.lines().next().unwrap();
        assert!(first.ends_with(" 885"), "{text}");
        assert!(
            first.contains(",job=\"cw\",instance=\"dilithion-00000\"} "),
            "the scraped series' target labels: {first}"
        );
        assert!(text.ends_with("# EOF\n"));
        assert!(!text.contains("ping"));
    }
}
