//! Recognising compressed files by their magic bytes, so a rotated
//! `node.log.2.gz` matched by `node.log*` is skipped instead of read as text.
//! Names are not trusted: logrotate's `compressext` and `dateext` choose them
//! freely, and a plain file may well be called `.gz`.

/// A compression format logrotate (or its `compresscmd`) may produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Bzip2,
    Xz,
    Zstd,
    Lz4,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
        }
    }
}

/// What the first bytes of a file say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sniffed {
    Compressed(Compression),
    /// Too few bytes yet: what is there is the start of a magic.
    Undecided,
    Plain,
}

/// bzip2: "BZh", the block size digit, then the 48-bit magic of the first
/// block (pi) or of the end of stream (sqrt pi) for empty input.
fn is_bzip2(head: &[u8]) -> Option<bool> {
    const BLOCK: &[u8] = &[0x31, 0x41, 0x59, 0x26, 0x53, 0x59];
    const END: &[u8] = &[0x17, 0x72, 0x45, 0x38, 0x50, 0x90];
    let fits = |at: usize, want: &[u8]| {
        let have = &head[at.min(head.len())..];
        let n = have.len().min(want.len());
        have[..n] == want[..n]
    };
    if !fits(0, b"BZh") || head.get(3).is_some_and(|d| !(b'1'..=b'9').contains(d)) {
        return Some(false);
    }
    if !fits(4, BLOCK) && !fits(4, END) {
        return Some(false);
    }
    (head.len() >= 10).then_some(true)
}

/// Longest magic we need to see, in bytes.
pub const SNIFF_BYTES: usize = 10;

/// Classifies a file by its first bytes (RFC 1952 for gzip with its only
/// method, deflate; the xz, zstd and LZ4 frame formats' magic numbers).
/// None of the magics contains a newline, so by the time a file's first line
/// is complete its bytes are never `Undecided`.
pub(crate) fn sniff(head: &[u8]) -> Sniffed {
    const FIXED: &[(&[u8], Compression)] = &[
        (&[0x1f, 0x8b, 0x08], Compression::Gzip),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], Compression::Xz),
        (&[0x28, 0xb5, 0x2f, 0xfd], Compression::Zstd),
        (&[0x04, 0x22, 0x4d, 0x18], Compression::Lz4),
    ];
    let mut undecided = false;
    for &(magic, format) in FIXED {
        let n = head.len().min(magic.len());
        if head[..n] == magic[..n] {
            if n == magic.len() {
                return Sniffed::Compressed(format);
            }
            undecided = true;
        }
    }
    match is_bzip2(head) {
        Some(true) => return Sniffed::Compressed(Compression::Bzip2),
        None => undecided = true,
        Some(false) => {}
    }
    if undecided {
        Sniffed::Undecided
    } else {
        Sniffed::Plain
    }
}

/// The compression a file's first bytes show, if any: `head` is the file's first
/// [`SNIFF_BYTES`] bytes, or all of it when it is shorter. What `replay` uses to
/// read a rotation decompressed rather than as text.
pub fn compression_of(head: &[u8]) -> Option<Compression> {
    match sniff(head) {
        Sniffed::Compressed(c) => Some(c),
        // A whole file shorter than a magic is no compressed stream.
        Sniffed::Undecided | Sniffed::Plain => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    /// The real tools' output, where installed (Debian: gzip, bzip2,
    /// xz-utils, zstd, lz4); gzip always is.
    fn compressed_by(tool: &str) -> Option<Vec<u8>> {
        let mut child = Command::new(tool)
            .arg("-c")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"seq=1 hello\nseq=2 world\n")
            .unwrap();
        let out = child.wait_with_output().ok()?;
        out.status.success().then_some(out.stdout)
    }

    #[test]
    fn real_tools_output_is_recognised() {
        let gz = compressed_by("gzip").expect("gzip is part of every Debian system");
        assert_eq!(sniff(&gz), Sniffed::Compressed(Compression::Gzip));
        for (tool, want) in [
            ("bzip2", Compression::Bzip2),
            ("xz", Compression::Xz),
            ("zstd", Compression::Zstd),
            ("lz4", Compression::Lz4),
        ] {
            if let Some(bytes) = compressed_by(tool) {
                assert_eq!(sniff(&bytes), Sniffed::Compressed(want), "{tool}");
            }
        }
    }

    #[test]
    fn magics_from_the_format_specs() {
        let cases: &[(&[u8], Compression)] = &[
            (b"\x1f\x8b\x08\x00\x00\x00\x00\x00", Compression::Gzip),
            (b"BZh91AY&SY\x00", Compression::Bzip2),
            (b"BZh1\x17\x72\x45\x38\x50\x90", Compression::Bzip2),
            (b"\xfd7zXZ\x00\x00", Compression::Xz),
            (b"\x28\xb5\x2f\xfd\x20", Compression::Zstd),
            (b"\x04\x22\x4d\x18\x64", Compression::Lz4),
        ];
        for &(bytes, want) in cases {
            assert_eq!(sniff(bytes), Sniffed::Compressed(want), "{bytes:?}");
            // Every proper prefix is undecided, not plain.
            for n in 0..bytes.len().min(SNIFF_BYTES) {
                if sniff(&bytes[..n]) == Sniffed::Compressed(want) {
                    continue;
                }
                assert_eq!(sniff(&bytes[..n]), Sniffed::Undecided, "{:?}", &bytes[..n]);
            }
        }
    }

    #[test]
    fn text_is_plain() {
        for text in [
            &b"seq=1\n"[..],
            b"2025-11-08 23:20:01 [INFO] BLOCK FOUND\n",
            b"BZh9 is not bzip2\n",
            b"BZh91AY&SX\n",
            b"BZ\n",
            b"\x1f\x8b\x09",
            b"\n",
        ] {
            assert_eq!(sniff(text), Sniffed::Plain, "{text:?}");
        }
    }
}
