//! Versioned JSON records kept in a state directory (the follower's checkpoint, the journal's
//! cursor): `{"version": N, ...fields}`, stored atomically, loaded with the version checked before
//! the shape, so that a file written by a later release is reported as such and not as corruption.

use std::fs;
use std::io;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read it: {0}")]
    Io(#[from] io::Error),
    #[error("corrupt: {0}")]
    Corrupt(String),
    #[error("unsupported version {found} (expected {expected})")]
    Version { found: u64, expected: u32 },
}

/// The record at `path`, or `Ok(None)` when there is none yet (a first run). `T` describes the
/// fields beside `version`.
pub fn load<T: DeserializeOwned>(path: &Path, version: u32) -> Result<Option<T>, LoadError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| LoadError::Corrupt(e.to_string()))?;
    match value.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(version) => {}
        Some(found) => {
            return Err(LoadError::Version {
                found,
                expected: version,
            })
        }
        None => return Err(LoadError::Corrupt("missing version".into())),
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| LoadError::Corrupt(e.to_string()))
}

#[derive(Serialize)]
struct Versioned<'a, T> {
    version: u32,
    #[serde(flatten)]
    record: &'a T,
}

/// Replace the record at `path` (pretty JSON, `version` first, a final newline) atomically.
pub fn store<T: Serialize>(path: &Path, version: u32, record: &T) -> io::Result<()> {
    let mut json =
        serde_json::to_vec_pretty(&Versioned { version, record }).map_err(io::Error::other)?;
    json.push(b'\n');
    crate::write(path, &json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Rec {
        cursor: String,
    }

    #[test]
    fn round_trip_with_the_version_first() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r.json");
        assert!(load::<Rec>(&p, 1).unwrap().is_none());
        let r = Rec {
            cursor: "t=1".into(),
        };
        store(&p, 1, &r).unwrap();
        assert_eq!(
            fs::read_to_string(&p).unwrap(),
            "{\n  \"version\": 1,\n  \"cursor\": \"t=1\"\n}\n"
        );
        assert_eq!(load::<Rec>(&p, 1).unwrap(), Some(r));
    }

    #[test]
    fn garbage_and_other_versions() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r.json");
        for (text, want) in [
            (&b"{not json"[..], "corrupt"),
            (br#"{"cursor":"t=1"}"#, "corrupt: missing version"),
            (br#"{"version":1}"#, "corrupt"),
            (br#"{"version":1,"cursor":7}"#, "corrupt"),
            (
                br#"{"version":2,"cursor":"t=1"}"#,
                "unsupported version 2 (expected 1)",
            ),
        ] {
            fs::write(&p, text).unwrap();
            let e = load::<Rec>(&p, 1).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e}");
        }
        assert!(matches!(load::<Rec>(d.path(), 1), Err(LoadError::Io(_))));
    }
}
