//! The sidecar's configuration file: which profiles, which sources, which constant labels.
//! Plain data plus one loader that validates everything before anything runs.
//!
//! Relative paths in a configuration file resolve against that file's directory, never against
//! the working directory (`/` under systemd): profile files, file source globs, journal
//! directories and files, a `journalctl` given as a path, credential files and `state_dir`. Label
//! values are expanded from the environment (`crate::expand`).

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
    /// Constant labels: chain, network, region, node; `${VAR}` expanded from the environment.
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

/// A validated configuration: paths absolute, label values expanded.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    /// Built-in profile names and absolute profile file paths.
    pub profiles: Vec<String>,
    /// Constant labels with non-empty values (an empty value sets no label).
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

/// Where the relative paths of one configuration point.
struct Base(PathBuf);

impl Base {
    fn path(&self, p: &Path) -> PathBuf {
        self.0.join(p)
    }

    /// A glob: the directory is escaped, so a `[` in it matches itself.
    fn glob(&self, p: &str) -> String {
        if Path::new(p).is_absolute() {
            return p.to_string();
        }
        let dir = glob::Pattern::escape(&self.0.to_string_lossy());
        format!("{}/{p}", dir.trim_end_matches('/'))
    }

    /// A program: a bare name is looked up on PATH, a path resolves like any other.
    fn program(&self, p: &Path) -> PathBuf {
        if p.components().count() > 1 {
            self.path(p)
        } else {
            p.to_path_buf()
        }
    }
}

impl Config {
    /// Load `path`; its relative paths resolve against its directory.
    pub fn load(path: &Path) -> Result<Self, SpecError> {
        let (spec, pos) = chainwatch_yaml::from_file::<ConfigSpec>(path)?;
        let dir = std::path::absolute(path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("/"));
        Self::validate(spec, &pos, &Base(dir))
    }

    /// `--config FILE`, or the built-in default (whose `node.log*` is in the working directory).
    pub fn load_or_default(path: Option<&Path>) -> Result<Self, SpecError> {
        match path {
            Some(p) => Self::load(p),
            None => Self::from_str(Path::new("<built-in default config>"), DEFAULT_CONFIG),
        }
    }

    /// A configuration that is not a file: relative paths resolve against the working directory.
    pub fn from_str(file: &Path, text: &str) -> Result<Self, SpecError> {
        let (spec, pos) = chainwatch_yaml::from_str::<ConfigSpec>(file, text)?;
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        Self::validate(spec, &pos, &Base(cwd))
    }

