//! Polled sources over HTTPS with Prometheus's `http_client_config` options, against a real TLS
//! server of another implementation (Python's `ssl`, i.e. OpenSSL, as in nginx) with a private CA
//! that requires a client certificate and a bearer token or basic auth. Certificates are made
//! here with rcgen.

mod common;
use common::certs::{ca, leaf, leaf_for, Ca};
use common::process::{poll_until, Sidecar};
use common::*;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

const SERVER: &str = r#"
import base64, http.server, json, ssl, sys
cert, key, ca, token, user, password = sys.argv[1:7]
STATUS = {"rounds_completed": 8640, "proofs_processed": 43200, "pending_proofs": 12,
          "active_validators": 97, "total_validators": 100, "network_health": "HEALTHY",
          "view_changes": 3, "validators": [{"id": "node_1", "stake": 10000, "rounds": 120,
          "accuracy": 0.99, "rewards": 42.5}]}
BASIC = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        peer = self.connection.getpeercert() or {}
        cn = [v for rdn in peer.get("subject", ()) for k, v in rdn if k == "commonName"]
        auth = self.headers.get("Authorization")
        print(json.dumps({"path": self.path, "auth": auth, "client": cn,
                          "api_key": self.headers.get("X-Api-Key")}), flush=True)
        ok = auth in ("Bearer " + token, BASIC)
        body = json.dumps(STATUS if self.path == "/status" else {"ok": True}).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.load_verify_locations(ca)
ctx.verify_mode = ssl.CERT_REQUIRED
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(json.dumps({"port": srv.server_address[1]}), flush=True)
srv.serve_forever()
"#;

/// The TLS server: its port, and every request it answered (path, Authorization, client CN).
struct Tls {
    child: Child,
    port: u16,
    seen: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Drop for Tls {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Tls {
    fn start(dir: &Path, server_names: &[&str], ca: &Ca) -> Tls {
        let server = leaf_for(ca, "node", false, None, server_names);
        write(&dir.join("server.crt"), &server.pem);
        write(&dir.join("server.key"), &server.key_pem);
        write(&dir.join("server-ca.crt"), &ca.pem);
        let mut child = Command::new(python())
            .args(["-c", SERVER])
            .arg(dir.join("server.crt"))
            .arg(dir.join("server.key"))
            .arg(dir.join("server-ca.crt"))
            .args(["t0ken-42", "scraper", "s3cret"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first: serde_json::Value =
            serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        let port = first["port"].as_u64().unwrap() as u16;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&l) {
                    s.lock().unwrap().push(v);
                }
            }
        });
        Tls { child, port, seen }
    }
}

struct Setup {
    dir: tempfile::TempDir,
    ca: Ca,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca("chainwatch test node CA");
        let client = leaf(&ca, "chainwatch-sidecar", true, None);
        write(&dir.path().join("ca.crt"), &ca.pem);
        write(&dir.path().join("client.crt"), &client.pem);
        write(&dir.path().join("client.key"), &client.key_pem);
        write(&dir.path().join("token"), "t0ken-42\n");
        write(&dir.path().join("password"), "s3cret\n");
        write(&dir.path().join("other-ca.crt"), &ca_pem_of_another());
        Setup { dir, ca }
    }

    fn path(&self, n: &str) -> PathBuf {
        self.dir.path().join(n)
    }

    /// A sidecar polling `url`'s /status (pop_status mapping) and /health, with `client` (YAML
    /// lines of the source's client options, indented for the source) on both.
    fn config(&self, url: &str, client: &str) -> PathBuf {
        let ind = |s: &str| s.lines().map(|l| format!("    {l}\n")).collect::<String>();
        let p = self.path("chainwatch.yaml");
        write(
            &p,
            &format!(
                "version: 1\nprofiles: [pop-validator]\nlabels: {{node: v1}}\nsources:\n  - name: status\n    type: http_json\n    url: {url}\n    interval: 200ms\n    timeout: 200ms\n{c}  - name: health\n    type: health\n    url: {url}/health\n    interval: 200ms\n    timeout: 200ms\n{c}",
                c = ind(client)
            ),
        );
        p
    }
}

