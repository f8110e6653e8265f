//! `--web.config.file`: the Prometheus exporter-toolkit's web configuration format (TLS, basic
//! auth, extra response headers), read and checked once at start.
//!
//! Every problem is a `file:line:column: field: message` error (exit code 2) before the port is
//! opened: certificates and keys are loaded and every bcrypt hash parsed here, not at the first
//! scrape. Fields of the format that chainwatch does not implement are refused by name rather
//! than ignored, so a file never looks more secure than what is served.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chainwatch_yaml::{Positions, SpecError};
use hyper::header::{HeaderName, HeaderValue};
use serde::Deserialize;

use super::auth::BasicAuth;
use super::tls::{self, ClientAuth, Pem, Reloader, TlsSettings};

/// What the server applies to every connection and request.
pub struct WebConfig {
    pub tls: Option<Arc<Reloader>>,
    pub auth: Option<Arc<BasicAuth>>,
    /// `http_server_config.headers`, added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
    /// Known to the toolkit, not implemented here: refused by name.
    #[serde(default)]
    rate_limit: Option<serde_norway::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_ca_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_allowed_sans: Option<serde_norway::Value>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    curve_preferences: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    /// Accepted for compatibility; the server speaks HTTP/1.1 only, so it changes nothing.
    #[allow(dead_code)]
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// The headers the toolkit lets a web config set, with the values it allows (empty: any). Nothing
/// else can be set, so `Content-Type`, `Content-Length`, `WWW-Authenticate` and the like stay
/// the server's.
const ALLOWED_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// Read, check and load `path`.
pub fn load(path: &Path) -> Result<WebConfig, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|e| SpecError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        field: String::new(),
        message: format!("cannot read the web config: {e}"),
    })?;
    // An empty file (or only comments) means "nothing to secure", as with the toolkit.
    let blank = text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
    let (raw, pos): (Raw, Positions) = if blank {
        (Raw::default(), Positions::default())
    } else {
        chainwatch_yaml::from_str(path, &text)?
    };
    // Absolute, so errors name the full path tried and a later reload reads the same files.
    let dir = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("/"));
    let dir = dir.as_path();
    let err = |field: &str, msg: String| positioned(&pos, path, field, msg);

    if raw.rate_limit.is_some() {
        return Err(err(
            "rate_limit",
            "not supported by chainwatch; remove it (or limit in a reverse proxy)".into(),
        ));
    }
    let tls = match raw.tls_server_config {
        Some(t) if !is_empty(&t) => {
            let settings = tls_settings(t, dir, &err)?;
            let reloader = Reloader::new(settings).map_err(|e| err(e.field(), e.to_string()))?;
            Some(Arc::new(reloader))
        }
        _ => None,
    };
    let auth = match raw.basic_auth_users {
        Some(users) if !users.is_empty() => Some(Arc::new(
            BasicAuth::new(users).map_err(|e| err(&e.field(), e.to_string()))?,
        )),
        _ => None,
    };
    let mut headers = Vec::new();
    if let Some(h) = raw.http_server_config.and_then(|h| h.headers) {
        for (name, value) in h {
            let field = format!("http_server_config.headers.{name}");
            if let Some(pair) = header(&name, &value).map_err(|m| err(&field, m))? {
                headers.push(pair);
            }
        }
    }
    Ok(WebConfig { tls, auth, headers })
}

/// An error at `field`; with a blank file there are no positions, so name the file alone.
fn positioned(pos: &Positions, path: &Path, field: &str, message: String) -> SpecError {
    let mut e = pos.error(field, message);
    e.file = path.to_path_buf();
    if e.line == 0 {
        e.line = 1;
        e.column = 1;
    }
    e
}

fn is_empty(t: &RawTls) -> bool {
    t.cert.is_none()
        && t.key.is_none()
        && t.client_ca.is_none()
        && t.cert_file.is_none()
        && t.key_file.is_none()
        && t.client_ca_file.is_none()
        && t.client_auth_type.is_none()
        && t.client_allowed_sans.is_none()
        && t.min_version.is_none()
        && t.max_version.is_none()
        && t.cipher_suites.is_none()
        && t.prefer_server_cipher_suites.is_none()
        && t.curve_preferences.is_none()
}

