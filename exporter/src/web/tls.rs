//! TLS for the HTTP endpoint (`tls_server_config` of `--web.config.file`): rustls with the *ring*
//! provider, certificates re-read when their files change, client certificate authentication.
//!
//! Why re-read on connection rather than with a watcher: certificates are rotated by tools that
//! write files in many ways (in-place rewrite, rename over, Kubernetes' symlink swap). Comparing a
//! file's identity and mtime when a connection arrives catches all of them with one `stat` per file,
//! costs nothing when idle and needs no thread. The exporter-toolkit does the same (it re-reads on
//! every handshake); we only re-read and re-parse when a stamp changed. File times tick coarsely
//! (milliseconds), so while a file's mtime is recent its contents are compared too: two rewrites
//! of the same length within one tick are still seen.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::stamp::{stamp, Stamp};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, SupportedKxGroup, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
    SupportedCipherSuite, SupportedProtocolVersion,
};

/// Where a PEM document comes from: a file (re-read when it changes) or inline text in the web
/// config (`cert:`, `key:`, `client_ca:`), fixed for the life of the process.
#[derive(Debug, Clone)]
pub enum Pem {
    File(PathBuf),
    Inline(String),
}

/// `client_auth_type`, with Go's `crypto/tls` names and meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    /// Ask for a certificate, accept any or none (not verified).
    RequestClientCert,
    /// Require a certificate, any (not verified).
    RequireAnyClientCert,
    /// Verify a certificate against the client CA when one is sent; none is fine.
    VerifyClientCertIfGiven,
    /// Require a certificate that chains to the client CA: the only secure choice.
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    pub fn parse(s: &str) -> Result<ClientAuth, String> {
        Ok(match s {
            "" | "NoClientCert" => ClientAuth::NoClientCert,
            "RequestClientCert" => ClientAuth::RequestClientCert,
            // The toolkit keeps `RequireClientCert` as an old alias.
            "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
            other => {
                return Err(format!(
                    "unknown client_auth_type `{other}` (NoClientCert, RequestClientCert, \
                     RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert)"
                ))
            }
        })
    }

    /// Whether certificates are checked against `client_ca_file`, which must then be given.
    pub fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

/// A TLS version name of the web config. rustls speaks only TLS 1.2 and 1.3; TLS10 and TLS11 are
/// refused rather than silently raised, so what the file says is what is served.
pub fn parse_version(s: &str) -> Result<&'static SupportedProtocolVersion, String> {
    match s {
        "TLS12" => Ok(&rustls::version::TLS12),
        "TLS13" => Ok(&rustls::version::TLS13),
        "TLS10" | "TLS11" => Err(format!(
            "{s} is not supported: chainwatch (rustls) speaks TLS 1.2 and 1.3 only; use TLS12 or TLS13"
        )),
        other => Err(format!("unknown TLS version `{other}` (TLS12, TLS13)")),
    }
}

/// A cipher suite by its Go `crypto/tls` name. Only TLS 1.2 suites can be chosen (as in Go); the
/// TLS 1.3 names are accepted and have no effect, because TLS 1.3 suites are not configurable
/// there either. `None` means "a TLS 1.3 name: nothing to do".
pub fn parse_cipher_suite(s: &str) -> Result<Option<SupportedCipherSuite>, String> {
    if matches!(
        s,
        "TLS_AES_128_GCM_SHA256" | "TLS_AES_256_GCM_SHA384" | "TLS_CHACHA20_POLY1305_SHA256"
    ) {
        return Ok(None);
    }
    // Go also spells the ChaCha suites without the `_SHA256` suffix.
    let canonical = match s {
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        other => other,
    };
    let tls12: Vec<SupportedCipherSuite> = rustls::crypto::ring::ALL_CIPHER_SUITES
        .iter()
        .filter(|c| c.tls13().is_none())
        .copied()
        .collect();
    tls12
        .iter()
        .find(|c| c.suite().as_str() == Some(canonical))
        .copied()
        .map(Some)
        .ok_or_else(|| {
            let names: Vec<&str> = tls12.iter().filter_map(|c| c.suite().as_str()).collect();
            format!(
                "cipher suite `{s}` is not supported (rustls offers only AEAD suites; TLS 1.2 choices: {})",
                names.join(", ")
            )
        })
}

