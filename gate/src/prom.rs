//! Prometheus's HTTP API, as much as a gate needs: instant queries at a given time.
//!
//! Prometheus is reached through the polled sources' own HTTP client
//! (`chainwatch_exporter::source::client`): the same `http_client_config` options (TLS, CA,
//! client certificate, bearer or basic credentials read from files at each request, headers,
//! proxy), one implementation.

use std::collections::BTreeMap;
use std::time::Duration;

use chainwatch_exporter::source::client::{Client, ClientConfigured};
use serde::Deserialize;

/// One series of an instant vector: its labels (without `__name__`) and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum QueryError {
    /// No answer at all: connection refused, DNS, timeout, TLS.
    #[error("Prometheus at {url} unreachable: {message}")]
    Unreachable { url: String, message: String },
    /// Prometheus answered with an error (bad query, timeout, too many samples).
    #[error("Prometheus refused the query ({kind}): {message}")]
    Api { kind: String, message: String },
    /// An answer that is not the API's (a proxy's error page, a truncated body).
    #[error("not an answer of Prometheus's API (HTTP {status}): {message}")]
    Decode { status: u16, message: String },
}

pub struct Prometheus {
    base: reqwest::Url,
    client: Client,
    timeout: Duration,
    rt: tokio::runtime::Runtime,
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct VectorSample {
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

impl Prometheus {
    /// `url` is the server's base URL (a path prefix such as `/prometheus` is kept).
    /// `http` is the validated `--prometheus.config` (the default: no TLS options, no
    /// credentials).
    pub fn new(url: &str, timeout: Duration, http: ClientConfigured) -> Result<Prometheus, String> {
        let mut base =
            reqwest::Url::parse(url).map_err(|e| format!("--prometheus `{url}`: {e}"))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(format!(
                "--prometheus `{url}`: not an http:// or https:// URL"
            ));
        }
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("starting the runtime: {e}"))?;
        let client = Client::new(http)
            .map_err(|e| format!("--prometheus.config: {}: {}", e.field, e.message))?;
        Ok(Prometheus {
            base,
            client,
            timeout,
            rt,
        })
    }

    pub fn url(&self) -> &str {
        self.base.as_str()
    }

    /// The instant vector of `expr` at `time` (Unix seconds). A scalar answer is one sample
    /// without labels.
    pub fn instant(&self, expr: &str, time: f64) -> Result<Vec<Sample>, QueryError> {
        let url = self
            .base
            .join("api/v1/query")
            .map_err(|e| QueryError::Unreachable {
                url: self.base.to_string(),
                message: e.to_string(),
            })?;
        let form = [("query", expr.to_string()), ("time", format!("{time:.3}"))];
        let unreachable = |message: String| QueryError::Unreachable {
            url: self.base.to_string(),
            message,
        };
        let mut req = self
            .client
            .get()
            .map_err(unreachable)?
            .post(url.clone())
            .timeout(self.timeout)
            .form(&form);
        for (k, v) in &self.client.config.headers {
            req = req.header(k, v);
        }
        // The secret is read now: a rotated token is used by the next query.
        if let Some(a) = self.client.config.authorization().map_err(unreachable)? {
            req = req.header(reqwest::header::AUTHORIZATION, a);
        }
        let (status, body) = self.rt.block_on(async {
            let r = req.send().await.map_err(|e| QueryError::Unreachable {
                url: self.base.to_string(),
                message: error_chain(&e),
            })?;
            let status = r.status().as_u16();
            let body = r.bytes().await.map_err(|e| QueryError::Unreachable {
                url: self.base.to_string(),
                message: error_chain(&e),
            })?;
            Ok::<_, QueryError>((status, body))
        })?;
        decode(status, &body)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

/// An API answer: the samples, or what went wrong.
pub fn decode(status: u16, body: &[u8]) -> Result<Vec<Sample>, QueryError> {
    let bad = |message: String| QueryError::Decode { status, message };
    let a: Answer = serde_json::from_slice(body).map_err(|e| {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        bad(format!("{e}: {text}"))
    })?;
    if a.status != "success" {
        return Err(QueryError::Api {
            kind: a.error_type.unwrap_or_else(|| format!("HTTP {status}")),
            message: a.error.unwrap_or_default(),
        });
    }
    let data = a
        .data
        .ok_or_else(|| bad("no data in a successful answer".into()))?;
    let value = |s: &str| -> Result<f64, QueryError> {
        match s {
            "+Inf" | "Inf" => Ok(f64::INFINITY),
            "-Inf" => Ok(f64::NEG_INFINITY),
            "NaN" => Ok(f64::NAN),
            _ => s.parse().map_err(|_| bad(format!("`{s}` is not a value"))),
        }
    };
    match data.result_type.as_str() {
        "vector" => {
            let v: Vec<VectorSample> =
                serde_json::from_value(data.result).map_err(|e| bad(e.to_string()))?;
            v.into_iter()
                .map(|s| {
                    let mut labels = s.metric;
                    labels.remove("__name__");
                    Ok(Sample {
                        labels,
                        value: value(&s.value.1)?,
                    })
                })
                .collect()
        }
        "scalar" => {
            let (_, v): (f64, String) =
                serde_json::from_value(data.result).map_err(|e| bad(e.to_string()))?;
            Ok(vec![Sample {
                labels: BTreeMap::new(),
                value: value(&v)?,
            }])
        }
        other => Err(bad(format!(
            "a {other} where an instant vector was expected"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_decode_to_samples_or_errors() {
        let ok = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"x","chain":"c"},"value":[1700000000.5,"0.25"]},
            {"metric":{},"value":[1700000000.5,"NaN"]}]}}"#;
        let s = decode(200, ok).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].labels.get("chain").map(String::as_str), Some("c"));
        assert!(!s[0].labels.contains_key("__name__"));
        assert_eq!(s[0].value, 0.25);
        assert!(s[1].value.is_nan());
        let err = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert_eq!(
            decode(400, err),
            Err(QueryError::Api {
                kind: "bad_data".into(),
                message: "parse error".into()
            })
        );
        assert!(matches!(
            decode(502, b"<html>Bad Gateway</html>"),
            Err(QueryError::Decode { status: 502, .. })
        ));
        let scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}}"#;
        assert_eq!(decode(200, scalar).unwrap()[0].value, f64::INFINITY);
    }
}
