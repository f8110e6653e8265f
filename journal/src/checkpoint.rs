//! Versioned on-disk record of the last processed journal entry.

use std::io;
use std::path::{Path, PathBuf};

use chainwatch_atomic::versioned::{self, LoadError};
use serde::{Deserialize, Serialize};

pub const CURSOR_VERSION: u32 = 1;

/// The longest cursor accepted. journald's are about 130 bytes.
const MAX_CURSOR_BYTES: usize = 1024;

/// `<state_dir>/<name>.journal-cursor.json`
pub fn cursor_path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join(format!("{name}.journal-cursor.json"))
}

#[derive(Serialize, Deserialize)]
struct Disk {
    /// `__CURSOR` of the last entry handed to the sink (or skipped because it
    /// had no message).
    cursor: String,
}

/// `Ok(None)` when there is no cursor yet (first run).
pub(crate) fn load(path: &Path) -> Result<Option<String>, LoadError> {
    let Some(disk) = versioned::load::<Disk>(path, CURSOR_VERSION)? else {
        return Ok(None);
    };
    check_cursor(&disk.cursor).map_err(LoadError::Corrupt)?;
    Ok(Some(disk.cursor))
}

/// Atomic replace (see `chainwatch_atomic`): a crash leaves either the old or the new cursor.
pub(crate) fn store(path: &Path, cursor: &str) -> io::Result<()> {
    let disk = Disk {
        cursor: cursor.to_string(),
    };
    versioned::store(path, CURSOR_VERSION, &disk)
}

/// Accepts what `sd_journal_seek_cursor` accepts, a little more strictly:
/// `;`-separated `k=v` words, `s`/`b` 128-bit ids in hex, `i`/`m`/`t`/`x`
/// 64-bit hex numbers, other keys ignored, and enough of them to locate an
/// entry (`s`+`i`, `b`+`m`, or `t`). journalctl exits with "Failed to seek
/// to cursor" on anything else, which would turn one bad file into an
/// endless restart loop.
pub(crate) fn check_cursor(cursor: &str) -> Result<(), String> {
    if cursor.is_empty() {
        return Err("empty cursor".into());
    }
    if cursor.len() > MAX_CURSOR_BYTES {
        return Err(format!("cursor longer than {MAX_CURSOR_BYTES} bytes"));
    }
    let bad = || Err(format!("malformed cursor {cursor:?}"));
    let (mut s, mut i, mut b, mut m, mut t) = (false, false, false, false, false);
    for word in cursor.split(';') {
        let Some((key, value)) = word.split_once('=') else {
            return bad();
        };
        let ok = match key {
            "s" | "b" => is_id128(value),
            "i" | "m" | "t" | "x" => {
                !value.is_empty()
                    && value.len() <= 16
                    && value.bytes().all(|c| c.is_ascii_hexdigit())
            }
            k if k.len() == 1 => value.bytes().all(|c| c.is_ascii_graphic()),
            _ => false,
        };
        if !ok {
            return bad();
        }
        match key {
            "s" => s = true,
            "i" => i = true,
            "b" => b = true,
            "m" => m = true,
            "t" => t = true,
            _ => {}
        }
    }
    if (s && i) || (b && m) || t {
        Ok(())
    } else {
        bad()
    }
}

/// 32 hex digits, or the same as a UUID with dashes.
fn is_id128(v: &str) -> bool {
    let hex = |s: &str| s.bytes().all(|c| c.is_ascii_hexdigit());
    match v.len() {
        32 => hex(v),
        36 => {
            let parts: Vec<&str> = v.split('-').collect();
            parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12]) && parts.iter().all(|p| hex(p))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const REAL: &str = "s=9990c99acc9649bfa32191c29267ef03;i=1;b=0123456789abcdef0123456789abcdef;m=3e8;t=660d2145a3c6a;x=2c7621a3fb80ff55";

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = cursor_path(dir.path(), "src");
        assert_eq!(p.file_name().unwrap(), "src.journal-cursor.json");
        assert!(load(&p).unwrap().is_none());
        store(&p, REAL).unwrap();
        assert_eq!(load(&p).unwrap().as_deref(), Some(REAL));
        // No temp files left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let v: serde_json::Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["cursor"], REAL);
    }

    #[test]
    fn rejects_garbage_and_other_versions() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.json");
        for (text, version) in [
            (&b"{not json"[..], false),
            (br#"{"version":1}"#, false),
            (br#"{"cursor":"t=1"}"#, false),
            (br#"{"version":1,"cursor":"garbage"}"#, false),
            (br#"{"version":1,"cursor":7}"#, false),
            (b"\xff\xfe", false),
            (br#"{"version":2,"cursor":"t=1"}"#, true),
        ] {
            fs::write(&p, text).unwrap();
            match load(&p) {
                Err(LoadError::Version { found: 2, .. }) if version => {}
                Err(LoadError::Corrupt(_)) if !version => {}
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(text)),
            }
        }
    }

    #[test]
    fn cursor_syntax() {
        assert!(check_cursor(REAL).is_ok());
        assert!(check_cursor("t=660d2145a3c6a").is_ok());
        assert!(check_cursor("b=01234567-89ab-cdef-0123-456789abcdef;m=0").is_ok());
        assert!(check_cursor("s=9990c99acc9649bfa32191c29267ef03;i=1;q=anything").is_ok());
        for bad in [
            "",
            "garbage",
            "s=9990c99acc9649bfa32191c29267ef03",
            "i=1;m=2",
            "t=",
            "t=xyz",
            "t=1;;i=2",
            "t=1;",
            "t=12345678901234567",
            "s=xyz;i=1",
            "t=1\n",
            "t=1;long=2",
            "t=1;q=a b",
        ] {
            assert!(check_cursor(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_cursor(&format!("t=1;q={}", "a".repeat(2000))).is_err());
    }
}
