//! The HTTP side: `/metrics` (or `--web.telemetry-path`), `/health`, and a landing page at `/`.
//! With `--web.config.file`: TLS, basic auth on every path, and extra response headers.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    HeaderName, HeaderValue, ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING,
    CONTENT_TYPE, VARY, WWW_AUTHENTICATE,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use super::auth::BasicAuth;
use super::tls::Reloader;
use crate::exposition::{self, Encoder, Format};
use crate::health::Health;
use crate::registry::Metrics;

pub struct Web {
    /// The sidecar's own metrics that outlive a configuration (reload outcome).
    meta: Arc<Metrics>,
    /// The registry and health of the configuration at work; swapped whole by a reload.
    current: RwLock<Arc<Shared>>,
    pub telemetry_path: String,
    pub security: Security,
    /// Bounds concurrent scrapes (`--web.max-requests`); None: no limit.
    scrapes: Option<Arc<Semaphore>>,
    /// The last encode of each format (classic text, OpenMetrics).
    last_scrape: tokio::sync::Mutex<[Option<Encoded>; 2]>,
    /// Size of the last exposition, to allocate the next one whole.
    last_len: AtomicUsize,
}

/// One encode: when it began, its body, and the body gzipped once a scraper asked for that.
struct Encoded {
    started: Instant,
    body: Bytes,
    gzip: Option<Bytes>,
}

pub struct Shared {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

impl Web {
    pub fn new(
        meta: Arc<Metrics>,
        current: Arc<Shared>,
        telemetry_path: String,
        security: Security,
        max_requests: usize,
    ) -> Self {
        Web {
            meta,
            current: RwLock::new(current),
            telemetry_path,
            security,
            scrapes: (max_requests > 0).then(|| Arc::new(Semaphore::new(max_requests))),
            last_scrape: tokio::sync::Mutex::new([None, None]),
            last_len: AtomicUsize::new(64 * 1024),
        }
    }

    /// The exposition for a scrape, gzipped when `gzip`. Encodes run one at a time, and a
    /// scrape that waited for one takes the result of an encode of its format that began after
    /// it arrived — as fresh as encoding its own, while many concurrent scrapes of a large
    /// registry cost the memory of one encode (and one compression), not many.
    async fn scrape(&self, format: Format, gzip: bool) -> Bytes {
        let arrived = Instant::now();
        let mut last = self.last_scrape.lock().await;
        let slot = &mut last[format as usize];
        let fresh = slot.as_ref().is_some_and(|e| e.started >= arrived);
        if !fresh {
            let started = Instant::now();
            let (meta, current) = (self.meta.clone(), self.current());
            let capacity = self.last_len.load(Ordering::Relaxed) + 4096;
            // One trip to the blocking pool: encode, and compress when this scraper wants it.
            let (body, gz) = tokio::task::spawn_blocking(move || {
                let mut e = Encoder::new(format, capacity).in_collection_order();
                meta.encode_into(&mut e);
                current.metrics.encode_into(&mut e);
                let body = Bytes::from(e.finish());
                let gz = gzip.then(|| compress(&body));
                (body, gz)
            })
            .await
            .unwrap_or_default();
            self.last_len.store(body.len(), Ordering::Relaxed);
            *slot = Some(Encoded {
                started,
                body,
                gzip: gz,
            });
        }
        let e = slot.as_mut().expect("filled above");
        if !gzip {
            return e.body.clone();
        }
        if e.gzip.is_none() {
            let body = e.body.clone();
            e.gzip = Some(
                tokio::task::spawn_blocking(move || compress(&body))
                    .await
                    .unwrap_or_default(),
            );
        }
        e.gzip.clone().unwrap_or_default()
    }

    pub fn current(&self) -> Arc<Shared> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn swap(&self, next: Arc<Shared>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next;
    }
}

/// What `--web.config.file` turns on; the default is plain HTTP, open, no extra headers.
#[derive(Default)]
pub struct Security {
    pub tls: Option<Arc<Reloader>>,
    pub auth: Option<Arc<BasicAuth>>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// How long a client has to send its first byte and finish the TLS handshake: a connection that
/// stalls there would otherwise hold a task and a socket for ever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// gzip at its fastest level: a scrape's latency matters more than the last tenth of the bytes
/// (10k series of text shrink about tenfold either way).
fn compress(body: &[u8]) -> Bytes {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 8 + 64),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = gz.write_all(body);
    Bytes::from(gz.finish().unwrap_or_default())
}

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
            match web.security.tls.clone() {
                None => serve_connection(stream, web).await,
                Some(tls) => {
                    if let Some(s) = tls_handshake(stream, &tls).await {
                        serve_connection(s, web).await
                    }
                }
            }
        });
    }
}

