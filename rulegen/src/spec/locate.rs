//! Where an error points: `file:line:column` of a field path, in thresholds.yaml or, for a field
//! the overlay set, in the overlay. Also the reading of a YAML file whose syntax errors name the
//! field they follow.

use std::collections::HashMap;
use std::path::Path;

use chainwatch_yaml::{Positions, SpecError};

/// Where errors point: the base file, or the overlay for fields the overlay set.
pub struct Locator {
    base: Positions,
    overlay: Option<Positions>,
    /// base field path → overlay field path.
    redirect: HashMap<String, String>,
}

impl Locator {
    pub fn new(base: Positions) -> Locator {
        Locator {
            base,
            overlay: None,
            redirect: HashMap::new(),
        }
    }

    /// Errors about `base` (and the fields under it) point at `overlay` in the overlay file.
    pub fn redirect(&mut self, base: String, overlay: String) {
        self.redirect.insert(base, overlay);
    }

    /// Where the fields of thresholds.yaml itself are (not the overlay's).
    pub fn base(&self) -> &Positions {
        &self.base
    }

    pub fn set_overlay(&mut self, positions: Positions) {
        self.overlay = Some(positions);
    }

    pub fn error(&self, field: &str, msg: impl Into<String>) -> SpecError {
        if let Some(ov) = &self.overlay {
            let mut best: Option<(&String, &String)> = None;
            for (k, v) in &self.redirect {
                let prefix_ok = field == k
                    || (field.starts_with(k.as_str())
                        && matches!(field.as_bytes().get(k.len()), Some(b'.') | Some(b'[')));
                if prefix_ok && best.is_none_or(|(bk, _)| k.len() > bk.len()) {
                    best = Some((k, v));
                }
            }
            if let Some((_, v)) = best {
                // An overlay field replaces the base value as a whole: point at it.
                return ov.error(v.clone(), msg);
            }
        }
        self.base.error(field.to_string(), msg)
    }
}

/// Read and deserialize a YAML file, with positions of every field.
pub fn read_yaml<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<(T, Positions), Vec<SpecError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![SpecError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            field: String::new(),
            message: format!("cannot read: {e}"),
        }]
    })?;
    parse_yaml(path, &text)
}

/// Deserialize YAML text read from `path`.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<(T, Positions), Vec<SpecError>> {
    chainwatch_yaml::from_str(path, text).map_err(|e| vec![with_nearest_field(e, path, text)])
}

/// A syntax error has a line but no field: name the last field that parsed before it.
fn with_nearest_field(mut e: SpecError, path: &Path, text: &str) -> SpecError {
    if !e.field.is_empty() || e.line == 0 {
        return e;
    }
    let lines: Vec<&str> = text.lines().collect();
    for keep in (e.line.saturating_sub(25)..e.line).rev() {
        let prefix = lines[..keep.min(lines.len())].join("\n");
        let Ok((v, pos)) = chainwatch_yaml::from_str::<serde_norway::Value>(path, &prefix) else {
            continue;
        };
        let mut paths = Vec::new();
        walk_value(&v, String::new(), &mut paths);
        let best = paths
            .into_iter()
            .map(|p| {
                let x = pos.pos(&p);
                ((x.line, x.column), p)
            })
            .filter(|(lc, _)| *lc <= (e.line, e.column))
            .max();
        if let Some((_, p)) = best {
            e.message = format!("{} (after this field)", e.message);
            e.field = p;
        }
        break;
    }
    e
}

fn walk_value(v: &serde_norway::Value, path: String, out: &mut Vec<String>) {
    match v {
        serde_norway::Value::Mapping(m) => {
            for (k, x) in m {
                let k = match k {
                    serde_norway::Value::String(s) => s.clone(),
                    other => serde_norway::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                let p = if path.is_empty() {
                    k
                } else {
                    format!("{path}.{k}")
                };
                out.push(p.clone());
                walk_value(x, p, out);
            }
        }
        serde_norway::Value::Sequence(s) => {
            for (i, x) in s.iter().enumerate() {
                let p = format!("{path}[{i}]");
                out.push(p.clone());
                walk_value(x, p, out);
            }
        }
        _ => {}
    }
}
