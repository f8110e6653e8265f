//! The HTTP side: `/metrics` (or `--web.telemetry-path`), `/health`, and a landing page at `/`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::health::Health;
use crate::registry::Metrics;

pub struct Web {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub telemetry_path: String,
}

const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serve until `shutdown` turns true.
pub async fn serve(listener: TcpListener, web: Arc<Web>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let (stream, _) = match accepted {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                warn!("accept failed", error = e);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let web = web.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(web.clone(), req));
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = conn.await {
                debug!("connection ended with an error", error = e);
            }
        });
    }
}

async fn handle(
    web: Arc<Web>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET and HEAD\n".into(),
        ));
    }
    let path = req.uri().path();
    Ok(if path == web.telemetry_path {
        let metrics = web.metrics.clone();
        let body = tokio::task::spawn_blocking(move || metrics.encode())
            .await
            .unwrap_or_default();
        respond(StatusCode::OK, TEXT_FORMAT, body)
    } else if path == "/health" {
        respond(StatusCode::OK, "application/json", web.health.to_json())
    } else if path == "/" {
        respond(
            StatusCode::OK,
            "text/html; charset=utf-8",
            landing(&web.telemetry_path),
        )
    } else {
        respond(StatusCode::NOT_FOUND, "text/plain", "not found\n".into())
    })
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn landing(telemetry_path: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><title>chainwatch exporter</title></head><body>\n\
         <h1>chainwatch exporter</h1>\n<p>Version {}</p>\n<ul>\n\
         <li><a href=\"{telemetry_path}\">Metrics</a></li>\n<li><a href=\"/health\">Health</a></li>\n</ul>\n</body></html>\n",
        env!("CARGO_PKG_VERSION")
    )
}
