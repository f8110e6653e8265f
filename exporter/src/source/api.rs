//! The polled sources: HTTP JSON stats, Bitcoin-style JSON-RPC, a node's native Prometheus
//! metrics, and a health URL. Fetching (`source::fetch`) is kept apart from applying the mapping
//! (`mapping::json`), which only renders data it is handed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::Method;
use prometheus::Gauge;

use super::fetch::{self, FetchError, Target};
use crate::config::RpcAuth;
use crate::mapping::{json, promtext, Api, BoundApi};

pub enum Poller {
    HttpJson {
        target: Target,
        api: Arc<Api>,
        timeout: Duration,
        max_body: usize,
    },
    JsonRpc {
        target: Target,
        api: Arc<Api>,
        auth: RpcAuth,
        timeout: Duration,
        max_body: usize,
    },
    Prometheus {
        target: Target,
        api: Arc<Api>,
        timeout: Duration,
        max_body: usize,
    },
    Health {
        target: Target,
        up: Gauge,
        duration: Gauge,
        timeout: Duration,
    },
}

impl Poller {
    pub fn kind_name(&self) -> &'static str {
        match self {
            Poller::HttpJson { .. } => "http_json",
            Poller::JsonRpc { .. } => "jsonrpc",
            Poller::Prometheus { .. } => "prometheus",
            Poller::Health { .. } => "health",
        }
    }

    pub async fn poll(&self) -> Result<(), FetchError> {
        match self {
            Poller::HttpJson {
                target,
                api,
                timeout,
                max_body,
            } => {
                let body = get_ok(target, *timeout, *max_body).await?;
                let doc: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| FetchError::Decode(e.to_string()))?;
                let BoundApi::HttpJson(nodes) = &api.bound else {
                    unreachable!("checked at start")
                };
                problems(json::apply(nodes, &doc))
            }
            Poller::JsonRpc {
                target,
                api,
                auth,
                timeout,
                max_body,
            } => {
                let BoundApi::JsonRpc(calls) = &api.bound else {
                    unreachable!("checked at start")
                };
                let header = auth_header(auth)?;
                let mut all = Vec::new();
                for c in calls {
                    let req = serde_json::json!({"jsonrpc": "1.0", "id": "chainwatch", "method": c.method, "params": c.params});
                    let mut headers = vec![("content-type", "application/json".to_string())];
                    if let Some(h) = &header {
                        headers.push(("authorization", h.clone()));
                    }
                    let resp = fetch::request(
                        target,
                        Method::POST,
                        Some(req.to_string().into_bytes()),
                        &headers,
                        *timeout,
                        *max_body,
                    )
                    .await?;
                    let doc: serde_json::Value = match serde_json::from_slice(&resp.body) {
                        Ok(d) => d,
                        Err(_) if !(200..300).contains(&resp.status) => {
                            return Err(FetchError::Status(resp.status))
                        }
                        Err(e) => return Err(FetchError::Decode(e.to_string())),
                    };
                    if let Some(err) = doc.get("error").filter(|e| !e.is_null()) {
                        return Err(FetchError::Rpc(format!("{}: {err}", c.method)));
                    }
                    if !(200..300).contains(&resp.status) {
                        return Err(FetchError::Status(resp.status));
                    }
                    let result = doc.get("result").ok_or_else(|| {
                        FetchError::Decode(format!("{}: no `result` in the response", c.method))
                    })?;
                    all.extend(json::apply(&c.metrics, result));
                }
                problems(all)
            }
            Poller::Prometheus {
                target,
                api,
                timeout,
                max_body,
            } => {
                let body = get_ok(target, *timeout, *max_body).await?;
                let text =
                    std::str::from_utf8(&body).map_err(|e| FetchError::Decode(e.to_string()))?;
                let (samples, bad) = promtext::parse(text);
                let BoundApi::Prometheus(series) = &api.bound else {
                    unreachable!("checked at start")
                };
                reexport(series, &samples);
                if bad > 0 && samples.is_empty() {
                    return Err(FetchError::Decode(format!(
                        "{bad} lines are not in the Prometheus text format"
                    )));
                }
                Ok(())
            }
            Poller::Health {
                target,
                up,
                duration,
                timeout,
            } => {
                let start = Instant::now();
                let r = fetch::request(target, Method::GET, None, &[], *timeout, 64 * 1024).await;
                duration.set(start.elapsed().as_secs_f64());
                let r = match r {
                    Ok(resp) if (200..300).contains(&resp.status) => Ok(()),
                    Ok(resp) => Err(FetchError::Status(resp.status)),
                    Err(FetchError::TooLarge(_)) => Ok(()),
                    Err(e) => Err(e),
                };
                up.set(if r.is_ok() { 1.0 } else { 0.0 });
                r
            }
        }
    }
}

