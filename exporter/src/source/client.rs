//! How a polled source reaches its node: the options of Prometheus's `http_client_config`, as
//! operators already write them for scrape jobs — `tls_config` (`ca_file`, `cert_file`,
//! `key_file`, `server_name`, `insecure_skip_verify`), `authorization` (`type`,
//! `credentials_file`), `basic_auth` (`username`, `password_file`), `proxy_url`,
//! `follow_redirects` — plus extra request `headers`. Secrets come from files only, re-read at
//! every request as Prometheus does (a rotated token is used at the next poll). The CA,
//! certificate and key files are watched like the server's (`crate::stamp`): a rotated client
//! certificate is used from the next poll on, and one that cannot be loaded keeps the last good
//! client in service, logged once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use reqwest::header::{HeaderName, HeaderValue};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Deserialize;

use crate::stamp::{stamp, Stamp};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfigSpec {
    /// CA certificates (PEM) to verify the node's certificate with, instead of the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM, the chain) and its key, for nodes that require one.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The name the node's certificate must carry, when it is not the URL's host.
    #[serde(default)]
    pub server_name: Option<String>,
    /// Accept any certificate (still TLS, no longer authenticated).
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationSpec {
    /// The scheme, `Bearer` unless given.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// Refused: secrets are never inline.
    #[serde(default)]
    pub credentials: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthSpec {
    pub username: String,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Refused: secrets are never inline.
    #[serde(default)]
    pub password: Option<String>,
}

/// The client fields of one polled source, as written; also the whole of
/// `chainwatch-gate --prometheus.config` (the same options to reach Prometheus).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientSpec {
    pub tls_config: Option<TlsConfigSpec>,
    pub authorization: Option<AuthorizationSpec>,
    pub basic_auth: Option<BasicAuthSpec>,
    pub headers: BTreeMap<String, String>,
    pub proxy_url: Option<String>,
    pub follow_redirects: Option<bool>,
}

/// A validated client configuration: paths resolved, headers parsed, the proxy a URL.
#[derive(Debug, Clone)]
pub struct ClientConfigured {
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key, always together.
    pub identity: Option<(PathBuf, PathBuf)>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
    pub auth: Option<Auth>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub proxy_url: Option<reqwest::Url>,
    pub follow_redirects: bool,
}

impl Default for ClientConfigured {
    fn default() -> Self {
        ClientConfigured {
            ca_file: None,
            identity: None,
            server_name: None,
            insecure_skip_verify: false,
            auth: None,
            headers: Vec::new(),
            proxy_url: None,
            follow_redirects: true,
        }
    }
}

/// The `Authorization` header a source sends, its secret read from a file at every request.
#[derive(Debug, Clone)]
pub enum Auth {
    /// `authorization`: `<scheme> <credentials>`.
    Scheme { scheme: String, file: PathBuf },
    /// `basic_auth`.
    Basic { username: String, file: PathBuf },
}

/// A configuration error: the field (under the source) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Headers a source may not set: the client or the other options own them.
const RESERVED: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
];

