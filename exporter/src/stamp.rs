//! Has a file changed since we read it? Certificates and keys are rotated by tools that write
//! files in many ways (in-place rewrite, rename over, Kubernetes' symlink swap); comparing a
//! file's identity and mtime catches all of them with one `stat`. File times tick coarsely
//! (milliseconds), so while a file's mtime is recent its contents are compared too: two rewrites
//! of the same length within one tick are still seen. Used by the server's TLS (`web::tls`) and
//! the polled sources' client (`source::client`).

use std::path::Path;
use std::time::{Duration, SystemTime};

/// While a file's mtime is younger than this, its contents are hashed into its stamp.
const FRESH: Duration = Duration::from_secs(2);

/// The identity of a file at one moment: a change of any part means "re-read".
#[derive(Debug, Clone)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: Option<SystemTime>,
    /// SHA-256 of the contents, taken only while the mtime is fresh.
    digest: Option<Vec<u8>>,
}

impl PartialEq for Stamp {
    fn eq(&self, o: &Stamp) -> bool {
        (self.dev, self.ino, self.len, self.mtime) == (o.dev, o.ino, o.len, o.mtime)
            && match (&self.digest, &o.digest) {
                (Some(a), Some(b)) => a == b,
                // Same identity and mtime, and no second look at the contents: the file was not
                // fresh on one of the looks, so no same-tick rewrite can hide behind the mtime.
                _ => true,
            }
    }
}

pub fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    // `metadata` follows symlinks, so the `..data` symlink swap of Kubernetes secrets shows as a
    // new inode.
    let m = std::fs::metadata(path).ok()?;
    let mtime = m.modified().ok();
    let fresh = mtime.is_none_or(|t| t.elapsed().map_or(true, |age| age < FRESH));
    let digest = if fresh {
        std::fs::read(path).ok().map(|b| {
            ring::digest::digest(&ring::digest::SHA256, &b)
                .as_ref()
                .to_vec()
        })
    } else {
        None
    };
    Some(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime,
        digest,
    })
}