async fn get_ok(
    target: &Target,
    timeout: Duration,
    max_body: usize,
) -> Result<bytes::Bytes, FetchError> {
    let resp = fetch::request(
        target,
        Method::GET,
        None,
        &[("accept", "application/json, text/plain".into())],
        timeout,
        max_body,
    )
    .await?;
    if !(200..300).contains(&resp.status) {
        return Err(FetchError::Status(resp.status));
    }
    Ok(resp.body)
}

fn problems(p: Vec<String>) -> Result<(), FetchError> {
    if p.is_empty() {
        Ok(())
    } else {
        Err(FetchError::Decode(p.join("; ")))
    }
}

/// The Authorization header for a JSON-RPC call. The cookie is re-read every poll: nodes write a
/// new one when they restart.
fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn auth_header(auth: &RpcAuth) -> Result<Option<String>, FetchError> {
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .map_err(|e| FetchError::Connect(format!("reading credentials {}: {e}", p.display())))
    };
    Ok(match auth {
        RpcAuth::None => None,
        RpcAuth::Cookie(p) => Some(format!("Basic {}", b64(read(p)?.trim().as_bytes()))),
        RpcAuth::Password { user, file } => {
            let pw = read(file)?;
            Some(format!(
                "Basic {}",
                b64(format!("{user}:{}", pw.trim_end_matches(['\r', '\n'])).as_bytes())
            ))
        }
    })
}

/// Re-export native samples: sum over dropped labels, follow totals for counters, remove label
/// sets that vanished.
fn refs(k: &[String]) -> Vec<&str> {
    k.iter().map(String::as_str).collect()
}

fn reexport(series: &[crate::mapping::BoundSeries], samples: &[promtext::Sample]) {
    use crate::mapping::SeriesTarget;
    use std::collections::BTreeMap;
    for s in series {
        let mut sums: BTreeMap<Vec<String>, f64> = BTreeMap::new();
        for sample in samples
            .iter()
            .filter(|x| x.name == s.from && x.value.is_finite())
        {
            let key: Vec<String> = s
                .labels
                .iter()
                .map(|l| {
                    l.as_ref()
                        .and_then(|n| sample.labels.get(n))
                        .cloned()
                        .unwrap_or_default()
                })
                .collect();
            *sums.entry(key).or_default() += sample.value * s.scale;
        }
        sums.retain(|k, _| s.guard.admit(k));
        for (k, v) in &sums {
            match &s.target {
                SeriesTarget::Gauge(g) => g.with_label_values(&refs(k)).set(*v),
                SeriesTarget::Counter { family, totals } => {
                    if *v >= 0.0 {
                        family
                            .with_label_values(&refs(k))
                            .inc_by(totals.delta(k, *v));
                    }
                }
            }
        }
        let mut seen = s.seen.lock().unwrap_or_else(|p| p.into_inner());
        for gone in seen.iter().filter(|k| !sums.contains_key(*k)) {
            s.guard.forget(gone);
            match &s.target {
                SeriesTarget::Gauge(g) => {
                    let _ = g.remove_label_values(&refs(gone));
                }
                SeriesTarget::Counter { family, totals } => {
                    let _ = family.remove_label_values(&refs(gone));
                    totals.forget(gone);
                }
            }
        }
        *seen = sums.into_keys().collect();
    }
}
