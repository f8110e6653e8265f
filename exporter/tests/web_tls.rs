//! `--web.config.file` end to end: a real sidecar process, real certificates (made here with rcgen),
//! real bcrypt hashes, and real TLS clients (curl, and a rustls client where the served certificate
//! itself must be looked at).

mod common;
use common::certs::{ca, leaf, Ca, Leaf};
use common::process::{poll_until, Sidecar, DEADLINE};
use common::*;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};

/// Write atomically (temp file + rename), as certificate tools do.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

// ---------------------------------------------------------------- the sidecar

struct Setup {
    dir: tempfile::TempDir,
    ca: Ca,
    server: Leaf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca("chainwatch test CA");
        let server = leaf(&ca, "chainwatch-1", false, None);
        write(&dir.path().join("ca.pem"), &ca.pem);
        write(&dir.path().join("server.pem"), &server.pem);
        write(&dir.path().join("server.key"), &server.key_pem);
        Setup { dir, ca, server }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The sidecar's own config: one file source, as in the other process tests.
    fn config(&self) -> PathBuf {
        let p = self.path("chainwatch.yaml");
        write(
            &p,
            &format!(
                "version: 1\nprofiles: [dilithion]\nsources:\n  - name: node-log\n    type: file\n    paths: [\"{}/node.log*\"]\n",
                self.dir.path().display()
            ),
        );
        p
    }

    fn web_config(&self, text: &str) -> PathBuf {
        let p = self.path("web.yml");
        write(&p, text);
        p
    }

    fn start(&self, web: &str) -> Sidecar {
        let web = self.web_config(web);
        Sidecar::start(
            &self.config(),
            &["--web.config.file", web.to_str().unwrap()],
        )
    }

    fn ca_file(&self) -> String {
        self.path("ca.pem").display().to_string()
    }
}

/// The TLS part of a web config for the setup's server certificate (relative paths: they resolve
/// against the web config's directory).
const TLS: &str = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n";

// ---------------------------------------------------------------- curl

struct Reply {
    /// curl's exit code: 0 when an HTTP exchange completed, whatever its status.
    exit: i32,
    status: u16,
    headers: String,
    body: String,
    stderr: String,
}

fn curl(args: &[&str]) -> Reply {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "20"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("curl is needed for these tests (Debian package `curl`)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Reply {
        exit: out.status.code().unwrap_or(-1),
        status,
        headers: headers.to_string(),
        body: body.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

// ---------------------------------------------------------------- a rustls client

struct TlsReply {
    peer: Vec<CertificateDer<'static>>,
    status: u16,
    body: String,
}

/// GET `path` over TLS with rustls, trusting `ca`; Err carries the handshake or I/O failure.
fn rustls_get(
    addr: &str,
    ca: &CertificateDer<'static>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    path: &str,
    auth: Option<&str>,
) -> Result<TlsReply, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let conn = rustls::ClientConnection::new(
        Arc::new(cfg),
        ServerName::try_from("127.0.0.1").unwrap().to_owned(),
    )
    .map_err(|e| e.to_string())?;
    let sock = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    sock.set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        // A peer that closes without close_notify after a complete response is fine here.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    let peer = tls
        .conn
        .peer_certificates()
        .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok(TlsReply {
        peer,
        status,
        body: body.to_string(),
    })
}

fn both_versions() -> Vec<&'static rustls::SupportedProtocolVersion> {
    vec![&rustls::version::TLS13, &rustls::version::TLS12]
}

// ---------------------------------------------------------------- tests

