//! A small HTTP/1.1 client for polling node APIs: one request per connection, a deadline over the
//! whole exchange, and a cap on the body so a misbehaving node cannot exhaust the sidecar's memory.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;

/// Why a poll failed; the `kind` label of `chainwatch_source_errors_total`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("cannot connect: {0}")]
    Connect(String),
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
            FetchError::Status(_) => "http_status",
            FetchError::TooLarge(_) | FetchError::TooMany(_) => "too_large",
            FetchError::Decode(_) => "decode",
            FetchError::Rpc(_) => "rpc",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Target {
    pub uri: Uri,
    host: String,
    port: u16,
}

impl Target {
    /// `base` is `http://host:port[/path]`; `default_path` is used when `base` has no path.
    pub fn parse(base: &str, default_path: Option<&str>) -> Result<Self, String> {
        let uri: Uri = base
            .parse()
            .map_err(|e| format!("`{base}` is not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => return Err(format!("`{base}`: scheme {other} is not supported (http only; put TLS-only nodes behind a local proxy)")),
            None => return Err(format!("`{base}` needs http://")),
        }
        let host = uri
            .host()
            .ok_or_else(|| format!("`{base}` has no host"))?
            .trim_matches(['[', ']'])
            .to_string();
        let port = uri.port_u16().unwrap_or(80);
        let uri = match (uri.path(), default_path) {
            ("" | "/", Some(p)) if uri.query().is_none() => {
                let p = if p.starts_with('/') {
                    p.to_string()
                } else {
                    format!("/{p}")
                };
                format!(
                    "http://{}{}",
                    uri.authority().map(|a| a.as_str()).unwrap_or(""),
                    p
                )
                .parse()
                .map_err(|e| format!("`{base}` + `{p}`: {e}"))?
            }
            _ => uri,
        };
        Ok(Target { uri, host, port })
    }
}

pub struct Response {
    pub status: u16,
    pub body: Bytes,
}

/// One request; any status is returned (callers decide what is an error), except that the body
/// is read only up to `max_body` bytes.
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
    let stream = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| FetchError::Connect(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| FetchError::Connect(e.to_string()))?;
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    let authority = target
        .uri
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let path = target
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", authority)
        .header(
            "user-agent",
            concat!("chainwatch/", env!("CARGO_PKG_VERSION")),
        );
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| FetchError::Connect(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| FetchError::Connect(e.to_string()))?;
    let status = resp.status().as_u16();
    if let Some(len) = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > max_body {
            conn.abort();
            return Err(FetchError::TooLarge(max_body));
        }
    }
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| FetchError::Connect(format!("reading the body: {e}")))?;
        if let Some(data) = frame.data_ref() {
            if buf.len() + data.len() > max_body {
                conn.abort();
                return Err(FetchError::TooLarge(max_body));
            }
            buf.extend_from_slice(data);
        }
    }
    conn.abort();
    Ok(Response {
        status,
        body: Bytes::from(buf),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_applies_only_without_a_path() {
        let t = Target::parse("http://127.0.0.1:8080", Some("/v1/consensus/stats")).unwrap();
        assert_eq!(
            t.uri.to_string(),
            "http://127.0.0.1:8080/v1/consensus/stats"
        );
        let t = Target::parse("http://127.0.0.1:8080/other", Some("/v1/consensus/stats")).unwrap();
        assert_eq!(t.uri.path(), "/other");
        assert!(Target::parse("https://x", None)
            .unwrap_err()
            .contains("http only"));
        assert!(Target::parse("not a url", None).is_err());
    }
}