fn ca_pem_of_another() -> String {
    ca("some other CA").pem
}

fn errors(m: &[(Series, f64)], source: &str, kind: &str) -> f64 {
    value(
        m,
        "chainwatch_source_errors_total",
        &[("source", source), ("kind", kind)],
    )
    .unwrap_or(0.0)
}

#[test]
fn private_ca_client_certificate_and_bearer_token() {
    let s = Setup::new();
    let srv = Tls::start(s.dir.path(), &["127.0.0.1", "localhost"], &s.ca);
    let url = format!("https://127.0.0.1:{}", srv.port);
    let client = format!(
        "tls_config:\n  ca_file: {}\n  cert_file: {}\n  key_file: {}\nauthorization:\n  credentials_file: {}\nheaders:\n  X-Api-Key: k-1\n",
        s.path("ca.crt").display(),
        s.path("client.crt").display(),
        s.path("client.key").display(),
        s.path("token").display()
    );
    let sc = Sidecar::start(&s.config(&url, &client), &[]);
    poll_until("both sources up with the node's values", || {
        let m = sc.metrics();
        (value(&m, "chain_pop_rounds_total", &[]) == Some(8640.0)
            && value(&m, "chain_pop_validator_stake", &[("validator", "node_1")]) == Some(10000.0)
            && value(&m, "chain_node_up", &[]) == Some(1.0)
            && value(&m, "chainwatch_source_up", &[("source", "status")]) == Some(1.0))
        .then_some(())
    });
    let seen = srv.seen.lock().unwrap().clone();
    assert!(!seen.is_empty());
    for r in &seen {
        assert_eq!(r["auth"], "Bearer t0ken-42", "{r}");
        assert_eq!(r["client"][0], "chainwatch-sidecar", "{r}");
        assert_eq!(r["api_key"], "k-1", "{r}");
    }
    assert!(seen.iter().any(|r| r["path"] == "/status"));
    assert!(seen.iter().any(|r| r["path"] == "/health"));

    // A rotated token is read at the next poll; a wrong one is the node's 401.
    write(&s.path("token"), "expired");
    poll_until("401 counted as http_status", || {
        let m = sc.metrics();
        (errors(&m, "status", "http_status") >= 1.0
            && value(&m, "chainwatch_source_up", &[("source", "status")]) == Some(0.0))
        .then_some(())
    });
    // The last good values stay.
    assert_eq!(
        value(&sc.metrics(), "chain_pop_rounds_total", &[]),
        Some(8640.0)
    );
    let (code, _) = sc.terminate();
    assert_eq!(code, 0);
}

#[test]
fn basic_auth_with_password_file() {
    let s = Setup::new();
    let srv = Tls::start(s.dir.path(), &["127.0.0.1"], &s.ca);
    let url = format!("https://127.0.0.1:{}", srv.port);
    let client = format!(
        "tls_config:\n  ca_file: {}\n  cert_file: {}\n  key_file: {}\nbasic_auth:\n  username: scraper\n  password_file: {}\n",
        s.path("ca.crt").display(),
        s.path("client.crt").display(),
        s.path("client.key").display(),
        s.path("password").display()
    );
    let sc = Sidecar::start(&s.config(&url, &client), &[]);
    poll_until("basic auth accepted", || {
        (value(&sc.metrics(), "chain_pop_rounds_total", &[]) == Some(8640.0)).then_some(())
    });
    let seen = srv.seen.lock().unwrap().clone();
    assert!(seen[0]["auth"].as_str().unwrap().starts_with("Basic "));
}

