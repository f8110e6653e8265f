//! The sidecar's configuration file: which profiles, which sources, which constant labels.
//! Plain data plus one loader that validates everything before anything runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chainwatch_yaml::{Positions, SpecError};
use serde::Deserialize;

/// Used when no `--config` is given: the Dilithion operators' own habit (`cd /root/dilithion &&
/// tail -f node.log`) — follow `node.log*` in the working directory.
pub const DEFAULT_CONFIG: &str = include_str!("../default-config.yaml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigSpec {
    #[serde(default = "one")]
    pub version: u32,
    /// Built-in profile names or profile file paths; their rules are merged.
    pub profiles: Vec<String>,
    /// Constant labels: chain, network, region, node.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub max_line_bytes: Option<usize>,
    /// Cap on the label sets of one metric; samples past it are dropped and counted.
    #[serde(default)]
    pub max_series_per_metric: Option<usize>,
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    pub sources: Vec<SourceSpec>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceSpec {
    File(FileSourceSpec),
    Journal(JournalSourceSpec),
    HttpJson(ApiSourceSpec),
    Jsonrpc(ApiSourceSpec),
    Prometheus(ApiSourceSpec),
    Health(ApiSourceSpec),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalSourceSpec {
    pub name: String,
    #[serde(default)]
    pub units: Vec<String>,
    #[serde(default)]
    pub identifiers: Vec<String>,
    #[serde(default)]
    pub directory: Option<PathBuf>,
    #[serde(default)]
    pub files: Vec<PathBuf>,
    #[serde(default)]
    pub journalctl: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSourceSpec {
    pub name: String,
    pub url: String,
    /// Which mapping of the profiles (`apis:`) to apply; optional when only one fits.
    #[serde(default)]
    pub mapping: Option<String>,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
    /// jsonrpc: Bitcoin-style cookie file (`user:password`), re-read at every poll.
    #[serde(default)]
    pub cookie_file: Option<PathBuf>,
    /// jsonrpc: user name, with `password_file`.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Client options in the shape of Prometheus's `http_client_config` (`source::client`).
    #[serde(default)]
    pub tls_config: Option<crate::source::client::TlsConfigSpec>,
    #[serde(default)]
    pub authorization: Option<crate::source::client::AuthorizationSpec>,
    #[serde(default)]
    pub basic_auth: Option<crate::source::client::BasicAuthSpec>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub proxy_url: Option<String>,
    #[serde(default)]
    pub follow_redirects: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceSpec {
    pub name: String,
    pub paths: Vec<String>,
    #[serde(default)]
    pub poll_interval: Option<String>,
    #[serde(default = "yes")]
    pub inotify: bool,
    #[serde(default)]
    pub rotate_wait: Option<String>,
}

fn yes() -> bool {
    true
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub profiles: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub max_line_bytes: usize,
    pub max_series_per_metric: usize,
    pub state_dir: Option<PathBuf>,
    pub files: Vec<FileSource>,
    pub journals: Vec<JournalSource>,
    pub apis: Vec<ApiSource>,
    /// Where each field is, for errors found once profiles are loaded (e.g. an unknown mapping).
    pub positions: Positions,
}

#[derive(Debug, Clone)]
pub struct JournalSource {
    pub name: String,
    pub units: Vec<String>,
    pub identifiers: Vec<String>,
    pub directory: Option<PathBuf>,
    pub files: Vec<PathBuf>,
    pub journalctl: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiSourceKind {
    HttpJson,
    JsonRpc,
    Prometheus,
    Health,
}

#[derive(Debug, Clone)]
pub enum RpcAuth {
    None,
    Cookie(PathBuf),
    Password { user: String, file: PathBuf },
}

#[derive(Debug, Clone)]
pub struct ApiSource {
    pub name: String,
    /// Index in `sources:`, for errors.
    pub index: usize,
    pub kind: ApiSourceKind,
    pub url: String,
    pub mapping: Option<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub max_body_bytes: usize,
    pub auth: RpcAuth,
    /// TLS, authorization, headers, proxy.
    pub client: crate::source::client::ClientConfigured,
}

pub const DEFAULT_MAX_BODY_BYTES: usize = 4 << 20;

#[derive(Debug, Clone)]
pub struct FileSource {
    pub name: String,
    pub paths: Vec<String>,
    pub poll_interval: Duration,
    pub inotify: bool,
    pub rotate_wait: Duration,
}

pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;

impl Config {
    pub fn load(path: &Path) -> Result<Self, SpecError> {
        let (spec, pos) = chainwatch_yaml::from_file::<ConfigSpec>(path)?;
        Self::validate(spec, &pos)
    }

    pub fn from_str(file: &Path, text: &str) -> Result<Self, SpecError> {
        let (spec, pos) = chainwatch_yaml::from_str::<ConfigSpec>(file, text)?;
        Self::validate(spec, &pos)
    }

    fn validate(spec: ConfigSpec, pos: &Positions) -> Result<Self, SpecError> {
        if spec.version != 1 {
            return Err(pos.error(
                "version",
                format!(
                    "unsupported config version {}; this sidecar reads version 1",
                    spec.version
                ),
            ));
        }
        if spec.profiles.is_empty() {
            return Err(pos.error(
                "profiles",
                "name at least one profile (`chainwatch-exporter profiles` lists the built-ins)",
            ));
        }
        for k in spec.labels.keys() {
            if !chainwatch_catalog::CONSTANT_LABELS.contains(&k.as_str()) {
                return Err(pos.error(
                    format!("labels.{k}"),
                    format!(
                        "unknown constant label `{k}`; allowed: {}",
                        chainwatch_catalog::CONSTANT_LABELS.join(", ")
                    ),
                ));
            }
        }
        let max_line_bytes = spec.max_line_bytes.unwrap_or(DEFAULT_MAX_LINE_BYTES);
        if !(256..=16 << 20).contains(&max_line_bytes) {
            return Err(pos.error("max_line_bytes", "must be between 256 and 16777216"));
        }
        let max_series_per_metric = spec
            .max_series_per_metric
            .unwrap_or(crate::registry::DEFAULT_SERIES_CAP);
        if max_series_per_metric == 0 {
            return Err(pos.error("max_series_per_metric", "must be at least 1"));
        }
        let mut files = Vec::new();
        let mut journals = Vec::new();
        let mut apis = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (i, s) in spec.sources.iter().enumerate() {
            let at = |f: &str| format!("sources[{i}].{f}");
            let dur = |field: &str,
                       v: &Option<String>,
                       default: Duration|
             -> Result<Duration, SpecError> {
                match v {
                    None => Ok(default),
                    Some(s) => chainwatch_duration::parse_std(s)
                        .map_err(|e| pos.error(at(field), e.to_string())),
                }
            };
            let name = match s {
                SourceSpec::File(f) => &f.name,
                SourceSpec::Journal(j) => &j.name,
                SourceSpec::HttpJson(a)
                | SourceSpec::Jsonrpc(a)
                | SourceSpec::Prometheus(a)
                | SourceSpec::Health(a) => &a.name,
            };
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
            {
                return Err(pos.error(
                    at("name"),
                    "source name must be non-empty letters, digits, `_`, `-` or `.`",
                ));
            }
            if !names.insert(name.clone()) {
                return Err(pos.error(at("name"), format!("duplicate source name `{name}`")));
            }
            match s {
                SourceSpec::File(f) => {
                    if f.paths.is_empty() {
                        return Err(pos.error(at("paths"), "name at least one path or glob"));
                    }
                    for (k, p) in f.paths.iter().enumerate() {
                        if let Err(e) = glob::Pattern::new(p) {
                            return Err(
                                pos.error(at(&format!("paths[{k}]")), format!("bad glob: {e}"))
                            );
                        }
                    }
                    let poll_interval = dur(
                        "poll_interval",
                        &f.poll_interval,
                        Duration::from_millis(250),
                    )?;
                    if poll_interval < Duration::from_millis(10) {
                        return Err(pos.error(at("poll_interval"), "must be at least 10ms"));
                    }
                    files.push(FileSource {
                        name: f.name.clone(),
                        paths: f.paths.clone(),
                        poll_interval,
                        inotify: f.inotify,
                        rotate_wait: dur("rotate_wait", &f.rotate_wait, Duration::from_secs(5))?,
                    });
                }
                SourceSpec::Journal(j) => {
                    journals.push(JournalSource {
                        name: j.name.clone(),
                        units: j.units.clone(),
                        identifiers: j.identifiers.clone(),
                        directory: j.directory.clone(),
                        files: j.files.clone(),
                        journalctl: j
                            .journalctl
                            .clone()
                            .unwrap_or_else(|| PathBuf::from("journalctl")),
                    });
                }
                SourceSpec::HttpJson(a)
                | SourceSpec::Jsonrpc(a)
                | SourceSpec::Prometheus(a)
                | SourceSpec::Health(a) => {
                    let kind = match s {
                        SourceSpec::HttpJson(_) => ApiSourceKind::HttpJson,
                        SourceSpec::Jsonrpc(_) => ApiSourceKind::JsonRpc,
                        SourceSpec::Prometheus(_) => ApiSourceKind::Prometheus,
                        _ => ApiSourceKind::Health,
                    };
                    if let Err(e) = crate::source::fetch::Target::parse(&a.url, None) {
                        return Err(pos.error(at("url"), e));
                    }
                    let interval = dur("interval", &a.interval, Duration::from_secs(15))?;
                    let timeout = dur("timeout", &a.timeout, Duration::from_secs(5))?;
                    if interval < Duration::from_millis(100) {
                        return Err(pos.error(at("interval"), "must be at least 100ms"));
                    }
                    if timeout.is_zero() || timeout > interval {
                        return Err(pos.error(
                            at("timeout"),
                            "must be above zero and at most the interval (polls never overlap)",
                        ));
                    }
                    let auth = match (kind, &a.cookie_file, &a.user, &a.password_file) {
                        (ApiSourceKind::JsonRpc, Some(c), None, None) => RpcAuth::Cookie(c.clone()),
                        (ApiSourceKind::JsonRpc, None, Some(u), Some(f)) => RpcAuth::Password { user: u.clone(), file: f.clone() },
                        (ApiSourceKind::JsonRpc, None, None, None) => RpcAuth::None,
                        (ApiSourceKind::JsonRpc, _, _, _) => {
                            return Err(pos.error(at("cookie_file"), "give either `cookie_file`, or `user` with `password_file` (credentials are never inline)"))
                        }
                        (_, None, None, None) => RpcAuth::None,
                        _ => return Err(pos.error(at("cookie_file"), "credentials belong to jsonrpc sources")),
                    };
                    if kind == ApiSourceKind::Health && a.mapping.is_some() {
                        return Err(pos.error(at("mapping"), "a health source needs no mapping"));
                    }
                    let client = crate::source::client::ClientSpec {
                        tls_config: a.tls_config.clone(),
                        authorization: a.authorization.clone(),
                        basic_auth: a.basic_auth.clone(),
                        headers: a.headers.clone(),
                        proxy_url: a.proxy_url.clone(),
                        follow_redirects: a.follow_redirects,
                    }
                    .validate(&|p: &Path| p.to_path_buf())
                    .map_err(|e| pos.error(at(&e.field), e.message))?;
                    if client.auth.is_some() && !matches!(auth, RpcAuth::None) {
                        return Err(pos.error(
                            at(if a.basic_auth.is_some() { "basic_auth" } else { "authorization" }),
                            "give either cookie_file / user + password_file, or basic_auth / authorization, not both",
                        ));
                    }
                    let max_body_bytes = a.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
                    if max_body_bytes < 1024 {
                        return Err(pos.error(at("max_body_bytes"), "must be at least 1024"));
                    }
                    apis.push(ApiSource {
                        name: a.name.clone(),
                        index: i,
                        kind,
                        url: a.url.clone(),
                        mapping: a.mapping.clone(),
                        interval,
                        timeout,
                        max_body_bytes,
                        auth,
                        client,
                    });
                }
            }
        }
        if files.is_empty() && journals.is_empty() && apis.is_empty() {
            return Err(pos.error("sources", "configure at least one source"));
        }
        Ok(Config {
            file: pos.file().to_path_buf(),
            profiles: spec.profiles,
            labels: spec.labels,
            max_line_bytes,
            max_series_per_metric,
            state_dir: spec.state_dir,
            files,
            journals,
            apis,
            positions: pos.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        let c = Config::from_str(Path::new("<default>"), DEFAULT_CONFIG).unwrap();
        assert_eq!(c.profiles, vec!["dilithion".to_string()]);
        assert_eq!(c.files[0].paths, vec!["node.log*".to_string()]);
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let text = "profiles: [dilithion]\nlabels: {datacenter: x}\nsources: []\n";
        let e = Config::from_str(Path::new("c.yaml"), text).unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(e.field, "labels.datacenter");
        let text = "profiles: [dilithion]\nsources:\n  - type: file\n    name: a\n    paths: [x]\n    poll_interval: 5 parsecs\n";
        let e = Config::from_str(Path::new("c.yaml"), text).unwrap_err();
        assert_eq!(
            (e.line, e.field.as_str()),
            (6, "sources[0].poll_interval"),
            "{e}"
        );
        let text = "profiles: [dilithion]\nsources:\n  - type: tcp\n    name: a\n";
        let e = Config::from_str(Path::new("c.yaml"), text).unwrap_err();
        assert!(e.to_string().contains("tcp"), "{e}");
    }
}