impl ClientSpec {
    /// Check every field; `resolve` makes a relative path absolute as the configuration does.
    pub fn validate(
        &self,
        resolve: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<ClientConfigured, FieldError> {
        let mut c = ClientConfigured {
            follow_redirects: self.follow_redirects.unwrap_or(true),
            ..ClientConfigured::default()
        };
        if let Some(t) = &self.tls_config {
            c.ca_file = t.ca_file.as_deref().map(resolve);
            c.identity = match (&t.cert_file, &t.key_file) {
                (Some(cert), Some(key)) => Some((resolve(cert), resolve(key))),
                (None, None) => None,
                (Some(_), None) => {
                    return Err(err("tls_config.key_file", "cert_file needs key_file"))
                }
                (None, Some(_)) => {
                    return Err(err("tls_config.cert_file", "key_file needs cert_file"))
                }
            };
            if let Some(n) = &t.server_name {
                ServerName::try_from(n.clone())
                    .map_err(|e| err("tls_config.server_name", format!("`{n}`: {e}")))?;
            }
            c.server_name = t.server_name.clone();
            c.insecure_skip_verify = t.insecure_skip_verify;
            if c.insecure_skip_verify && c.ca_file.is_some() {
                return Err(err(
                    "tls_config.insecure_skip_verify",
                    "with insecure_skip_verify no CA is checked: drop ca_file or this",
                ));
            }
        }
        c.auth = match (&self.authorization, &self.basic_auth) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "basic_auth",
                    "give either authorization or basic_auth, not both",
                ))
            }
            (Some(a), None) => {
                if a.credentials.is_some() {
                    return Err(err(
                        "authorization.credentials",
                        "secrets are never inline: put the credentials in a file and name it in credentials_file",
                    ));
                }
                let scheme = a.kind.clone().unwrap_or_else(|| "Bearer".into());
                if scheme.is_empty()
                    || !scheme
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
                {
                    return Err(err(
                        "authorization.type",
                        format!("`{scheme}` is not an authorization scheme"),
                    ));
                }
                if scheme.eq_ignore_ascii_case("basic") {
                    return Err(err(
                        "authorization.type",
                        "use basic_auth for Basic authorization",
                    ));
                }
                let file = a.credentials_file.as_deref().ok_or_else(|| {
                    err(
                        "authorization.credentials_file",
                        "authorization needs credentials_file",
                    )
                })?;
                Some(Auth::Scheme {
                    scheme,
                    file: resolve(file),
                })
            }
            (None, Some(b)) => {
                if b.password.is_some() {
                    return Err(err(
                        "basic_auth.password",
                        "secrets are never inline: put the password in a file and name it in password_file",
                    ));
                }
                if b.username.contains(':') {
                    return Err(err("basic_auth.username", "a user name cannot hold `:`"));
                }
                let file = b.password_file.as_deref().ok_or_else(|| {
                    err("basic_auth.password_file", "basic_auth needs password_file")
                })?;
                Some(Auth::Basic {
                    username: b.username.clone(),
                    file: resolve(file),
                })
            }
            (None, None) => None,
        };
        for (k, v) in &self.headers {
            let field = format!("headers.{k}");
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| err(&field, format!("`{k}` is not a header name: {e}")))?;
            if RESERVED.contains(&name.as_str()) {
                return Err(err(
                    &field,
                    format!("`{k}` is set by the client or by another option (authorization, basic_auth, proxy_url), not by headers"),
                ));
            }
            let value = HeaderValue::from_str(v)
                .map_err(|e| err(&field, format!("not a header value: {e}")))?;
            c.headers.push((name, value));
        }
        if let Some(p) = &self.proxy_url {
            let url = reqwest::Url::parse(p)
                .map_err(|e| err("proxy_url", format!("`{p}` is not a URL: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(err(
                    "proxy_url",
                    format!("`{p}`: a proxy is http:// or https://, with a host"),
                ));
            }
            c.proxy_url = Some(url);
        }
        Ok(c)
    }
}

impl ClientConfigured {
    /// Whether both need the same connections: TLS, proxy and redirects alike (headers and
    /// credentials are added per request).
    fn same_transport(&self, o: &ClientConfigured) -> bool {
        (
            &self.ca_file,
            &self.identity,
            &self.server_name,
            self.insecure_skip_verify,
            &self.proxy_url,
            self.follow_redirects,
        ) == (
            &o.ca_file,
            &o.identity,
            &o.server_name,
            o.insecure_skip_verify,
            &o.proxy_url,
            o.follow_redirects,
        )
    }

    /// The files whose change rebuilds the client.
    fn watched(&self) -> Vec<&Path> {
        let mut v: Vec<&Path> = self.ca_file.iter().map(PathBuf::as_path).collect();
        if let Some((c, k)) = &self.identity {
            v.push(c);
            v.push(k);
        }
        v
    }

