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
    pub state_dir: Option<PathBuf>,
    pub files: Vec<FileSource>,
}

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
        let mut files = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (i, s) in spec.sources.iter().enumerate() {
            match s {
                SourceSpec::File(f) => {
                    let at = |f: &str| format!("sources[{i}].{f}");
                    if f.name.is_empty()
                        || !f
                            .name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
                    {
                        return Err(pos.error(
                            at("name"),
                            "source name must be non-empty letters, digits, `_`, `-` or `.`",
                        ));
                    }
                    if !names.insert(f.name.clone()) {
                        return Err(
                            pos.error(at("name"), format!("duplicate source name `{}`", f.name))
                        );
                    }
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
                    let dur = |field: &str,
                               v: &Option<String>,
                               default: Duration|
                     -> Result<Duration, SpecError> {
                        match v {
                            None => Ok(default),
                            Some(s) => {
                                crate::duration::parse(s).map_err(|e| pos.error(at(field), e))
                            }
                        }
                    };
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
            }
        }
        if files.is_empty() {
            return Err(pos.error("sources", "configure at least one source"));
        }
        Ok(Config {
            file: pos.file().to_path_buf(),
            profiles: spec.profiles,
            labels: spec.labels,
            max_line_bytes,
            state_dir: spec.state_dir,
            files,
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
