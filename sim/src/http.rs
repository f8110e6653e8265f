//! The HTTP side: one listener per node (its stats API and `/health`), which really closes while
//! the node is down, and the control API.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;

use crate::fleet::{Family, NodeSpec};
use crate::host::Host;
use crate::node::{Node, Reply};
use crate::scenario::DownMode;

const MAX_BODY: usize = 1 << 20;

/// Whether a node's port answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serve {
    Up,
    Down(DownMode),
}

/// A node as the servers and the control API share it.
pub struct NodeHandle {
    pub name: String,
    pub family: Family,
    pub region: String,
    pub port: u16,
    pub node: Mutex<Node>,
    /// The host's sidecar and address, when the simulator runs the sidecars (`--sidecar`).
    pub host: Option<Arc<Host>>,
    serve: watch::Sender<Serve>,
}

impl NodeHandle {
    pub fn new(node: Node, host: Option<Arc<Host>>) -> Arc<Self> {
        Arc::new(NodeHandle {
            name: node.spec.name.clone(),
            family: node.spec.family,
            region: node.spec.region.clone(),
            port: node.port,
            serve: watch::Sender::new(Serve::Up),
            node: Mutex::new(node),
            host,
        })
    }

    pub fn spec(&self) -> NodeSpec {
        self.lock().spec.clone()
    }

    pub fn lock(&self) -> MutexGuard<'_, Node> {
        self.node.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Make the node's listener, its sidecar and the host's address follow the node's
    /// scenarios (after they changed). Call within the runtime.
    pub fn sync(&self) {
        let (want, sidecar_runs, reachable) = {
            let n = self.lock();
            let want = match n.down_mode() {
                None => Serve::Up,
                Some(m) => Serve::Down(m),
            };
            (want, n.sidecar_runs(), n.reachable())
        };
        self.serve.send_if_modified(|s| {
            let changed = *s != want;
            *s = want;
            changed
        });
        if let Some(h) = &self.host {
            h.sync(sidecar_runs, reachable);
        }
    }

    /// The node (and its host) as `GET /state` shows it.
    pub fn state(&self) -> serde_json::Value {
        let mut v = self.lock().state();
        if let Some(h) = &self.host {
            v["sidecar"] = h.state();
        }
        v
    }
}

/// Bind a loopback listener on `port` (0: any free port).
pub fn bind(port: u16) -> std::io::Result<TcpListener> {
    bind_socket(port)?.listen(1024)
}

fn bind_socket(port: u16) -> std::io::Result<TcpSocket> {
    let s = TcpSocket::new_v4()?;
    s.set_reuseaddr(true)?;
    s.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    Ok(s)
}

/// Keep the port while refusing: a bound socket that does not listen answers SYNs with RST
/// (connection refused), and nobody else can take the port meanwhile.
async fn hold(port: u16) -> TcpSocket {
    let mut wait = Duration::from_millis(10);
    loop {
        match bind_socket(port) {
            Ok(s) => return s,
            Err(e) => {
                eprintln!("chainwatch-sim: holding port {port}: {e}; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Serve a node's port until the runtime stops; closed while the node is down with `refuse`.
pub async fn serve_node(h: Arc<NodeHandle>, first: TcpListener) {
    let mut rx = h.serve.subscribe();
    let mut listener = Some(first);
    let mut held: Option<TcpSocket> = None;
    loop {
        let state = *rx.borrow_and_update();
        if state == Serve::Down(DownMode::Refuse) {
            if listener.take().is_some() {
                held = Some(hold(h.port).await);
            }
            if rx.changed().await.is_err() {
                return;
            }
            continue;
        }
        if listener.is_none() {
            let sock = match held.take() {
                Some(s) => s,
                None => hold(h.port).await,
            };
            match sock.listen(1024) {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    eprintln!("chainwatch-sim: {}: listening again: {e}", h.name);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let Some(l) = listener.as_ref() else { continue };
        tokio::select! {
            a = l.accept() => match a {
                Ok((stream, _)) => {
                    let h = h.clone();
                    tokio::spawn(async move {
                        let mut rx = h.serve.subscribe();
                        let svc = {
                            let h = h.clone();
                            service_fn(move |req| node_request(h.clone(), req))
                        };
                        let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
                        // Going down with `refuse` drops the open connections too.
                        tokio::select! {
                            _ = conn => {}
                            _ = until(&mut rx, |s| s == Serve::Down(DownMode::Refuse)) => {}
                        }
                    });
                }
                Err(e) => {
                    eprintln!("chainwatch-sim: {}: accept: {e}", h.name);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            r = rx.changed() => if r.is_err() { return },
        }
    }
}

/// Resolve once the watched state satisfies `f` (never, if the sender is gone).
async fn until(rx: &mut watch::Receiver<Serve>, f: impl Fn(Serve) -> bool) {
    loop {
        if f(*rx.borrow_and_update()) {
            return;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn read_body(req: Request<Incoming>) -> Result<(hyper::http::request::Parts, Bytes), Reply> {
    let (parts, body) = req.into_parts();
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => Ok((parts, b.to_bytes())),
        Err(e) => Err(Reply::json(
            400,
            &serde_json::json!({"error": format!("reading the request body: {e}")}),
        )),
    }
}

fn response(r: Reply, head: bool) -> Response<Full<Bytes>> {
    let mut b = Response::builder()
        .status(r.status)
        .header("content-type", r.content_type);
    for (k, v) in &r.headers {
        b = b.header(*k, v);
    }
    let body = if head {
        Bytes::new()
    } else {
        Bytes::from(r.body)
    };
    b.body(Full::new(body))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

async fn node_request(
    h: Arc<NodeHandle>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let head = req.method() == hyper::Method::HEAD;
    let (parts, body) = match read_body(req).await {
        Ok(x) => x,
        Err(r) => return Ok(response(r, head)),
    };
    let mut rx = h.serve.subscribe();
    // A node that hangs holds the request until it is back (or the client gives up).
    until(&mut rx, |s| s != Serve::Down(DownMode::Hang)).await;
    if let Serve::Down(_) = *rx.borrow() {
        return Ok(response(
            Reply::json(
                503,
                &serde_json::json!({"status": "unavailable", "node": h.name}),
            ),
            head,
        ));
    }
    let authorization = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    let r = h.lock().handle(&crate::node::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        authorization,
        body: &body,
    });
    Ok(response(r, head))
}

/// Serve the control API on `listener` until the runtime stops.
pub async fn serve_control(ctl: Arc<crate::control::Control>, listener: TcpListener) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("chainwatch-sim: control: accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let ctl = ctl.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let ctl = ctl.clone();
                async move {
                    let head = req.method() == hyper::Method::HEAD;
                    let r = match read_body(req).await {
                        Ok((parts, body)) => {
                            ctl.handle(parts.method.as_str(), parts.uri.path(), &body)
                        }
                        Err(r) => r,
                    };
                    Ok::<_, Infallible>(response(r, head))
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