#[test]
fn basic_auth_over_tls_with_curl() {
    let s = Setup::new();
    let hash = bcrypt::hash("s3cret pass", 6).unwrap();
    let sidecar = s.start(&format!(
        "{TLS}basic_auth_users:\n  alice: {hash}\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n"
    ));
    let url = |p: &str| format!("https://{}{p}", sidecar.addr);
    let ca = s.ca_file();

    // Right password: 200 and the metrics, with the configured headers.
    let ok = curl(&["--cacert", &ca, "-u", "alice:s3cret pass", &url("/metrics")]);
    assert_eq!(ok.status, 200, "{}{}", ok.headers, ok.stderr);
    assert!(ok.body.contains("chainwatch_build_info"), "{}", ok.body);
    assert_eq!(ok.header("X-Frame-Options").as_deref(), Some("deny"));
    assert_eq!(
        ok.header("Strict-Transport-Security").as_deref(),
        Some("max-age=31536000")
    );
    assert!(ok.header("Content-Type").unwrap().starts_with("text/plain"));

    // Wrong password, unknown user, no credentials: 401 with the challenge, nothing leaked.
    for args in [
        vec!["-u", "alice:wrong"],
        vec!["-u", "mallory:s3cret pass"],
        vec![],
    ] {
        let mut a = vec!["--cacert", ca.as_str()];
        a.extend(args.iter().copied());
        let u = url("/metrics");
        a.push(&u);
        let r = curl(&a);
        assert_eq!(r.status, 401, "{args:?}: {}{}", r.headers, r.stderr);
        assert_eq!(
            r.header("WWW-Authenticate").as_deref(),
            Some("Basic realm=\"chainwatch\""),
            "{args:?}"
        );
        assert!(!r.body.contains("chainwatch_"), "{args:?}: {}", r.body);
        // The configured headers go on refusals too.
        assert_eq!(r.header("X-Frame-Options").as_deref(), Some("deny"));
    }

    // Every path is protected.
    for p in ["/health", "/", "/nope"] {
        assert_eq!(curl(&["--cacert", &ca, &url(p)]).status, 401, "{p}");
    }
    assert_eq!(
        curl(&["--cacert", &ca, "-u", "alice:s3cret pass", &url("/health")]).status,
        200
    );
    assert_eq!(
        curl(&["--cacert", &ca, "-u", "alice:s3cret pass", &url("/nope")]).status,
        404
    );

    // A rustls client with the right credentials, over TLS 1.2 and 1.3 alike.
    let basic = "Basic YWxpY2U6czNjcmV0IHBhc3M="; // alice:s3cret pass
    for v in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let r = rustls_get(&sidecar.addr, &s.ca.der, &[v], "/metrics", Some(basic)).unwrap();
        assert_eq!(r.status, 200, "{v:?}");
        assert!(r.body.contains("chainwatch_build_info"));
    }

    // Plain HTTP to the TLS port: told off in plain HTTP, no metrics.
    let plain = curl(&[
        "-u",
        "alice:s3cret pass",
        &format!("http://{}/metrics", sidecar.addr),
    ]);
    assert_eq!(plain.status, 400, "{}{}", plain.headers, plain.stderr);
    assert!(plain.body.contains("HTTPS server"), "{}", plain.body);
    assert!(!plain.body.contains("chainwatch_"));
    let (status, body) = common::process::http_get(&sidecar.addr, "/metrics");
    assert_eq!(status, 400);
    assert!(!body.contains("chainwatch_"));

    // And the sidecar keeps serving after all that.
    assert_eq!(
        curl(&["--cacert", &ca, "-u", "alice:s3cret pass", &url("/metrics")]).status,
        200
    );
    let (code, _) = sidecar.terminate();
    assert_eq!(code, 0);
}

#[test]
fn basic_auth_without_tls() {
    let s = Setup::new();
    let hash = bcrypt::hash("pw", 4).unwrap();
    let sidecar = s.start(&format!("basic_auth_users:\n  bob: {hash}\n"));
    let url = format!("http://{}/metrics", sidecar.addr);
    assert_eq!(curl(&["-u", "bob:pw", &url]).status, 200);
    let r = curl(&["-u", "bob:nope", &url]);
    assert_eq!(r.status, 401);
    assert!(r.header("WWW-Authenticate").is_some());
    assert_eq!(sidecar.get("/health").0, 401);
}

#[test]
fn min_version_tls13_refuses_tls12() {
    let s = Setup::new();
    let sidecar = s.start(&format!("{TLS}  min_version: TLS13\n"));
    let url = format!("https://{}/metrics", sidecar.addr);
    let ca = s.ca_file();

    let old = curl(&["--cacert", &ca, "--tls-max", "1.2", &url]);
    assert_ne!(old.exit, 0, "TLS 1.2 must be refused: {}", old.headers);
    assert_ne!(old.status, 200);
    let new = curl(&["--cacert", &ca, "--tlsv1.3", &url]);
    assert_eq!(new.status, 200, "{}", new.stderr);

    let err = rustls_get(
        &sidecar.addr,
        &s.ca.der,
        &[&rustls::version::TLS12],
        "/metrics",
        None,
    )
    .err()
    .expect("a TLS 1.2-only client must fail");
    assert!(
        err.to_lowercase().contains("version") || err.contains("alert"),
        "{err}"
    );
    let ok = rustls_get(
        &sidecar.addr,
        &s.ca.der,
        &[&rustls::version::TLS13],
        "/metrics",
        None,
    )
    .unwrap();
    assert_eq!(ok.status, 200);
}

