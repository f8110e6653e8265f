//! Builds what every mode shares from profiles and labels: the registry and the engine.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::engine::Engine;
use crate::mapping::{self, Api};
use crate::profile;
use crate::registry::Metrics;

pub struct Pipeline {
    pub metrics: Metrics,
    pub engine: Engine,
    /// Stats API mappings by name.
    pub apis: BTreeMap<String, Arc<Api>>,
    pub profile_names: Vec<String>,
    /// The constant labels every series carries (the configured ones and the default `chain`).
    pub labels: BTreeMap<String, String>,
}

/// Load and compile `profiles` (names or paths); constant `labels` from config or flags. A missing
/// `chain` label is taken from the first profile that declares one.
pub fn build(
    profiles: &[String],
    labels: &BTreeMap<String, String>,
    series_cap: usize,
) -> Result<Pipeline> {
    let mut loaded = Vec::new();
    for p in profiles {
        loaded.push(
            profile::load(p)
                .map_err(anyhow::Error::new)
                .with_context(|| format!("loading profile `{p}`"))?,
        );
    }
    let mut labels = labels.clone();
    // An empty value sets no label (as in Prometheus), so it does not stop the default `chain`.
    labels.retain(|_, v| !v.is_empty());
    if !labels.contains_key("chain") {
        if let Some(chain) = loaded.iter().find_map(|l| l.spec.chain.clone()) {
            labels.insert("chain".into(), chain);
        }
    }
    let mut metrics = Metrics::new(&labels)?;
    metrics.set_series_cap(series_cap);
    let demands = mapping::api_label_demands(&loaded)?;
    let rules = profile::compile(&loaded, &demands, &mut metrics)?;
    let apis = mapping::bind(&loaded, &mut metrics)?
        .into_iter()
        .map(|(k, v)| (k, Arc::new(v)))
        .collect();
    let engine = Engine::new(rules);
    let info = metrics.gauge_vec(
        "chainwatch_build_info",
        &["version", "revision", "rustversion"],
    )?;
    info.with_label_values(&[
        env!("CARGO_PKG_VERSION"),
        option_env!("CHAINWATCH_REVISION").unwrap_or("unknown"),
        rustc_version(),
    ])
    .set(1.0);
    let pinfo = metrics.gauge_vec("chainwatch_profile_info", &["profile"])?;
    let profile_names: Vec<String> = loaded.iter().map(|l| l.spec.name.clone()).collect();
    for n in &profile_names {
        pinfo.with_label_values(&[n.as_str()]).set(1.0);
    }
    Ok(Pipeline {
        metrics,
        engine,
        apis,
        profile_names,
        labels,
    })
}

fn rustc_version() -> &'static str {
    option_env!("CHAINWATCH_RUSTC").unwrap_or("unknown")
}