#[test]
fn wrong_ca_missing_client_certificate_and_wrong_name_are_tls_errors() {
    let s = Setup::new();
    // The server's certificate names only node.internal.
    let srv = Tls::start(s.dir.path(), &["node.internal"], &s.ca);
    let url = format!("https://127.0.0.1:{}", srv.port);
    let full = |extra: &str, ca: &str| {
        format!(
            "tls_config:\n  ca_file: {}\n  cert_file: {}\n  key_file: {}\n{extra}authorization:\n  credentials_file: {}\n",
            s.path(ca).display(),
            s.path("client.crt").display(),
            s.path("client.key").display(),
            s.path("token").display()
        )
    };
    // Another CA: the node's certificate is not trusted.
    let sc = Sidecar::start(
        &s.config(
            &url,
            &full("  server_name: node.internal\n", "other-ca.crt"),
        ),
        &[],
    );
    poll_until("tls errors", || {
        let m = sc.metrics();
        (errors(&m, "status", "tls") >= 2.0
            && errors(&m, "health", "tls") >= 1.0
            && value(&m, "chain_node_up", &[]) == Some(0.0))
        .then_some(())
    });
    let (status, health) = sc.get("/health");
    assert_eq!(status, 200);
    assert!(health.contains("TLS"), "{health}");
    assert!(
        srv.seen.lock().unwrap().is_empty(),
        "no request got through"
    );
    let (code, log) = sc.terminate();
    assert_eq!(code, 0, "no panic, a clean stop: {}", log.join("\n"));
    assert!(log
        .iter()
        .any(|l| l.contains("poll failed") && l.contains("TLS")));

    // The right CA, but the URL's host is not the certificate's name: refused…
    let sc = Sidecar::start(&s.config(&url, &full("", "ca.crt")), &[]);
    poll_until("name mismatch is a tls error", || {
        (errors(&sc.metrics(), "status", "tls") >= 1.0).then_some(())
    });
    drop(sc);
    // … unless server_name says which name to expect.
    let sc = Sidecar::start(
        &s.config(&url, &full("  server_name: node.internal\n", "ca.crt")),
        &[],
    );
    poll_until("server_name accepted", || {
        (value(&sc.metrics(), "chain_pop_rounds_total", &[]) == Some(8640.0)).then_some(())
    });
    drop(sc);

    // No client certificate: the server refuses the handshake.
    let no_cert = format!(
        "tls_config:\n  ca_file: {}\n  server_name: node.internal\nauthorization:\n  credentials_file: {}\n",
        s.path("ca.crt").display(),
        s.path("token").display()
    );
    let sc = Sidecar::start(&s.config(&url, &no_cert), &[]);
    poll_until("missing client certificate is a tls error", || {
        let m = sc.metrics();
        (errors(&m, "status", "tls") >= 1.0
            && value(&m, "chain_pop_rounds_total", &[]) != Some(8640.0))
        .then_some(())
    });
    drop(sc);

    // insecure_skip_verify: any certificate, still TLS.
    let skip = format!(
        "tls_config:\n  insecure_skip_verify: true\n  cert_file: {}\n  key_file: {}\nauthorization:\n  credentials_file: {}\n",
        s.path("client.crt").display(),
        s.path("client.key").display(),
        s.path("token").display()
    );
    let sc = Sidecar::start(&s.config(&url, &skip), &[]);
    poll_until("insecure_skip_verify accepted", || {
        (value(&sc.metrics(), "chain_pop_rounds_total", &[]) == Some(8640.0)).then_some(())
    });
}