#[test]
fn client_certificate_required_and_verified() {
    let s = Setup::new();
    let client = leaf(&s.ca, "prometheus", true, None);
    write(&s.path("client.pem"), &client.pem);
    write(&s.path("client.key"), &client.key_pem);
    // A client certificate from a CA the sidecar does not trust.
    let rogue_ca = ca("rogue CA");
    let rogue = leaf(&rogue_ca, "prometheus", true, None);
    write(&s.path("rogue.pem"), &rogue.pem);
    write(&s.path("rogue.key"), &rogue.key_pem);

    let sidecar = s.start(&format!(
        "{TLS}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n"
    ));
    let url = format!("https://{}/metrics", sidecar.addr);
    let ca = s.ca_file();
    let cert = s.path("client.pem").display().to_string();
    let key = s.path("client.key").display().to_string();

    for tls in ["1.2", "1.3"] {
        let pin = ["--tls-max", tls, "--tlsv1.2"];
        let mut a = vec!["--cacert", ca.as_str()];
        a.extend(pin);
        let mut none = a.clone();
        none.push(&url);
        let r = curl(&none);
        assert!(
            r.exit != 0 && r.status != 200,
            "TLS {tls} without a client certificate must fail: exit {} {}",
            r.exit,
            r.headers
        );

        let mut good = a.clone();
        good.extend(["--cert", cert.as_str(), "--key", key.as_str(), url.as_str()]);
        let r = curl(&good);
        assert_eq!(r.status, 200, "TLS {tls}: {}", r.stderr);

        let rogue_cert = s.path("rogue.pem").display().to_string();
        let rogue_key = s.path("rogue.key").display().to_string();
        let mut bad = a.clone();
        bad.extend([
            "--cert",
            rogue_cert.as_str(),
            "--key",
            rogue_key.as_str(),
            url.as_str(),
        ]);
        let r = curl(&bad);
        assert!(
            r.exit != 0 && r.status != 200,
            "TLS {tls}: a certificate of another CA must fail: {}",
            r.headers
        );
    }
}

#[test]
fn rotated_certificate_is_served_without_restart() {
    let s = Setup::new();
    let sidecar = s.start(TLS);
    let pid = sidecar.child.id();
    let served = || {
        rustls_get(&sidecar.addr, &s.ca.der, &both_versions(), "/health", None)
            .map(|r| r.peer.first().cloned())
            .ok()
            .flatten()
    };
    assert_eq!(served(), Some(s.server.der.clone()));

    // 1. New key and certificate, each renamed into place (key first: between the two renames
    //    the pair does not match, and the previous certificate must go on being served).
    let second = leaf(&s.ca, "chainwatch-2", false, None);
    assert_ne!(second.der, s.server.der);
    replace(&s.path("server.key"), &second.key_pem);
    let between = served().expect("still serving while the pair is half rotated");
    assert!(between == s.server.der || between == second.der);
    replace(&s.path("server.pem"), &second.pem);
    poll_until("the renamed-in certificate is served", || {
        (served()? == second.der).then_some(())
    });

    // 2. The certificate alone rewritten in place (same key), as `cp` or an editor does.
    let third = leaf(&s.ca, "chainwatch-3", false, Some(&second.key_pem));
    std::fs::write(s.path("server.pem"), &third.pem).unwrap();
    poll_until("the rewritten certificate is served", || {
        (served()? == third.der).then_some(())
    });

    // 3. A broken file: the last good certificate stays; fixing the file is picked up.
    std::fs::write(s.path("server.pem"), "not a certificate\n").unwrap();
    for _ in 0..5 {
        assert_eq!(served(), Some(third.der.clone()), "the last good one stays");
    }
    let fourth = leaf(&s.ca, "chainwatch-4", false, Some(&second.key_pem));
    std::fs::write(s.path("server.pem"), &fourth.pem).unwrap();
    poll_until("the fixed certificate is served", || {
        (served()? == fourth.der).then_some(())
    });

    // curl agrees, and it is the same process all along.
    let r = curl(&[
        "--cacert",
        &s.ca_file(),
        "-v",
        &format!("https://{}/health", sidecar.addr),
    ]);
    assert_eq!(r.status, 200);
    assert!(r.stderr.contains("chainwatch-4"), "{}", r.stderr);
    assert_eq!(sidecar.child.id(), pid);
    let (code, lines) = sidecar.terminate();
    assert_eq!(code, 0);
    let log = lines.join("\n");
    assert!(log.contains("reloaded"), "{log}");
    assert!(log.contains("cannot be loaded"), "{log}");
}

