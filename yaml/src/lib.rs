//! YAML documents whose errors name file, line, column and field.
//!
//! serde_norway reports where a *syntax* or *type* error is, but a semantic check made after
//! deserializing ("unknown metric") has no position. So the text is parsed a second time into an
//! index from field path (`rules[2].actions[0].metric`) to the position of its value, and semantic
//! errors look their field up there.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// An error in a YAML input, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SpecError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Field path such as `rules[2].metric`; empty for the whole document.
    pub field: String,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// Positions of every value in a document, by field path.
#[derive(Debug, Clone, Default)]
pub struct Positions {
    file: PathBuf,
    by_path: HashMap<String, Pos>,
}

impl Positions {
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Position of `field`, or of its nearest ancestor that exists (a missing field is reported
    /// where its parent mapping starts).
    pub fn pos(&self, field: &str) -> Pos {
        let mut f = field;
        loop {
            if let Some(p) = self.by_path.get(f) {
                return *p;
            }
            match f.rfind(['.', '[']) {
                Some(i) => f = &f[..i],
                None => {
                    return self
                        .by_path
                        .get("")
                        .copied()
                        .unwrap_or(Pos { line: 1, column: 1 })
                }
            }
        }
    }

    /// An error about `field`.
    pub fn error(&self, field: impl Into<String>, message: impl Into<String>) -> SpecError {
        let field = field.into();
        let pos = self.pos(&field);
        SpecError {
            file: self.file.clone(),
            line: pos.line,
            column: pos.column,
            field,
            message: message.into(),
        }
    }
}

/// Deserialize `text` (read from `file`) into `T` and index its positions.
pub fn from_str<T: DeserializeOwned>(file: &Path, text: &str) -> Result<(T, Positions), SpecError> {
    let positions = index(file, text)?;
    match serde_norway::from_str::<T>(text) {
        Ok(v) => Ok((v, positions)),
        Err(e) => {
            let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            let (line, column) = End::of(text).within(line, column);
            let msg = e.to_string();
            // serde_norway prefixes the field path ("rules[0].metric: ...") and appends the
            // location; split both out so the error reads like every other one.
            let msg = match msg.rfind(" at line ") {
                Some(i) => msg[..i].to_string(),
                None => msg,
            };
            let (field, message) = match msg.split_once(": ") {
                Some((f, m)) if !f.contains(' ') => (f.to_string(), m.to_string()),
                _ => (String::new(), msg),
            };
            Err(SpecError {
                file: file.to_path_buf(),
                line,
                column,
                field,
                message,
            })
        }
    }
}

/// Read and deserialize a YAML file.
pub fn from_file<T: DeserializeOwned>(file: &Path) -> Result<(T, Positions), SpecError> {
    let text = std::fs::read_to_string(file).map_err(|e| SpecError {
        file: file.to_path_buf(),
        line: 0,
        column: 0,
        field: String::new(),
        message: match std::path::absolute(file) {
            // Say where a relative path led: the working directory is not always obvious (`/`
            // under systemd).
            Ok(abs) if file.is_relative() => format!("cannot read {}: {e}", abs.display()),
            _ => format!("cannot read: {e}"),
        },
    })?;
    from_str(file, &text)
}

/// Where a file ends: its number of lines and the columns of the last one. The parsers report an
/// error found at the end of a file without a final newline one line past it (the fuzzers found
/// "line 10 of a 9-line file"); `within` points at the end of the last line instead, a place an
/// editor can jump to. Measured once per file, as every indexed position goes through it.
struct End {
    lines: usize,
    last_columns: usize,
}

impl End {
    fn of(text: &str) -> End {
        End {
            lines: text.split('\n').count(),
            last_columns: text.rsplit('\n').next().unwrap_or_default().chars().count(),
        }
    }

    fn within(&self, line: usize, column: usize) -> (usize, usize) {
        if line <= self.lines {
            (line, column)
        } else {
            (self.lines, self.last_columns + 1)
        }
    }
}

fn index(file: &Path, text: &str) -> Result<Positions, SpecError> {
    let mut b = Indexer {
        stack: Vec::new(),
        by_path: HashMap::new(),
    };
    let end = End::of(text);
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut b, false).map_err(|e| {
        let (line, column) = end.within(e.marker().line(), e.marker().col() + 1);
        SpecError {
            file: file.to_path_buf(),
            line,
            column,
            field: String::new(),
            message: e.info().to_string(),
        }
    })?;
    // A node's marker can be at the end of the input too (a tagged key with no value).
    let mut by_path = b.by_path;
    for pos in by_path.values_mut() {
        (pos.line, pos.column) = end.within(pos.line, pos.column);
    }
    Ok(Positions {
        file: file.to_path_buf(),
        by_path,
    })
}

