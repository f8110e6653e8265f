//! Versioned on-disk record of how far each file has been processed.

use std::io;
use std::path::{Path, PathBuf};

use chainwatch_atomic::versioned::{self, LoadError};
use serde::{Deserialize, Serialize};

pub const CHECKPOINT_VERSION: u32 = 1;

/// `<state_dir>/<name>.checkpoint.json`
pub fn checkpoint_path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join(format!("{name}.checkpoint.json"))
}

/// One file's position. `offset` is always the byte after the last line
/// handed to the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub dev: u64,
    pub ino: u64,
    pub fingerprint: u64,
    pub offset: u64,
    pub path: PathBuf,
    /// Adopted as the copy of another inode (see `Tracked::copy`).
    pub copy: bool,
}

#[derive(Serialize, Deserialize)]
struct Disk {
    files: Vec<DiskEntry>,
}

#[derive(Serialize, Deserialize)]
struct DiskEntry {
    dev: u64,
    ino: u64,
    /// Hex, so tools that parse JSON numbers as doubles (jq) keep all 64 bits.
    fingerprint: String,
    offset: u64,
    /// Informational only; identity is (dev, ino, fingerprint).
    path: String,
    /// Optional, so version 1 files without it still load and older
    /// readers ignore it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    copy: bool,
}

/// `Ok(None)` when there is no checkpoint yet (first run).
pub(crate) fn load(path: &Path) -> Result<Option<Vec<Entry>>, LoadError> {
    let Some(disk) = versioned::load::<Disk>(path, CHECKPOINT_VERSION)? else {
        return Ok(None);
    };
    disk.files
        .into_iter()
        .map(|e| {
            let fingerprint = u64::from_str_radix(&e.fingerprint, 16)
                .map_err(|_| LoadError::Corrupt(format!("bad fingerprint {:?}", e.fingerprint)))?;
            Ok(Entry {
                dev: e.dev,
                ino: e.ino,
                fingerprint,
                offset: e.offset,
                path: PathBuf::from(e.path),
                copy: e.copy,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Atomic replace (see `chainwatch_atomic`): a crash leaves either the old or the new checkpoint.
pub(crate) fn store(path: &Path, entries: &[Entry]) -> io::Result<()> {
    let disk = Disk {
        files: entries
            .iter()
            .map(|e| DiskEntry {
                dev: e.dev,
                ino: e.ino,
                fingerprint: format!("{:016x}", e.fingerprint),
                offset: e.offset,
                path: e.path.to_string_lossy().into_owned(),
                copy: e.copy,
            })
            .collect(),
    };
    versioned::store(path, CHECKPOINT_VERSION, &disk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn entry(n: u64) -> Entry {
        Entry {
            dev: 1,
            ino: n,
            fingerprint: u64::MAX - n,
            offset: 100 * n,
            path: PathBuf::from(format!("/var/log/x{n}")),
            copy: n == 2,
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = checkpoint_path(dir.path(), "src");
        assert!(load(&p).unwrap().is_none());
        let entries = vec![entry(1), entry(2)];
        store(&p, &entries).unwrap();
        assert_eq!(load(&p).unwrap().unwrap(), entries);
        // No temp files left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let text = fs::read_to_string(&p).unwrap();
        assert!(text.contains("\"version\": 1"), "{text}");
        // `copy` is written only when set, and optional when read.
        assert_eq!(text.matches("\"copy\"").count(), 1, "{text}");
        fs::write(
            &p,
            br#"{"version":1,"files":[{"dev":1,"ino":2,"fingerprint":"00000000000000ff","offset":7,"path":"a"}]}"#,
        )
        .unwrap();
        let old = load(&p).unwrap().unwrap();
        assert_eq!((old[0].offset, old[0].copy), (7, false));
    }

    #[test]
    fn rejects_garbage_and_other_versions() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.json");
        fs::write(&p, b"{not json").unwrap();
        assert!(matches!(load(&p), Err(LoadError::Corrupt(_))));
        fs::write(&p, br#"{"version":2,"files":[]}"#).unwrap();
        assert!(matches!(load(&p), Err(LoadError::Version { found: 2, .. })));
        fs::write(&p, br#"{"version":1,"files":[{"dev":1}]}"#).unwrap();
        assert!(matches!(load(&p), Err(LoadError::Corrupt(_))));
        fs::write(
            &p,
            br#"{"version":1,"files":[{"dev":1,"ino":2,"fingerprint":"zz","offset":0,"path":"a"}]}"#,
        )
        .unwrap();
        assert!(matches!(load(&p), Err(LoadError::Corrupt(_))));
    }
}