/// Run the sidecar with a web config that must be refused: exit 2 before listening, with the file
/// named. Returns stderr.
fn refused(s: &Setup, web: &Path) -> String {
    let mut child = Command::new(bin())
        .arg("--config")
        .arg(s.config())
        .args(["--web.listen-address", "127.0.0.1:0", "--web.config.file"])
        .arg(web)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the sidecar did not refuse {}", web.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(!err.contains("msg=listening"), "{err}");
    assert!(err.contains(&web.display().to_string()), "{err}");
    err
}

#[test]
fn invalid_web_configs_are_refused_at_start() {
    let s = Setup::new();
    let other = leaf(&s.ca, "other", false, None);
    write(&s.path("other.key"), &other.key_pem);
    let hash = bcrypt::hash("x", 4).unwrap();
    // (web config, what the error must say)
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            "tls_server_config:\n  cert_file: server.pem\n  key_fil: server.key\n".into(),
            vec![":3:", "key_fil"],
        ),
        (
            "tls_server_config:\n  cert_file: missing.pem\n  key_file: server.key\n".into(),
            vec![
                ":2:",
                "tls_server_config.cert_file",
                "missing.pem",
                "cannot read",
            ],
        ),
        (
            "tls_server_config:\n  cert_file: server.pem\n  key_file: other.key\n".into(),
            vec!["tls_server_config.key_file", "do not fit"],
        ),
        (
            "tls_server_config:\n  cert_file: ca.pem\n  key_file: ca.pem\n".into(),
            vec!["tls_server_config.key_file", "private key"],
        ),
        (
            format!("{TLS}  min_version: TLS11\n"),
            vec![":4:", "tls_server_config.min_version", "TLS12"],
        ),
        (
            format!("{TLS}  min_version: SSL3\n"),
            vec!["tls_server_config.min_version", "unknown TLS version"],
        ),
        (
            format!("{TLS}  min_version: TLS13\n  max_version: TLS12\n"),
            vec!["tls_server_config.max_version"],
        ),
        (
            format!("{TLS}  client_auth_type: RequireAndVerifyClientCert\n"),
            vec![
                ":4:",
                "tls_server_config.client_auth_type",
                "client_ca_file",
            ],
        ),
        (
            format!("{TLS}  client_ca_file: ca.pem\n"),
            vec!["tls_server_config.client_ca_file", "NoClientCert"],
        ),
        (
            format!("{TLS}  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n"),
            vec!["tls_server_config.cipher_suites[0]", "not supported"],
        ),
        (
            format!("basic_auth_users:\n  alice: {hash}\n  bob: hunter2\n"),
            vec![":3:", "basic_auth_users.bob", "bcrypt"],
        ),
        (
            "http_server_config:\n  headers:\n    Content-Type: text/html\n".into(),
            vec![":3:", "Content-Type", "can not be configured"],
        ),
        (
            "rate_limit:\n  interval: 1s\n  burst: 5\n".into(),
            vec!["rate_limit", "not supported"],
        ),
        (
            "basic_auth_users: [alice]\n".into(),
            vec![":1:", "basic_auth_users"],
        ),
        ("tls_server_config:\n  cert_file: [\n".into(), vec![":"]),
    ];
    for (text, wants) in &cases {
        let web = s.web_config(text);
        let err = refused(&s, &web);
        for w in wants {
            assert!(err.contains(w), "for\n{text}\nwant `{w}` in:\n{err}");
        }
    }
    // A web config file that does not exist.
    let err = refused(&s, &s.path("nope.yml"));
    assert!(err.contains("cannot read"), "{err}");

    // check-config checks it too.
    let web = s.web_config("basic_auth_users:\n  bob: hunter2\n");
    let out = Command::new(bin())
        .arg("--config")
        .arg(s.config())
        .arg("--web.config.file")
        .arg(&web)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let good = s.web_config(&format!("{TLS}basic_auth_users:\n  bob: {hash}\n"));
    let out = Command::new(bin())
        .arg("--config")
        .arg(s.config())
        .arg("check-config")
        .arg("--web.config.file")
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
