//! Builds what every mode shares from profiles and labels: the registry and the engine.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;

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
    /// Where a line's own time is, as the profiles say (`replay --timestamps`).
    pub times: crate::timestamps::LineTime,
}

/// Load and compile `profiles` (names or paths); constant `labels` from config or flags. A missing
/// `chain` label is taken from the profiles, which must agree on it (`profile::chain_label`).
pub fn build(
    profiles: &[String],
    labels: &BTreeMap<String, String>,
    series_cap: usize,
) -> Result<Pipeline> {
    // Every error of every profile is reported at once (`profile::LoadErrors`).
    let mut loaded = Vec::new();
    let mut errs = Vec::new();
    for p in profiles {
        match profile::load(p) {
            Ok(l) => loaded.push(l),
            Err(e) => errs.push(e),
        }
    }
    if !errs.is_empty() {
        return Err(profile::LoadErrors::new(errs).into());
    }
    let mut labels = labels.clone();
    // An empty value sets no label (as in Prometheus), so it does not stop the default `chain`.
    labels.retain(|_, v| !v.is_empty());
    let chain = profile::chain_label(&loaded, labels.get("chain").map(String::as_str));
    if let Ok(Some(c)) = &chain {
        labels.insert("chain".into(), c.clone());
    }
    let mut metrics = Metrics::new(&labels)?;
    metrics.set_series_cap(series_cap);
    // Log rules and API mappings name metrics of one catalog: the built-in one and the metrics
    // the profiles declare. Every error of the three is reported together.
    let (catalog, mut errs) = profile::declared(&loaded);
    let demands = mapping::api_label_demands(&loaded, &catalog).unwrap_or_else(|e| {
        errs.push(e);
        BTreeMap::new()
    });
    let compiled = profile::compile(&loaded, &catalog, &demands, &mut metrics);
    if let Err(c) = chain {
        errs.push(c);
    }
    let rules = match compiled {
        Ok(rules) if errs.is_empty() => rules,
        Ok(_) => return Err(profile::LoadErrors::new(errs).into()),
        Err(e) => {
            errs.extend(e.0);
            return Err(profile::LoadErrors::new(errs).into());
        }
    };
    let apis = mapping::bind(&loaded, &catalog, &mut metrics)?
        .into_iter()
        .map(|(k, v)| (k, Arc::new(v)))
        .collect();
    let times = crate::timestamps::LineTime::compile(&loaded)?;
    let engine = Engine::new(rules);
    use crate::version;
    let info = metrics.gauge_vec(
        "chainwatch_build_info",
        &["version", "revision", "branch", "rustversion"],
    )?;
    info.with_label_values(&[
        version::VERSION,
        version::REVISION,
        version::BRANCH,
        version::RUSTC_VERSION,
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
        times,
    })
}