/// A `curve_preferences` entry by its Go name.
pub fn parse_curve(s: &str) -> Result<&'static dyn SupportedKxGroup, String> {
    use rustls::crypto::ring::kx_group;
    match s {
        "X25519" => Ok(kx_group::X25519),
        "CurveP256" => Ok(kx_group::SECP256R1),
        "CurveP384" => Ok(kx_group::SECP384R1),
        "CurveP521" => Err("CurveP521 is not supported by chainwatch's TLS provider (ring); use X25519, CurveP256 or CurveP384".into()),
        other => Err(format!("unknown curve `{other}` (X25519, CurveP256, CurveP384)")),
    }
}

/// Everything `tls_server_config` says, resolved.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert: Pem,
    pub key: Pem,
    pub client_ca: Option<Pem>,
    pub client_auth: ClientAuth,
    /// From `min_version` to `max_version`.
    pub versions: Vec<&'static SupportedProtocolVersion>,
    /// TLS 1.2 suites to offer, in preference order; None: all of the provider's.
    pub cipher_suites: Option<Vec<SupportedCipherSuite>>,
    pub curves: Option<Vec<&'static dyn SupportedKxGroup>>,
    /// `prefer_server_cipher_suites` (default true, as in the toolkit).
    pub prefer_server_order: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The web config field that names the file, for the error's position.
        field: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {message}")]
    Pem {
        field: &'static str,
        what: String,
        message: String,
    },
    #[error("the certificate and key do not fit together: {0}")]
    Pair(rustls::Error),
    #[error("{0}")]
    Config(String),
}

impl TlsError {
    /// The web config field this error is about.
    pub fn field(&self) -> &'static str {
        match self {
            TlsError::Read { field, .. } | TlsError::Pem { field, .. } => field,
            TlsError::Pair(_) => "tls_server_config.key_file",
            TlsError::Config(_) => "tls_server_config",
        }
    }
}

struct State {
    stamps: Vec<Option<Stamp>>,
    current: Arc<ServerConfig>,
    /// Stamps of the last files that failed to load (a rotation half done: new certificate, old
    /// key). Not retried until they change again, so a broken file is logged once, not per
    /// connection, and the last good certificate keeps being served meanwhile.
    failed: Option<Vec<Option<Stamp>>>,
}

/// The current TLS configuration, rebuilt when a certificate, key or CA file changes.
pub struct Reloader {
    settings: TlsSettings,
    state: Mutex<State>,
}

impl Reloader {
    /// Load everything once; any error here is fatal (the web config is refused at start).
    pub fn new(settings: TlsSettings) -> Result<Reloader, TlsError> {
        let stamps = settings_stamps(&settings);
        let current = build(&settings)?;
        Ok(Reloader {
            settings,
            state: Mutex::new(State {
                stamps,
                current,
                failed: None,
            }),
        })
    }

    /// The configuration for a new connection. A `stat` per file: cheap enough to run on the
    /// async thread for every connection, and the re-read only happens after a change.
    pub fn config(&self) -> Arc<ServerConfig> {
        let now = settings_stamps(&self.settings);
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.stamps == now || st.failed.as_ref() == Some(&now) {
            return st.current.clone();
        }
        match build(&self.settings) {
            Ok(cfg) => {
                info!("TLS certificate files changed: reloaded");
                st.current = cfg;
                st.stamps = now;
                st.failed = None;
            }
            Err(e) => {
                warn!(
                    "TLS certificate files changed but cannot be loaded; serving the previous certificate",
                    error = e
                );
                st.failed = Some(now);
            }
        }
        st.current.clone()
    }
}

fn files(s: &TlsSettings) -> impl Iterator<Item = &Path> {
    [Some(&s.cert), Some(&s.key), s.client_ca.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(|p| match p {
            Pem::File(f) => Some(f.as_path()),
            Pem::Inline(_) => None,
        })
}

fn settings_stamps(s: &TlsSettings) -> Vec<Option<Stamp>> {
    files(s).map(stamp).collect()
}

fn read(pem: &Pem, field: &'static str) -> Result<Vec<u8>, TlsError> {
    match pem {
        Pem::File(path) => std::fs::read(path).map_err(|source| TlsError::Read {
            field,
            path: path.clone(),
            source,
        }),
        Pem::Inline(text) => Ok(text.as_bytes().to_vec()),
    }
}

fn describe(pem: &Pem, inline: &str) -> String {
    match pem {
        Pem::File(p) => p.display().to_string(),
        Pem::Inline(_) => format!("inline `{inline}`"),
    }
}

fn certificates(pem: &Pem, field: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(pem, field)?;
    let what = describe(pem, field.rsplit('.').next().unwrap_or(field));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem {
            field,
            what: what.clone(),
            message: format!("not valid PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            field,
            what,
            message: "no CERTIFICATE block found".into(),
        });
    }
    Ok(certs)
}