    /// The `Authorization` header value, secret read now.
    pub fn authorization(&self) -> Result<Option<HeaderValue>, String> {
        let read = |p: &Path| {
            std::fs::read_to_string(p)
                .map_err(|e| format!("reading credentials {}: {e}", p.display()))
        };
        let value = match &self.auth {
            None => return Ok(None),
            Some(Auth::Scheme { scheme, file }) => format!("{scheme} {}", read(file)?.trim()),
            Some(Auth::Basic { username, file }) => {
                use base64::Engine as _;
                let pw = read(file)?;
                let pair = format!("{username}:{}", pw.trim_end_matches(['\r', '\n']));
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                )
            }
        };
        let mut v = HeaderValue::from_str(&value).map_err(|_| {
            "the credentials file holds characters a header cannot carry".to_string()
        })?;
        v.set_sensitive(true);
        Ok(Some(v))
    }
}

/// The HTTP client of one source, rebuilt when its TLS files change. Sources without TLS,
/// proxy or redirect options share one client, built at their first poll.
pub struct Client {
    pub config: ClientConfigured,
    /// None: the shared default client.
    state: Option<Mutex<State>>,
}

static DEFAULT: std::sync::OnceLock<Result<reqwest::Client, String>> = std::sync::OnceLock::new();

struct State {
    stamps: Vec<Option<Stamp>>,
    client: reqwest::Client,
    /// Stamps of files that failed to load: not retried (nor logged) until they change again.
    failed: Option<Vec<Option<Stamp>>>,
}

impl Client {
    /// Build now, so a CA, certificate or key that cannot be loaded is an error at start
    /// (`file:line:column: field: message`), never a failing poll.
    pub fn new(config: ClientConfigured) -> Result<Client, FieldError> {
        if config.same_transport(&ClientConfigured::default()) {
            return Ok(Client {
                config,
                state: None,
            });
        }
        let stamps = stamps(&config);
        let client = build(&config)?;
        Ok(Client {
            config,
            state: Some(Mutex::new(State {
                stamps,
                client,
                failed: None,
            })),
        })
    }

    /// The client for the next request: a `stat` per watched file, a rebuild after a change.
    pub fn get(&self) -> Result<reqwest::Client, String> {
        let Some(state) = &self.state else {
            return DEFAULT
                .get_or_init(|| build(&ClientConfigured::default()).map_err(|e| e.message))
                .clone();
        };
        let now = stamps(&self.config);
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        if st.stamps == now || st.failed.as_ref() == Some(&now) {
            return Ok(st.client.clone());
        }
        match build(&self.config) {
            Ok(c) => {
                info!("client TLS files changed: reloaded");
                st.client = c;
                st.stamps = now;
                st.failed = None;
            }
            Err(e) => {
                warn!(
                    "client TLS files changed but cannot be loaded; polling with the previous ones",
                    error = format!("{}: {}", e.field, e.message)
                );
                st.failed = Some(now);
            }
        }
        Ok(st.client.clone())
    }
}

fn stamps(c: &ClientConfigured) -> Vec<Option<Stamp>> {
    c.watched().into_iter().map(stamp).collect()
}

fn build(c: &ClientConfigured) -> Result<reqwest::Client, FieldError> {
    let tls = tls(c)?;
    let mut b = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .http1_only()
        .user_agent(concat!("chainwatch/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(1)
        .redirect(if c.follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        });
    b = match &c.proxy_url {
        // As Prometheus: the environment's HTTP_PROXY is not used unless configured.
        None => b.no_proxy(),
        Some(u) => {
            b.proxy(reqwest::Proxy::all(u.clone()).map_err(|e| err("proxy_url", e.to_string()))?)
        }
    };
    b.build()
        .map_err(|e| err("tls_config", format!("cannot build the HTTP client: {e}")))
}

fn read_pem(path: &Path, field: &str) -> Result<Vec<u8>, FieldError> {
    std::fs::read(path).map_err(|e| err(field, format!("cannot read {}: {e}", path.display())))
}

fn certs(path: &Path, field: &str) -> Result<Vec<CertificateDer<'static>>, FieldError> {
    let bytes = read_pem(path, field)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| err(field, format!("{}: not valid PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(err(
            field,
            format!("{}: no CERTIFICATE block found", path.display()),
        ));
    }
    Ok(certs)
}

