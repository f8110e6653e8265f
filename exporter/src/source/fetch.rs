//! One request of a polled source, on reqwest (hyper underneath, rustls for `https://`): the
//! source's client options (`source::client`), a deadline over the whole exchange, and a cap on
//! the body — a misbehaving node cannot exhaust the sidecar's memory: the body is read up to
//! `max_body` bytes and the connection dropped past that.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderName, HeaderValue, AUTHORIZATION};
use reqwest::{Method, Url};

use super::client::{Client, ClientConfigured, FieldError};

/// Why a poll failed; the `kind` label of `chainwatch_source_errors_total`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The TLS handshake failed: certificate not trusted or not for this name, client
    /// certificate refused, no common protocol.
    #[error("TLS: {0}")]
    Tls(String),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("response body larger than {0} bytes")]
    TooLarge(usize),
    /// The body fits, but holds more than the source keeps (values, label sets).
    #[error("the answer holds {0}")]
    TooMany(String),
    #[error("cannot decode the response: {0}")]
    Decode(String),
    #[error("JSON-RPC error: {0}")]
    Rpc(String),
}

impl FetchError {
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::Timeout(_) => "timeout",
            FetchError::Connect(_) => "connect",
            FetchError::Tls(_) => "tls",
            FetchError::Status(_) => "http_status",
            FetchError::TooLarge(_) | FetchError::TooMany(_) => "too_large",
            FetchError::Decode(_) => "decode",
            FetchError::Rpc(_) => "rpc",
        }
    }
}

/// A source's URL and the client that reaches it.
#[derive(Clone)]
pub struct Target {
    pub url: Url,
    client: Arc<Client>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url.as_str())
            .finish()
    }
}

impl Target {
    /// `base` is `http[s]://host[:port][/path]`; `default_path` is used when `base` has no path.
    /// The client has no options until `with_client`.
    pub fn parse(base: &str, default_path: Option<&str>) -> Result<Self, String> {
        let mut url = Url::parse(base).map_err(|e| format!("`{base}` is not a URL: {e}"))?;
        match url.scheme() {
            "http" | "https" => {}
            other => {
                return Err(format!(
                    "`{base}`: scheme {other} is not supported (http or https)"
                ))
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("`{base}` has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "`{base}`: credentials in the URL are refused (they would be logged); use basic_auth with password_file"
            ));
        }
        if let (Some(p), "/", None) = (default_path, url.path(), url.query()) {
            // `http://host:8080` parses with the path `/`: the mapping's path applies.
            let p = if p.starts_with('/') {
                p.to_string()
            } else {
                format!("/{p}")
            };
            let (path, query) = match p.split_once('?') {
                Some((path, q)) => (path.to_string(), Some(q.to_string())),
                None => (p, None),
            };
            url.set_path(&path);
            url.set_query(query.as_deref());
        }
        // No options: the shared default client, nothing built here.
        let client = Client::new(ClientConfigured::default()).map_err(|e| e.message)?;
        Ok(Target {
            url,
            client: Arc::new(client),
        })
    }

    /// Use the source's client options (TLS, authorization, headers, proxy). Errors name the
    /// field: a CA, certificate or key that cannot be loaded is refused at start.
    pub fn with_client(mut self, config: ClientConfigured) -> Result<Self, FieldError> {
        self.client = Arc::new(Client::new(config)?);
        Ok(self)
    }
}

pub struct Response {
    pub status: u16,
    pub body: Bytes,
}

/// One request; any status is returned (callers decide what is an error), except that the body
/// is read only up to `max_body` bytes. `headers` are the poller's own (content type, accept,
/// a JSON-RPC cookie); the source's configured headers take precedence over them.
pub async fn request(
    target: &Target,
    method: Method,
    body: Option<Vec<u8>>,
    headers: &[(&'static str, String)],
    timeout: Duration,
    max_body: usize,
) -> Result<Response, FetchError> {
    match tokio::time::timeout(timeout, exchange(target, method, body, headers, max_body)).await {
        Ok(r) => r,
        Err(_) => Err(FetchError::Timeout(timeout)),
    }
}

async fn exchange(
    target: &Target,
    method: Method,
    body: Option<Vec<u8>>,
    headers: &[(&'static str, String)],
    max_body: usize,
) -> Result<Response, FetchError> {
    let config = &target.client.config;
    let client = target.client.get().map_err(FetchError::Connect)?;
    let mut req = client.request(method, target.url.clone());
    let mut map = reqwest::header::HeaderMap::new();
    for (k, v) in headers {
        let v = HeaderValue::from_str(v).map_err(|e| FetchError::Connect(e.to_string()))?;
        map.insert(HeaderName::from_static(k), v);
    }
    if let Some(auth) = config.authorization().map_err(FetchError::Connect)? {
        map.insert(AUTHORIZATION, auth);
    }
    for (k, v) in &config.headers {
        map.insert(k.clone(), v.clone());
    }
    req = req.headers(map);
    if let Some(b) = body {
        req = req.body(b);
    }
    let mut resp = req.send().await.map_err(classify)?;
    let status = resp.status().as_u16();
    if resp.content_length().is_some_and(|n| n > max_body as u64) {
        return Err(FetchError::TooLarge(max_body));
    }
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| FetchError::Connect(format!("reading the body: {}", chain(&e))))?
    {
        if buf.len() + chunk.len() > max_body {
            // Dropping the response closes the connection: the rest is never read.
            return Err(FetchError::TooLarge(max_body));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Response {
        status,
        body: Bytes::from(buf),
    })
}

/// A transport error as a kind: TLS when rustls is anywhere in the chain. It hides inside
/// `io::Error`s (nested), whose `source()` skips the error they wrap, so those are opened.
fn classify(e: reqwest::Error) -> FetchError {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(x) = cur {
        if let Some(t) = x.downcast_ref::<rustls::Error>() {
            return FetchError::Tls(t.to_string());
        }
        cur = match x.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|i| i as &(dyn std::error::Error + 'static)),
            None => x.source(),
        };
    }
    FetchError::Connect(chain(&e))
}

/// An error and its causes on one line: reqwest's own message is only "error sending request".
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(x) = cur {
        let m = x.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = x.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_applies_only_without_a_path() {
        let t = Target::parse("http://127.0.0.1:8080", Some("/v1/consensus/stats")).unwrap();
        assert_eq!(t.url.as_str(), "http://127.0.0.1:8080/v1/consensus/stats");
        let t = Target::parse("https://node:8080/other", Some("/v1/consensus/stats")).unwrap();
        assert_eq!(t.url.path(), "/other");
        let t = Target::parse("http://[::1]:9", Some("metrics?x=1")).unwrap();
        assert_eq!(t.url.as_str(), "http://[::1]:9/metrics?x=1");
        assert!(Target::parse("ftp://x", None)
            .unwrap_err()
            .contains("http or https"));
        assert!(Target::parse("http://u:p@x", None)
            .unwrap_err()
            .contains("basic_auth"));
        assert!(Target::parse("not a url", None).is_err());
    }
}