    fn validate(spec: ConfigSpec, pos: &Positions, base: &Base) -> Result<Self, SpecError> {
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
        let mut profiles = Vec::new();
        for (i, p) in spec.profiles.iter().enumerate() {
            if crate::profile::builtin(p).is_some() {
                profiles.push(p.clone());
                continue;
            }
            let path = base.path(Path::new(p));
            if let Err(e) = std::fs::metadata(&path) {
                let builtins: Vec<&str> = crate::profile::BUILTINS.iter().map(|b| b.name).collect();
                let message = if p.contains(['/', '.']) {
                    format!("cannot read profile {}: {e}", path.display())
                } else {
                    format!(
                        "no built-in profile `{p}` and no file {}; built-ins: {}",
                        path.display(),
                        builtins.join(", ")
                    )
                };
                return Err(pos.error(format!("profiles[{i}]"), message));
            }
            profiles.push(path.to_string_lossy().into_owned());
        }
        let mut labels = BTreeMap::new();
        for (k, v) in &spec.labels {
            let field = format!("labels.{k}");
            if !chainwatch_catalog::CONSTANT_LABELS.contains(&k.as_str()) {
                return Err(pos.error(
                    field,
                    format!(
                        "unknown constant label `{k}`; allowed: {}",
                        chainwatch_catalog::CONSTANT_LABELS.join(", ")
                    ),
                ));
            }
            let v = crate::expand::expand(v, |name| std::env::var(name))
                .map_err(|m| pos.error(&field, m))?;
            if !v.is_empty() {
                labels.insert(k.clone(), v);
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
                        paths: f.paths.iter().map(|p| base.glob(p)).collect(),
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
                        directory: j.directory.as_deref().map(|d| base.path(d)),
                        files: j.files.iter().map(|f| base.path(f)).collect(),
                        journalctl: j
                            .journalctl
                            .as_deref()
                            .map_or_else(|| PathBuf::from("journalctl"), |p| base.program(p)),
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
                        (ApiSourceKind::JsonRpc, Some(c), None, None) => RpcAuth::Cookie(base.path(c)),
                        (ApiSourceKind::JsonRpc, None, Some(u), Some(f)) => RpcAuth::Password { user: u.clone(), file: base.path(f) },
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
                    });
                }
            }
        }
        if files.is_empty() && journals.is_empty() && apis.is_empty() {
            return Err(pos.error("sources", "configure at least one source"));
        }
        Ok(Config {
            file: pos.file().to_path_buf(),
            profiles,
            labels,
            max_line_bytes,
            max_series_per_metric,
            state_dir: spec.state_dir.as_deref().map(|d| base.path(d)),
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
        // The built-in default follows node.log* where the sidecar was started.
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            c.files[0].paths,
            vec![format!("{}/node.log*", cwd.display())]
        );
    }

    #[test]
    fn relative_paths_resolve_against_the_config_directory() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("conf[1]");
        std::fs::create_dir_all(d.join("profiles")).unwrap();
        std::fs::write(
            d.join("profiles/mine.yaml"),
            "version: 1\nname: mine\nrules: []\n",
        )
        .unwrap();
        let text = "profiles: [dilithion, profiles/mine.yaml]\nstate_dir: state\nsources:\n\
                    - {type: file, name: f, paths: [logs/node.log*, /abs/x.log]}\n\
                    - {type: journal, name: j, directory: journal, files: [a.journal], journalctl: bin/journalctl}\n\
                    - {type: journal, name: k, journalctl: journalctl}\n\
                    - {type: jsonrpc, name: r, url: 'http://127.0.0.1:1', cookie_file: ../.cookie}\n\
                    - {type: jsonrpc, name: s, url: 'http://127.0.0.1:1', user: u, password_file: secrets/pw}\n";
        let file = d.join("chainwatch.yaml");
        std::fs::write(&file, text).unwrap();
        let c = Config::load(&file).unwrap();
        assert_eq!(
            c.profiles,
            vec![
                "dilithion".to_string(),
                d.join("profiles/mine.yaml").display().to_string()
            ]
        );
        assert_eq!(c.state_dir, Some(d.join("state")));
        // The glob escapes the directory's `[1]`: it matches the directory literally.
        let g = &c.files[0].paths[0];
        assert!(glob::Pattern::new(g)
            .unwrap()
            .matches_path(&d.join("logs/node.log.1")));
        assert_eq!(c.files[0].paths[1], "/abs/x.log");
        assert_eq!(c.journals[0].directory, Some(d.join("journal")));
        assert_eq!(c.journals[0].files, vec![d.join("a.journal")]);
        assert_eq!(c.journals[0].journalctl, d.join("bin/journalctl"));
        assert_eq!(c.journals[1].journalctl, PathBuf::from("journalctl"));
        assert!(matches!(&c.apis[0].auth, RpcAuth::Cookie(p) if *p == d.join("../.cookie")));
        assert!(
            matches!(&c.apis[1].auth, RpcAuth::Password { file, .. } if *file == d.join("secrets/pw"))
        );
    }

    #[test]
    fn a_missing_profile_file_names_the_field_and_the_path_tried() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("chainwatch.yaml");
        std::fs::write(
            &file,
            "profiles:\n  - dilithion\n  - ../x.yaml\nsources: [{type: file, name: f, paths: [x]}]\n",
        )
        .unwrap();
        let e = Config::load(&file).unwrap_err();
        assert_eq!(
            (e.line, e.column, e.field.as_str()),
            (3, 5, "profiles[1]"),
            "{e}"
        );
        let tried = dir.path().join("../x.yaml");
        assert!(
            e.message
                .starts_with(&format!("cannot read profile {}: ", tried.display())),
            "{e}"
        );
        std::fs::write(
            &file,
            "profiles: [dilithon]\nsources: [{type: file, name: f, paths: [x]}]\n",
        )
        .unwrap();
        let e = Config::load(&file).unwrap_err();
        assert!(
            e.message.contains("no built-in profile `dilithon`")
                && e.message
                    .contains(&dir.path().join("dilithon").display().to_string())
                && e.message.contains("built-ins: "),
            "{e}"
        );
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
