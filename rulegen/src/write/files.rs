//! The writer: files are written atomically (temp file + rename in the same directory, the
//! directory synced) and only when their content changed; `--check` compares instead of writing.
//! Extra files in the directories rulegen owns are stale output: reported, and removed on write.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::conventions::{GENERATED_EXT, OWNED_DIRS, OWNED_FILES};

/// Generated files by path relative to the output root, in path order: deterministic.
pub type Files = BTreeMap<String, String>;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Generated files whose committed content differs.
    pub stale: Vec<String>,
    /// Generated files that do not exist.
    pub missing: Vec<String>,
    /// Files under the output directories that rulegen would not generate.
    pub extra: Vec<String>,
}

impl Diff {
    pub fn is_clean(&self) -> bool {
        self.stale.is_empty() && self.missing.is_empty() && self.extra.is_empty()
    }
}

fn existing_files(root: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for f in OWNED_FILES {
        if root.join(f).is_file() {
            out.push(f.to_string());
        }
    }
    let mut stack: Vec<PathBuf> = OWNED_DIRS
        .iter()
        .map(|d| root.join(d))
        .filter(|d| d.is_dir())
        .collect();
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d)? {
            let e = e?;
            let p = e.path();
            if e.file_type()?.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(root) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    Ok(out)
}

pub fn check(root: &Path, files: &Files) -> io::Result<Diff> {
    let mut d = Diff::default();
    for (path, content) in files {
        match fs::read(root.join(path)) {
            Ok(old) => {
                if old != content.as_bytes() {
                    d.stale.push(path.clone());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => d.missing.push(path.clone()),
            Err(e) => return Err(e),
        }
    }
    for f in existing_files(root)? {
        if !files.contains_key(&f) {
            d.extra.push(f);
        }
    }
    Ok(d)
}

#[derive(Debug, Default)]
pub struct WriteReport {
    pub written: Vec<String>,
    pub unchanged: usize,
    pub removed: Vec<String>,
}

fn write_atomic(path: &Path, content: &[u8]) -> io::Result<()> {
    fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    chainwatch_atomic::write(path, content)
}

/// Write what changed, and remove generated-looking files rulegen no longer produces.
pub fn write(root: &Path, files: &Files) -> io::Result<WriteReport> {
    let d = check(root, files)?;
    let mut r = WriteReport::default();
    for path in d.stale.iter().chain(d.missing.iter()) {
        write_atomic(&root.join(path), files[path].as_bytes())?;
        r.written.push(path.clone());
    }
    r.written.sort();
    r.unchanged = files.len() - r.written.len();
    for extra in &d.extra {
        let ext = Path::new(extra)
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        if GENERATED_EXT.contains(&ext) {
            fs::remove_file(root.join(extra))?;
            r.removed.push(extra.clone());
        }
    }
    Ok(r)
}
