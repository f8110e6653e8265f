//! An HTTP receiver on loopback that records every request: the stand-in for Slack, PagerDuty
//! and the heartbeat service that the generated Alertmanager configuration delivers to. Each
//! request is answered `200 {}`; connections are kept alive as Alertmanager's client expects.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub wall: SystemTime,
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The body parsed as JSON (`Null` when it is not JSON).
    pub json: Value,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

type Callback = dyn Fn(&Received) + Send + Sync;

pub struct Webhook {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
}

impl Webhook {
    /// Listen on a free loopback port.
    pub fn start() -> Webhook {
        Webhook::start_with(Arc::new(|_: &Received| {}))
    }

    /// Listen on a free loopback port and call `on_request` for every request as it arrives.
    pub fn start_with(on_request: Arc<Callback>) -> Webhook {
        Webhook::bind("127.0.0.1:0", on_request).expect("bind the webhook receiver")
    }

    pub fn bind(addr: &str, on_request: Arc<Callback>) -> std::io::Result<Webhook> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (rec, st) = (received.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (rec, cb) = (rec.clone(), on_request.clone());
                std::thread::spawn(move || serve(conn, rec, cb));
            }
        });
        Ok(Webhook {
            addr,
            received,
            stop,
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn serve(conn: TcpStream, rec: Arc<Mutex<Vec<Received>>>, cb: Arc<Callback>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(120)));
    let mut w = match conn.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            match r.read_line(&mut h) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let mut body = Vec::new();
        if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            // Read chunks until the terminating zero-size chunk.
            loop {
                let mut size = String::new();
                if r.read_line(&mut size).unwrap_or(0) == 0 {
                    return;
                }
                let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                    .unwrap_or(0);
                let mut chunk = vec![0; n + 2];
                if r.read_exact(&mut chunk).is_err() {
                    return;
                }
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            body = vec![0; n];
            if r.read_exact(&mut body).is_err() {
                return;
            }
        }
        let body = String::from_utf8_lossy(&body).to_string();
        let json = serde_json::from_str(&body).unwrap_or(Value::Null);
        let close = get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let req = Received {
            at: Instant::now(),
            wall: SystemTime::now(),
            method,
            path,
            headers,
            body,
            json,
        };
        cb(&req);
        rec.lock().unwrap().push(req);
        let resp =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        if w.write_all(resp.as_bytes()).is_err() || close {
            return;
        }
    }
}