enum Frame {
    /// In a mapping: the path of the mapping, and the pending key once read.
    Map {
        path: String,
        key: Option<String>,
    },
    Seq {
        path: String,
        next: usize,
    },
}

struct Indexer {
    stack: Vec<Frame>,
    by_path: HashMap<String, Pos>,
}

impl Indexer {
    /// The path the next value takes, or None when the next scalar is a mapping key.
    fn next_value_path(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Map { path, key }) => key.take().map(|k| {
                if path.is_empty() {
                    k
                } else {
                    format!("{path}.{k}")
                }
            }),
            Some(Frame::Seq { path, next }) => {
                let p = format!("{path}[{next}]");
                *next += 1;
                Some(p)
            }
        }
    }
}

impl MarkedEventReceiver for Indexer {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = Pos {
            line: mark.line(),
            column: mark.col() + 1,
        };
        match ev {
            Event::Scalar(value, ..) => match self.next_value_path() {
                Some(p) => {
                    self.by_path.entry(p).or_insert(pos);
                }
                None => {
                    if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                        *key = Some(value);
                    }
                }
            },
            Event::Alias(_) => {
                self.next_value_path();
            }
            Event::MappingStart(..) => {
                let p = self.next_value_path().unwrap_or_default();
                self.by_path.entry(p.clone()).or_insert(pos);
                self.stack.push(Frame::Map { path: p, key: None });
            }
            Event::SequenceStart(..) => {
                let p = self.next_value_path().unwrap_or_default();
                self.by_path.entry(p.clone()).or_insert(pos);
                self.stack.push(Frame::Seq { path: p, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[allow(dead_code)]
        name: String,
        #[allow(dead_code)]
        rules: Vec<Rule>,
    }
    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Rule {
        #[allow(dead_code)]
        metric: String,
        #[allow(dead_code)]
        by: Option<f64>,
    }

    const TEXT: &str = "name: x\nrules:\n  - metric: a\n  - metric: b\n    by: 2\n";

    #[test]
    fn semantic_errors_point_at_the_value() {
        let (_d, pos): (Doc, _) = from_str(Path::new("p.yaml"), TEXT).unwrap();
        let e = pos.error("rules[1].metric", "unknown metric `b`");
        assert_eq!((e.line, e.column), (4, 13));
        assert_eq!(
            e.to_string(),
            "p.yaml:4:13: rules[1].metric: unknown metric `b`"
        );
        // A missing field is reported at its parent.
        let e = pos.error("rules[0].labels.engine", "x");
        assert_eq!(e.line, 3);
    }

    #[test]
    fn type_and_unknown_field_errors_carry_field_and_line() {
        let bad = "name: x\nrules:\n  - metric: a\n    by: lots\n";
        let e = from_str::<Doc>(Path::new("p.yaml"), bad).unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        assert_eq!(e.field, "rules[0].by", "{e}");
        let bad = "name: x\nrules:\n  - metric: a\n    bye: 1\n";
        let e = from_str::<Doc>(Path::new("p.yaml"), bad).unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        assert!(e.message.contains("unknown field `bye`"), "{e}");
    }

    /// The fuzzers' findings, minimized: an error at the end of a file that has no final
    /// newline was reported one line past the file, by the parser or at a field whose node
    /// starts there.
    #[test]
    fn an_error_at_the_end_of_the_file_points_inside_it() {
        let text = "name: x\nrules:\n  !t:-0b";
        let (_, pos) = from_str::<serde_norway::Value>(Path::new("p.yaml"), text).unwrap();
        let e = pos.error("rules", "not supported");
        assert!(e.line <= 3 && e.column <= 9, "{e}");
        for text in [
            "name: x\nrules: [{metric: a, by: 1}, {nurati",
            "name: x\nrules:\n  - metric: a\n    _by-x: deny\n    _z",
        ] {
            let e = from_str::<Doc>(Path::new("p.yaml"), text).unwrap_err();
            let lines = text.lines().count();
            assert!(e.line >= 1 && e.line <= lines, "{e} in {lines} lines");
            if e.line == lines {
                let last = text.lines().last().unwrap().chars().count();
                assert!(e.column <= last + 1, "{e}");
            }
        }
    }

    #[test]
    fn syntax_errors_carry_a_line() {
        let e = from_str::<Doc>(Path::new("p.yaml"), "name: [x\nrules: 1\n").unwrap_err();
        assert!(e.line >= 1, "{e}");
        assert!(e.to_string().starts_with("p.yaml:"), "{e}");
    }
}