/// One PEM source from a `*_file` field (relative to the web config's directory, as in the
/// toolkit) or its inline twin.
fn pem(
    file: Option<PathBuf>,
    inline: Option<String>,
    dir: &Path,
    names: (&str, &str),
    err: &impl Fn(&str, String) -> SpecError,
) -> Result<Option<Pem>, SpecError> {
    let (file_field, inline_field) = names;
    match (file, inline) {
        (Some(_), Some(_)) => Err(err(
            &format!("tls_server_config.{inline_field}"),
            format!("set `{file_field}` or `{inline_field}`, not both"),
        )),
        (Some(f), None) if f.as_os_str().is_empty() => Err(err(
            &format!("tls_server_config.{file_field}"),
            "is empty".into(),
        )),
        (Some(f), None) => Ok(Some(Pem::File(dir.join(f)))),
        (None, Some(text)) => Ok(Some(Pem::Inline(text))),
        (None, None) => Ok(None),
    }
}

fn tls_settings(
    t: RawTls,
    dir: &Path,
    err: &impl Fn(&str, String) -> SpecError,
) -> Result<TlsSettings, SpecError> {
    let f = |name: &str| format!("tls_server_config.{name}");
    if t.client_allowed_sans.is_some() {
        return Err(err(
            &f("client_allowed_sans"),
            "not supported by chainwatch; restrict clients with the CA of client_ca_file".into(),
        ));
    }
    let cert = pem(t.cert_file, t.cert, dir, ("cert_file", "cert"), err)?
        .ok_or_else(|| err(&f("cert_file"), "TLS needs `cert_file` (or `cert`)".into()))?;
    let key = pem(t.key_file, t.key, dir, ("key_file", "key"), err)?
        .ok_or_else(|| err(&f("key_file"), "TLS needs `key_file` (or `key`)".into()))?;
    let client_ca = pem(
        t.client_ca_file,
        t.client_ca,
        dir,
        ("client_ca_file", "client_ca"),
        err,
    )?;
    let client_auth = ClientAuth::parse(t.client_auth_type.as_deref().unwrap_or(""))
        .map_err(|m| err(&f("client_auth_type"), m))?;
    if client_auth.verifies() && client_ca.is_none() {
        return Err(err(
            &f("client_auth_type"),
            format!("{client_auth:?} verifies client certificates: it needs `client_ca_file`"),
        ));
    }
    if client_ca.is_some() && client_auth == ClientAuth::NoClientCert {
        return Err(err(
            &f("client_ca_file"),
            "a client CA is set but client_auth_type is NoClientCert: set client_auth_type \
             (RequireAndVerifyClientCert to require certificates from that CA)"
                .into(),
        ));
    }
    let min = tls::parse_version(t.min_version.as_deref().unwrap_or("TLS12"))
        .map_err(|m| err(&f("min_version"), m))?;
    let max = tls::parse_version(t.max_version.as_deref().unwrap_or("TLS13"))
        .map_err(|m| err(&f("max_version"), m))?;
    let versions: Vec<_> = [&rustls::version::TLS12, &rustls::version::TLS13]
        .into_iter()
        .filter(|v| u16::from(v.version) >= u16::from(min.version))
        .filter(|v| u16::from(v.version) <= u16::from(max.version))
        .collect();
    if versions.is_empty() {
        return Err(err(
            &f("max_version"),
            "max_version is below min_version".into(),
        ));
    }
    let cipher_suites = match t.cipher_suites {
        None => None,
        Some(names) => {
            let mut suites = Vec::new();
            for (i, n) in names.iter().enumerate() {
                if let Some(s) = tls::parse_cipher_suite(n)
                    .map_err(|m| err(&format!("tls_server_config.cipher_suites[{i}]"), m))?
                {
                    suites.push(s);
                }
            }
            if suites.is_empty() && versions.contains(&&rustls::version::TLS12) {
                return Err(err(
                    &f("cipher_suites"),
                    "no TLS 1.2 cipher suite left while TLS 1.2 is allowed: list one, or set min_version: TLS13".into(),
                ));
            }
            Some(suites)
        }
    };
    let curves =
        match t.curve_preferences {
            None => None,
            Some(names) => {
                let mut curves = Vec::new();
                for (i, n) in names.iter().enumerate() {
                    curves.push(tls::parse_curve(n).map_err(|m| {
                        err(&format!("tls_server_config.curve_preferences[{i}]"), m)
                    })?);
                }
                if curves.is_empty() {
                    return Err(err(&f("curve_preferences"), "is empty".into()));
                }
                Some(curves)
            }
        };
    Ok(TlsSettings {
        cert,
        key,
        client_ca,
        client_auth,
        versions,
        cipher_suites,
        curves,
        prefer_server_order: t.prefer_server_cipher_suites.unwrap_or(true),
    })
}