fn tls(c: &ClientConfigured) -> Result<ClientConfig, FieldError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| err("tls_config", e.to_string()))?;
    let inner: Arc<dyn ServerCertVerifier> = if c.insecure_skip_verify {
        Arc::new(Unverified {
            algorithms,
            refuse: None,
        })
    } else {
        let mut roots = RootCertStore::empty();
        match &c.ca_file {
            Some(ca) => {
                for cert in certs(ca, "tls_config.ca_file")? {
                    roots.add(cert).map_err(|e| {
                        err(
                            "tls_config.ca_file",
                            format!("{}: not a usable CA certificate: {e}", ca.display()),
                        )
                    })?;
                }
            }
            None => {
                // The system's CAs (/etc/ssl/certs), as Go's crypto/tls uses them.
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
            }
        }
        if roots.is_empty() {
            // No CA at all (a container without ca-certificates): https polls fail with a `tls`
            // error that says so; plain http is unaffected.
            Arc::new(Unverified {
                algorithms,
                refuse: Some("no trusted CA certificates on this system (install ca-certificates, or set tls_config.ca_file)"),
            })
        } else {
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| err("tls_config.ca_file", format!("certificate verifier: {e}")))?
        }
    };
    let verifier: Arc<dyn ServerCertVerifier> = match &c.server_name {
        Some(n) => Arc::new(NamedServer {
            inner,
            name: ServerName::try_from(n.clone())
                .map_err(|e| err("tls_config.server_name", e.to_string()))?,
        }),
        None => inner,
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut cfg = match &c.identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = certs(cert, "tls_config.cert_file")?;
            let key_bytes = read_pem(key, "tls_config.key_file")?;
            let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| {
                err(
                    "tls_config.key_file",
                    format!(
                        "{}: no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}",
                        key.display()
                    ),
                )
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                err(
                    "tls_config.key_file",
                    format!("the certificate and key do not fit together: {e}"),
                )
            })?
        }
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// `server_name`: the node's certificate is checked against this name instead of the URL's host
/// (a node reached by IP address, or through a tunnel). The SNI sent is still the URL's host
/// name (none for an IP address): rustls names the server from the URL.
#[derive(Debug)]
struct NamedServer {
    inner: Arc<dyn ServerCertVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for NamedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A verifier that does not look at the certificate: it accepts any (`insecure_skip_verify`, as
/// Go's `InsecureSkipVerify`), or, with `refuse`, none (no trusted CA on this system, saying
/// so). The handshake signatures are still checked.
#[derive(Debug)]
struct Unverified {
    algorithms: WebPkiSupportedAlgorithms,
    refuse: Option<&'static str>,
}

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.refuse {
            None => Ok(ServerCertVerified::assertion()),
            Some(why) => Err(rustls::Error::General(why.into())),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(p: &Path) -> PathBuf {
        p.to_path_buf()
    }

    #[test]
    fn secrets_inline_and_half_pairs_are_refused_by_field() {
        let spec = ClientSpec {
            authorization: Some(AuthorizationSpec {
                credentials: Some("t0ken".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            spec.validate(&same).unwrap_err().field,
            "authorization.credentials"
        );
        let spec = ClientSpec {
            tls_config: Some(TlsConfigSpec {
                cert_file: Some("c.pem".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            spec.validate(&same).unwrap_err().field,
            "tls_config.key_file"
        );
        let spec = ClientSpec {
            headers: BTreeMap::from([("Authorization".into(), "Bearer x".into())]),
            ..Default::default()
        };
        assert_eq!(
            spec.validate(&same).unwrap_err().field,
            "headers.Authorization"
        );
        let spec = ClientSpec {
            proxy_url: Some("socks9://x".into()),
            ..Default::default()
        };
        assert_eq!(spec.validate(&same).unwrap_err().field, "proxy_url");
    }

    #[test]
    fn credentials_are_read_at_each_request() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "first\n").unwrap();
        let spec = ClientSpec {
            authorization: Some(AuthorizationSpec {
                credentials_file: Some(f.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let c = spec.validate(&same).unwrap();
        assert_eq!(c.authorization().unwrap().unwrap(), "Bearer first");
        std::fs::write(&f, "second").unwrap();
        assert_eq!(c.authorization().unwrap().unwrap(), "Bearer second");
        std::fs::remove_file(&f).unwrap();
        assert!(c.authorization().unwrap_err().contains("token"));
    }
}