fn provider(s: &TlsSettings) -> CryptoProvider {
    let mut p = rustls::crypto::ring::default_provider();
    if let Some(chosen) = &s.cipher_suites {
        // TLS 1.3 suites always stay (not configurable, as in Go); TLS 1.2 ones as listed.
        let mut suites: Vec<SupportedCipherSuite> = p
            .cipher_suites
            .iter()
            .filter(|c| c.tls13().is_some())
            .copied()
            .collect();
        suites.extend(chosen.iter().copied());
        p.cipher_suites = suites;
    }
    if let Some(curves) = &s.curves {
        p.kx_groups = curves.clone();
    }
    p
}

/// Read the files and build a server configuration.
fn build(s: &TlsSettings) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certificates(&s.cert, "tls_server_config.cert_file")?;
    let key_bytes = read(&s.key, "tls_server_config.key_file")?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| TlsError::Pem {
        field: "tls_server_config.key_file",
        what: describe(&s.key, "key"),
        message: format!("no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}"),
    })?;
    let provider = Arc::new(provider(s));
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&s.versions)
        .map_err(|e| TlsError::Config(format!("TLS versions and cipher suites: {e}")))?;
    let verifier: Arc<dyn ClientCertVerifier> = match s.client_auth {
        ClientAuth::NoClientCert => Arc::new(rustls::server::NoClientAuth),
        ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => {
            Arc::new(AnyClientCert {
                mandatory: s.client_auth == ClientAuth::RequireAnyClientCert,
                algorithms: provider.signature_verification_algorithms,
            })
        }
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            let ca = s.client_ca.as_ref().ok_or_else(|| {
                TlsError::Config("client certificate verification needs client_ca_file".into())
            })?;
            let mut roots = RootCertStore::empty();
            for c in certificates(ca, "tls_server_config.client_ca_file")? {
                roots.add(c).map_err(|e| TlsError::Pem {
                    field: "tls_server_config.client_ca_file",
                    what: describe(ca, "client_ca"),
                    message: format!("not a usable CA certificate: {e}"),
                })?;
            }
            let b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let b = if s.client_auth == ClientAuth::VerifyClientCertIfGiven {
                b.allow_unauthenticated()
            } else {
                b
            };
            b.build()
                .map_err(|e| TlsError::Config(format!("client certificate verifier: {e}")))?
        }
    };
    let mut cfg = builder
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(TlsError::Pair)?;
    cfg.ignore_client_order = s.prefer_server_order;
    // The server speaks HTTP/1.1 only; saying so in ALPN keeps clients from trying h2.
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// `RequestClientCert` / `RequireAnyClientCert`: a certificate is asked for (or required) but not
/// checked against any CA, as Go does. The handshake signature is still verified, so the client
/// does hold the key of the certificate it sent.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
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

    #[test]
    fn names_follow_go() {
        assert!(parse_version("TLS13").is_ok());
        assert!(parse_version("TLS10").unwrap_err().contains("TLS12"));
        assert!(parse_version("tls13").is_err());
        assert!(parse_cipher_suite("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
            .unwrap()
            .is_some());
        assert!(parse_cipher_suite("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305")
            .unwrap()
            .is_some());
        assert!(parse_cipher_suite("TLS_AES_128_GCM_SHA256")
            .unwrap()
            .is_none());
        assert!(parse_cipher_suite("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA")
            .unwrap_err()
            .contains("not supported"));
        assert!(parse_curve("CurveP521").is_err());
        assert_eq!(
            ClientAuth::parse("RequireClientCert").unwrap(),
            ClientAuth::RequireAnyClientCert
        );
        assert!(ClientAuth::parse("Always").is_err());
    }
}