/// Check one configured header against the toolkit's list. `None`: blank, i.e. unset.
fn header(name: &str, value: &str) -> Result<Option<(HeaderName, HeaderValue)>, String> {
    let Some((canonical, values)) = ALLOWED_HEADERS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
    else {
        let names: Vec<&str> = ALLOWED_HEADERS.iter().map(|(n, _)| *n).collect();
        return Err(format!(
            "HTTP header `{name}` can not be configured (allowed: {})",
            names.join(", ")
        ));
    };
    if value.is_empty() {
        return Ok(None);
    }
    if !values.is_empty() && !values.iter().any(|v| v.eq_ignore_ascii_case(value)) {
        return Err(format!(
            "invalid value `{value}` for {canonical}: expected one of {}",
            values.join(", ")
        ));
    }
    let v = HeaderValue::from_str(value)
        .map_err(|_| format!("`{value}` is not a valid header value"))?;
    Ok(Some((HeaderName::from_static(lower(canonical)), v)))
}

/// `HeaderName::from_static` wants lower case; the allowed names are few and fixed.
fn lower(name: &str) -> &'static str {
    match name {
        "Strict-Transport-Security" => "strict-transport-security",
        "X-Content-Type-Options" => "x-content-type-options",
        "X-Frame-Options" => "x-frame-options",
        "X-XSS-Protection" => "x-xss-protection",
        _ => "content-security-policy",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<WebConfig, SpecError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("web.yml");
        std::fs::write(&p, text).unwrap();
        load(&p)
    }

    #[test]
    fn blank_file_secures_nothing() {
        let c = load_text("# nothing yet\n\n").unwrap();
        assert!(c.tls.is_none() && c.auth.is_none() && c.headers.is_empty());
    }

    #[test]
    fn headers_follow_the_toolkit_list() {
        let c = load_text(
            "http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n    Content-Security-Policy: \"default-src 'self'\"\n    X-XSS-Protection: \"\"\n",
        )
        .unwrap();
        assert_eq!(c.headers.len(), 2);
        let e = load_text("http_server_config:\n  headers:\n    Content-Type: text/html\n")
            .err()
            .unwrap();
        assert_eq!(e.field, "http_server_config.headers.Content-Type");
        assert_eq!(e.line, 3);
        let e = load_text("http_server_config:\n  headers:\n    X-Frame-Options: allow\n")
            .err()
            .unwrap();
        assert!(e.message.contains("deny"), "{e}");
    }

    #[test]
    fn unknown_and_unsupported_fields_are_named() {
        let e = load_text("tls_server_config:\n  cert_fil: x\n")
            .err()
            .unwrap();
        assert!(e.to_string().contains("cert_fil"), "{e}");
        assert_eq!(e.line, 2);
        let e = load_text("rate_limit:\n  interval: 1s\n  burst: 2\n")
            .err()
            .unwrap();
        assert_eq!(e.field, "rate_limit");
        let e = load_text("tls_server_config:\n  min_version: TLS13\n")
            .err()
            .unwrap();
        assert_eq!(e.field, "tls_server_config.cert_file");
    }
}
