//! Expanding the patterns into files, and into directories worth watching.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// A file's identity for as long as it exists; survives renames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(meta: &fs::Metadata) -> Self {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Every regular file currently matching a pattern, with all the matching
    /// names it has (hard links), in path order.
    pub files: HashMap<FileId, Vec<PathBuf>>,
    /// In discovery order, for deterministic processing.
    pub order: Vec<FileId>,
    pub errors: Vec<(PathBuf, String)>,
}

impl Scan {
    /// The name to report for `id`, keeping `current` while it still matches.
    pub fn name_for(&self, id: &FileId, current: Option<&Path>) -> Option<&Path> {
        let names = self.files.get(id)?;
        if let Some(cur) = current {
            if let Some(p) = names.iter().find(|p| p.as_path() == cur) {
                return Some(p);
            }
        }
        names.first().map(PathBuf::as_path)
    }
}

pub(crate) fn scan(patterns: &[String]) -> Scan {
    let mut out = Scan::default();
    for pattern in patterns {
        let paths = match glob::glob(pattern) {
            Ok(p) => p,
            // Validated in Follower::new; nothing else can fail here.
            Err(e) => {
                out.errors.push((PathBuf::from(pattern), e.to_string()));
                continue;
            }
        };
        for entry in paths {
            let path = match entry {
                Ok(p) => p,
                Err(e) => {
                    if e.error().kind() != io::ErrorKind::NotFound {
                        out.errors
                            .push((e.path().to_path_buf(), e.error().to_string()));
                    }
                    continue;
                }
            };
            match fs::metadata(&path) {
                Ok(meta) if meta.is_file() => {
                    let id = FileId::of(&meta);
                    let names = out.files.entry(id).or_default();
                    if names.is_empty() {
                        out.order.push(id);
                    }
                    if !names.contains(&path) {
                        names.push(path);
                    }
                }
                Ok(_) => {}
                // Deleted between listing and stat: simply not there.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => out.errors.push((path, e.to_string())),
            }
        }
    }
    out
}

fn has_glob_meta(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn nearest_existing_dir(mut p: &Path) -> Option<PathBuf> {
    loop {
        let probe = if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        };
        if probe.is_dir() {
            return Some(probe.to_path_buf());
        }
        p = p.parent()?;
    }
}

/// Directories whose (non-recursive) inotify watch covers every file the
/// patterns can match right now, or, where a directory does not exist yet,
/// its nearest existing ancestor so its creation wakes us.
pub(crate) fn watch_dirs(patterns: &[String]) -> BTreeSet<PathBuf> {
    let mut dirs = BTreeSet::new();
    for pattern in patterns {
        let parent = Path::new(pattern).parent().unwrap_or(Path::new(""));
        let literal: PathBuf = parent
            .components()
            .take_while(|c| match c {
                Component::Normal(s) => !has_glob_meta(&s.to_string_lossy()),
                _ => true,
            })
            .collect();
        if let Some(d) = nearest_existing_dir(&literal) {
            dirs.insert(d);
        }
        let parent_str = parent.to_string_lossy();
        if has_glob_meta(&parent_str) {
            if let Ok(paths) = glob::glob(&parent_str) {
                dirs.extend(paths.flatten().filter(|p| p.is_dir()));
            }
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_glob_matches_and_skips_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("node.log"), b"a\n").unwrap();
        fs::write(d.join("node.log.1"), b"b\n").unwrap();
        fs::create_dir(d.join("node.log.d")).unwrap();
        fs::write(d.join("other.log"), b"c\n").unwrap();
        let s = scan(&[format!("{}/node.log*", d.display())]);
        assert_eq!(s.files.len(), 2);
        assert!(s.errors.is_empty());
        let missing = scan(&[format!("{}/nope/x.log", d.display())]);
        assert!(missing.files.is_empty() && missing.errors.is_empty());
    }

    #[test]
    fn watch_dirs_uses_nearest_existing_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let pat = format!("{}/a/b/node.log", d.display());
        assert_eq!(
            watch_dirs(std::slice::from_ref(&pat)),
            BTreeSet::from([d.to_path_buf()])
        );
        fs::create_dir_all(d.join("a/b")).unwrap();
        assert_eq!(watch_dirs(&[pat]), BTreeSet::from([d.join("a/b")]));
        fs::create_dir_all(d.join("x1")).unwrap();
        fs::create_dir_all(d.join("x2")).unwrap();
        let got = watch_dirs(&[format!("{}/x*/node.log", d.display())]);
        assert_eq!(
            got,
            BTreeSet::from([d.to_path_buf(), d.join("x1"), d.join("x2")])
        );
    }
}
