//! The live fleet: one HTTP listener serving every node's `/metrics` at `/nodes/<name>/metrics`,
//! and a Prometheus file_sd file with one target per node (`instance` = the node's name, as one
//! sidecar per host would be), so Prometheus scrapes N targets as it would N sidecars.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

use crate::fleet::Fleet;

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

fn reply(fleet: &Fleet, path: &str) -> Response<Full<Bytes>> {
    let node = path
        .strip_prefix("/nodes/")
        .and_then(|p| p.strip_suffix("/metrics"))
        .and_then(|n| fleet.node(n));
    let (status, ctype, body) = match node {
        Some(i) => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            fleet.render(i, now()),
        ),
        None => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "GET /nodes/<name>/metrics\n".to_string(),
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", ctype)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

/// The file_sd targets of the fleet served at `addr`.
pub fn targets(fleet: &Fleet, addr: &str) -> serde_json::Value {
    fleet
        .nodes
        .iter()
        .map(|n| {
            json!({
                "targets": [addr],
                "labels": {"__metrics_path__": format!("/nodes/{}/metrics", n.name), "instance": n.name},
            })
        })
        .collect()
}

/// Serve until SIGTERM/SIGINT. Prints one JSON line (`url`, `nodes`) once listening and the
/// targets are written.
pub async fn run(fleet: Fleet, listen: &str, sd_file: &Path) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?.to_string();
    let sd = serde_json::to_string_pretty(&targets(&fleet, &addr))?;
    let tmp = sd_file.with_extension("tmp");
    std::fs::write(&tmp, sd).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, sd_file).with_context(|| format!("writing {}", sd_file.display()))?;
    println!(
        "{}",
        json!({"url": format!("http://{addr}"), "nodes": fleet.nodes.len()})
    );
    let fleet = Arc::new(fleet);
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            acc = listener.accept() => {
                let Ok((stream, _)) = acc else { continue };
                let fleet = fleet.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let fleet = fleet.clone();
                        async move { Ok::<_, Infallible>(reply(&fleet, req.uri().path())) }
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::parse;

    #[test]
    fn serves_each_node_and_lists_it_as_a_target() {
        let t = parse(
            "bitcell",
            "chain_peers{chain=\"bitcell\",network=\"t\",region=\"r\",node=\"b\"} 3\n",
        )
        .unwrap();
        let f = Fleet::new(&[t], 2, 0.0, "cw");
        let r = reply(&f, "/nodes/bitcell-00001/metrics");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            reply(&f, "/nodes/nope/metrics").status(),
            StatusCode::NOT_FOUND
        );
        let sd = targets(&f, "127.0.0.1:9");
        assert_eq!(sd[1]["labels"]["instance"], "bitcell-00001");
        assert_eq!(
            sd[1]["labels"]["__metrics_path__"],
            "/nodes/bitcell-00001/metrics"
        );
    }
}