#[test]
fn client_options_are_checked_at_start_with_file_line_and_field() {
    let s = Setup::new();
    let check = |client: &str| {
        let cfg = s.config("https://127.0.0.1:1", client);
        let out = Command::new(bin())
            .arg("--config")
            .arg(&cfg)
            .arg("check-config")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{client}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = check("tls_config:\n  ca_file: /nonexistent/ca.crt\n");
    assert!(
        e.contains("chainwatch.yaml:")
            && e.contains("sources[0].tls_config.ca_file")
            && e.contains("/nonexistent/ca.crt"),
        "{e}"
    );
    write(&s.path("junk.crt"), "not a certificate\n");
    let e = check(&format!(
        "tls_config:\n  ca_file: {}\n",
        s.path("junk.crt").display()
    ));
    assert!(
        e.contains("tls_config.ca_file") && e.contains("CERTIFICATE"),
        "{e}"
    );
    let e = check(&format!(
        "tls_config:\n  cert_file: {}\n  key_file: {}\n",
        s.path("client.crt").display(),
        s.path("ca.crt").display()
    ));
    assert!(e.contains("tls_config.key_file"), "{e}");
    let e = check("authorization:\n  credentials: t0ken\n");
    assert!(
        e.contains("authorization.credentials") && e.contains("never inline"),
        "{e}"
    );
    let e = check("basic_auth:\n  username: a\n  password: b\n");
    assert!(
        e.contains("basic_auth.password") && e.contains("never inline"),
        "{e}"
    );
    let e = check("headers:\n  Authorization: Bearer x\n");
    assert!(e.contains("headers.Authorization"), "{e}");
    let e = check("tls_config:\n  ca_pem: x\n");
    assert!(e.contains("ca_pem"), "{e}");
    let e = check("proxy_url: ftp://proxy:21\n");
    assert!(e.contains("proxy_url"), "{e}");
}

/// tinyproxy (Debian's tinyproxy-bin) on a free port, logging to `dir/tinyproxy.log`.
struct Proxy {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    fn start(dir: &Path) -> Proxy {
        for attempt in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let conf = dir.join("tinyproxy.conf");
            write(
                &conf,
                &format!("Port {port}\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\nMaxClients 20\nLogLevel Info\n"),
            );
            let log = dir.join(format!("tinyproxy-{attempt}.log"));
            let child = Command::new("tinyproxy")
                .args(["-d", "-c"])
                .arg(&conf)
                .stdout(std::fs::File::create(&log).unwrap())
                .stderr(std::fs::File::create(dir.join("tinyproxy.err")).unwrap())
                .spawn()
                .expect("tinyproxy (Debian package tinyproxy-bin)");
            let mut p = Proxy { child, port, log };
            let up = (0..100).any(|_| {
                std::thread::sleep(std::time::Duration::from_millis(50));
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            });
            if up && p.child.try_wait().ok().flatten().is_none() {
                return p;
            }
            let _ = p.child.kill();
        }
        panic!("tinyproxy did not start");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
            + &std::fs::read_to_string(self.log.with_file_name("tinyproxy.err")).unwrap_or_default()
    }
}

#[test]
fn proxy_url_goes_through_a_real_proxy_for_http_and_https() {
    let s = Setup::new();
    let proxy = Proxy::start(s.dir.path());
    // https: a CONNECT tunnel to the TLS server, TLS end to end through the proxy.
    let srv = Tls::start(s.dir.path(), &["127.0.0.1"], &s.ca);
    let url = format!("https://127.0.0.1:{}", srv.port);
    let client = format!(
        "tls_config:\n  ca_file: {}\n  cert_file: {}\n  key_file: {}\nauthorization:\n  credentials_file: {}\nproxy_url: http://127.0.0.1:{}\n",
        s.path("ca.crt").display(),
        s.path("client.crt").display(),
        s.path("client.key").display(),
        s.path("token").display(),
        proxy.port
    );
    let sc = Sidecar::start(&s.config(&url, &client), &[]);
    poll_until("values through the tunnel", || {
        (value(&sc.metrics(), "chain_pop_rounds_total", &[]) == Some(8640.0)).then_some(())
    });
    drop(sc);
    poll_until("the proxy logged the tunnel", || {
        proxy
            .log()
            .contains(&format!("CONNECT 127.0.0.1:{}", srv.port))
            .then_some(())
    });

    // http: the request goes to the proxy, which forwards it (and says so in Via).
    let api = common::httpd::Server::start(|r| {
        let via = r
            .headers
            .iter()
            .any(|(k, v)| k == "via" && v.contains("tinyproxy"));
        if via {
            common::httpd::Reply::Ok(
                r#"{"rounds_completed": 7, "network_health": "HEALTHY"}"#.into(),
            )
        } else {
            common::httpd::Reply::Status(502, "{}".into())
        }
    });
    let client = format!("proxy_url: http://127.0.0.1:{}\n", proxy.port);
    let sc = Sidecar::start(&s.config(&api.url(), &client), &[]);
    poll_until("values through the proxy", || {
        (value(&sc.metrics(), "chain_pop_rounds_total", &[]) == Some(7.0)).then_some(())
    });
    assert!(api.count() >= 1);
}