async fn serve_connection<I>(io: I, web: Arc<Web>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| handle(web.clone(), req));
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .serve_connection(TokioIo::new(io), svc);
    if let Err(e) = conn.await {
        debug!("connection ended with an error", error = e);
    }
}

/// Accept TLS on `stream`; None when the client fails the handshake (logged at debug: scanners
/// and clients without the right certificate are not the operator's problem). The certificate
/// files are checked for changes here, so a rotated certificate serves the next connection.
async fn tls_handshake(
    mut stream: TcpStream,
    tls: &Reloader,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config());
    let handshake = async {
        // A TLS connection starts with a handshake record (0x16). Anything else is most likely
        // plain HTTP: answer it in plain HTTP, as Go's servers do, so the mistake is obvious.
        let mut first = [0u8; 1];
        match stream.peek(&mut first).await {
            Ok(1) if first[0] != 0x16 => {
                // Read the request head first (bounded in size and time): closing with unread
                // data resets the connection, which can discard the answer before it is read.
                let mut head = Vec::with_capacity(1024);
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    let mut buf = [0u8; 1024];
                    while head.len() < 8192 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                })
                .await;
                let _ = stream
                    .write_all(
                        b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n\
                          Client sent an HTTP request to an HTTPS server.\n",
                    )
                    .await;
                let _ = stream.shutdown().await;
                return None;
            }
            Ok(1) => {}
            _ => return None,
        }
        match acceptor.accept(stream).await {
            Ok(s) => Some(s),
            Err(e) => {
                debug!("TLS handshake failed", error = e);
                None
            }
        }
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
        .await
        .unwrap_or(None)
}

/// Basic auth first (every path is protected: `/health` tells which sources run and how they
/// fail, `/` the version), then the route; the configured headers go on every response.
async fn handle(
    web: Arc<Web>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let allowed = match &web.security.auth {
        None => true,
        Some(auth) => {
            auth.check(req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes))
                .await
        }
    };
    let mut resp = if allowed {
        route(&web, req).await
    } else {
        let mut r = respond(
            StatusCode::UNAUTHORIZED,
            "text/plain",
            "Unauthorized\n".into(),
        );
        r.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(super::auth::CHALLENGE),
        );
        r
    };
    for (name, value) in &web.security.headers {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    Ok(resp)
}

async fn route(web: &Web, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET and HEAD\n".into(),
        );
    }
    let path = req.uri().path();
    if path == web.telemetry_path {
        // Past the limit a scrape is refused at once rather than queued: a pile of slow scrapers
        // must not hold memory and threads (exporter-toolkit answers 503 too).
        let _permit = match &web.scrapes {
            None => None,
            Some(s) => match s.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    return respond(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "text/plain",
                        "too many concurrent scrapes (--web.max-requests)\n".into(),
                    )
                }
            },
        };
        let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
        let format = Format::negotiate(header(ACCEPT));
        let gzip = exposition::gzip_accepted(header(ACCEPT_ENCODING));
        let body = web.scrape(format, gzip).await;
        let mut r = Response::new(Full::new(body));
        let h = r.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
        if gzip {
            h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        // Caches between scraper and sidecar must not hand one format or coding to another.
        h.insert(VARY, HeaderValue::from_static("Accept, Accept-Encoding"));
        r
    } else if path == "/health" {
        respond(
            StatusCode::OK,
            "application/json",
            web.current().health.to_json(),
        )
    } else if path == "/" {
        respond(
            StatusCode::OK,
            "text/html; charset=utf-8",
            landing(&web.telemetry_path),
        )
    } else {
        respond(StatusCode::NOT_FOUND, "text/plain", "not found\n".into())
    }
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
         <h1>chainwatch exporter</h1>\n<p>Version {} (revision {})</p>\n<ul>\n\
         <li><a href=\"{telemetry_path}\">Metrics</a></li>\n<li><a href=\"/health\">Health</a></li>\n</ul>\n</body></html>\n",
        crate::version::VERSION,
        crate::version::REVISION,
    )
}
