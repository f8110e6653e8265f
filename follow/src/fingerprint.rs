use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// How much of the file head is fingerprinted when the first line is longer.
pub const HEAD_BYTES: usize = 1024;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64. Written out here because the value is persisted in
/// checkpoints and must never change with a dependency upgrade.
pub fn fnv1a64(data: &[u8]) -> u64 {
    data.iter().fold(FNV_OFFSET, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

/// Fingerprint of a file whose first bytes are `head`: the hash of the first
/// line including its newline, or of the first [`HEAD_BYTES`] bytes when the
/// first line is longer. `None` while the first line is still incomplete.
/// Only the first `HEAD_BYTES` of `head` are looked at.
pub fn fingerprint_of(head: &[u8]) -> Option<u64> {
    head_of(head).map(|h| h.fp)
}

/// A file's fingerprint and how many head bytes it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub fp: u64,
    pub len: usize,
}

pub(crate) fn head_of(head: &[u8]) -> Option<Head> {
    let head = &head[..head.len().min(HEAD_BYTES)];
    let len = match memchr::memchr(b'\n', head) {
        Some(nl) => nl + 1,
        None if head.len() == HEAD_BYTES => HEAD_BYTES,
        None => return None,
    };
    Some(Head {
        fp: fnv1a64(&head[..len]),
        len,
    })
}

/// Reads the head with pread so the caller's read position is untouched.
pub(crate) fn read_head(file: &File) -> io::Result<Option<Head>> {
    let mut buf = [0u8; HEAD_BYTES];
    let n = read_full_at(file, &mut buf, 0)?;
    Ok(head_of(&buf[..n]))
}

/// pread until `buf` is full or EOF.
pub(crate) fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_reference_values() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn first_line_only() {
        assert_eq!(fingerprint_of(b"abc"), None);
        assert_eq!(fingerprint_of(b""), None);
        let a = fingerprint_of(b"first\nsecond\n");
        assert_eq!(a, Some(fnv1a64(b"first\n")));
        assert_eq!(a, fingerprint_of(b"first\nother"));
        assert_ne!(a, fingerprint_of(b"First\n"));
    }

    #[test]
    fn long_first_line_uses_head_bytes() {
        let mut long = vec![b'x'; HEAD_BYTES - 1];
        assert_eq!(fingerprint_of(&long), None);
        long.push(b'x');
        assert_eq!(fingerprint_of(&long), Some(fnv1a64(&long)));
        long.extend_from_slice(b"tail\n");
        assert_eq!(fingerprint_of(&long), Some(fnv1a64(&long[..HEAD_BYTES])));
    }
}
