//! The polled sources: HTTP JSON stats, Bitcoin-style JSON-RPC, a node's native Prometheus
//! metrics, and a health URL. Fetching (`source::fetch`) is kept apart from applying the mapping
//! (`mapping::json`), which only renders data it is handed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use hyper::Method;
use prometheus::Gauge;

use super::fetch::{self, FetchError, Target};
use super::metrics::SourceMetrics;
use super::poll;
use crate::config::{ApiSource, ApiSourceKind, Config, RpcAuth};
use crate::mapping::doc::{self, DocError, Need, Node};
use crate::mapping::{json, native, Api, BoundApi, RpcCall};
use crate::profile::spec::ApiKind;
use crate::registry::Metrics;

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

    /// The error kinds this source can count (see `FetchError::kind`).
    pub fn error_kinds(&self) -> &'static [&'static str] {
        match self {
            Poller::HttpJson { .. } | Poller::Prometheus { .. } => {
                &["timeout", "connect", "http_status", "too_large", "decode"]
            }
            Poller::JsonRpc { .. } => &[
                "timeout",
                "connect",
                "http_status",
                "too_large",
                "decode",
                "rpc",
            ],
            Poller::Health { .. } => &["timeout", "connect", "http_status"],
        }
    }

    /// One poll. Values that could be read are written; an error means the poll failed wholly or
    /// partly, and then no series was removed (see `mapping::json`, `mapping::native`).
    pub async fn poll(&self) -> Result<(), FetchError> {
        match self {
            Poller::HttpJson {
                target,
                api,
                timeout,
                max_body,
            } => {
                let BoundApi::HttpJson(m) = &api.bound else {
                    unreachable!("checked at start")
                };
                let body = get_ok(target, *timeout, *max_body).await?;
                let applied = json::apply(&m.nodes, &decode(&body, &m.need)?);
                problems(applied.settle(&m.nodes, true))
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
                // Each answer is applied as it comes and dropped; what an `each` wrote is settled
                // once all calls are in, so a failed call removes nothing anywhere.
                let mut applied = Vec::new();
                let mut failure = None;
                for c in calls {
                    match call(target, c, header.as_deref(), *timeout, *max_body).await {
                        Ok(a) => applied.push((c, a)),
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
                let complete =
                    failure.is_none() && applied.iter().all(|(_, a)| a.problems.is_empty());
                let mut all = Vec::new();
                for (c, a) in applied {
                    all.extend(a.settle(&c.mapping.nodes, complete));
                }
                match failure {
                    Some(e) => Err(e),
                    None => problems(all),
                }
            }
            Poller::Prometheus {
                target,
                api,
                timeout,
                max_body,
            } => {
                let BoundApi::Prometheus(series) = &api.bound else {
                    unreachable!("checked at start")
                };
                let body = get_ok(target, *timeout, *max_body).await?;
                let text =
                    std::str::from_utf8(&body).map_err(|e| FetchError::Decode(e.to_string()))?;
                problems(native::apply(series, text))
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

/// Parse a JSON body, keeping what `need` reads.
fn decode<'a>(body: &'a [u8], need: &'a Need) -> Result<Node<'a>, FetchError> {
    doc::parse(body, need).map_err(|e| match e {
        DocError::Syntax(m) => FetchError::Decode(m),
        DocError::TooMany(n) => FetchError::TooMany(format!("more than {n} values to keep")),
    })
}

/// One JSON-RPC call, its `result` applied to the call's mapping.
async fn call(
    target: &Target,
    c: &RpcCall,
    auth: Option<&str>,
    timeout: Duration,
    max_body: usize,
) -> Result<json::Applied, FetchError> {
    let req = serde_json::json!({"jsonrpc": "1.0", "id": "chainwatch", "method": c.method, "params": c.params});
    let mut headers = vec![("content-type", "application/json".to_string())];
    if let Some(h) = auth {
        headers.push(("authorization", h.to_string()));
    }
    let resp = fetch::request(
        target,
        Method::POST,
        Some(req.to_string().into_bytes()),
        &headers,
        timeout,
        max_body,
    )
    .await?;
    let doc = match decode(&resp.body, &c.envelope) {
        Ok(d) => d,
        Err(FetchError::Decode(_)) if !(200..300).contains(&resp.status) => {
            return Err(FetchError::Status(resp.status))
        }
        Err(e) => return Err(e),
    };
    if let Some(err) = doc.get("error").filter(|e| **e != Node::Null) {
        let mut text = err.to_string();
        if text.len() > 300 {
            let cut = (0..=300)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            text.truncate(cut);
            text.push('…');
        }
        return Err(FetchError::Rpc(format!("{}: {text}", c.method)));
    }
    if !(200..300).contains(&resp.status) {
        return Err(FetchError::Status(resp.status));
    }
    match doc.get("result") {
        Some(result) => Ok(json::apply(&c.mapping.nodes, result)),
        None => Err(FetchError::Decode(format!(
            "{}: no `result` in the response",
            c.method
        ))),
    }
}

/// Resolve a polled source's mapping and build its poller and self-metrics.
pub fn prepare(
    cfg: &Config,
    a: &ApiSource,
    apis: &BTreeMap<String, Arc<Api>>,
    metrics: &mut Metrics,
) -> Result<poll::Prepared> {
    let poller = poller(cfg, a, apis, metrics)?;
    Ok(poll::Prepared {
        metrics: SourceMetrics::polled(metrics, &a.name, poller.error_kinds())?,
        poller,
        interval: a.interval,
    })
}

fn poller(
    cfg: &Config,
    a: &ApiSource,
    apis: &BTreeMap<String, Arc<Api>>,
    metrics: &mut Metrics,
) -> Result<Poller> {
    let at = |f: &str| format!("sources[{}].{f}", a.index);
    let wanted = match a.kind {
        ApiSourceKind::HttpJson => ApiKind::HttpJson,
        ApiSourceKind::JsonRpc => ApiKind::Jsonrpc,
        ApiSourceKind::Prometheus => ApiKind::Prometheus,
        ApiSourceKind::Health => {
            let target =
                Target::parse(&a.url, None).map_err(|e| cfg.positions.error(at("url"), e))?;
            let up = metrics
                .gauge_vec("chain_node_up", &[])?
                .with_label_values(&[] as &[&str]);
            let duration = metrics
                .gauge_vec("chain_node_health_probe_duration_seconds", &[])?
                .with_label_values(&[] as &[&str]);
            return Ok(Poller::Health {
                target,
                up,
                duration,
                timeout: a.timeout,
            });
        }
    };
    let fitting: Vec<&Arc<Api>> = apis.values().filter(|x| x.bound.kind() == wanted).collect();
    let api = match &a.mapping {
        Some(n) => {
            let api = apis.get(n).ok_or_else(|| {
                let names: Vec<&str> = fitting.iter().map(|x| x.name.as_str()).collect();
                cfg.positions.error(
                    at("mapping"),
                    format!(
                        "no mapping `{n}` in the profiles (`{}` mappings: {})",
                        wanted.name(),
                        if names.is_empty() {
                            "none".into()
                        } else {
                            names.join(", ")
                        }
                    ),
                )
            })?;
            if api.bound.kind() != wanted {
                return Err(cfg
                    .positions
                    .error(
                        at("mapping"),
                        format!(
                            "mapping `{n}` is a {} mapping, not {}",
                            api.bound.kind().name(),
                            wanted.name()
                        ),
                    )
                    .into());
            }
            api.clone()
        }
        None => match fitting.as_slice() {
            [one] => (*one).clone(),
            [] => {
                return Err(cfg
                    .positions
                    .error(
                        at("type"),
                        format!("the profiles define no `{}` mapping", wanted.name()),
                    )
                    .into())
            }
            many => {
                let names: Vec<&str> = many.iter().map(|x| x.name.as_str()).collect();
                return Err(cfg
                    .positions
                    .error(
                        at("mapping"),
                        format!(
                            "several `{}` mappings fit; choose one with `mapping:` ({})",
                            wanted.name(),
                            names.join(", ")
                        ),
                    )
                    .into());
            }
        },
    };
    let target = Target::parse(&a.url, api.path.as_deref())
        .map_err(|e| cfg.positions.error(at("url"), e))?;
    let poller = match a.kind {
        ApiSourceKind::HttpJson => Poller::HttpJson {
            target,
            api,
            timeout: a.timeout,
            max_body: a.max_body_bytes,
        },
        ApiSourceKind::JsonRpc => Poller::JsonRpc {
            target,
            api,
            auth: a.auth.clone(),
            timeout: a.timeout,
            max_body: a.max_body_bytes,
        },
        ApiSourceKind::Prometheus => Poller::Prometheus {
            target,
            api,
            timeout: a.timeout,
            max_body: a.max_body_bytes,
        },
        ApiSourceKind::Health => unreachable!("returned above"),
    };
    Ok(poller)
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

/// The problems of a poll as its error; a few are enough to say what is wrong.
fn problems(p: Vec<String>) -> Result<(), FetchError> {
    const SHOWN: usize = 5;
    match p.len() {
        0 => Ok(()),
        n if n <= SHOWN => Err(FetchError::Decode(p.join("; "))),
        n => Err(FetchError::Decode(format!(
            "{}; and {} more",
            p[..SHOWN].join("; "),
            n - SHOWN
        ))),
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
