//! Journal entries read from an export of the journal rather than followed: `journalctl -o
//! json` (one JSON object per line, `decode::json_entry`) and `journalctl -o export` (the
//! Journal Export Format: `FIELD=value` lines, binary fields as `FIELD`, a 64-bit
//! little-endian length and the bytes, entries separated by an empty line). Each gives the
//! entry's own time (`__REALTIME_TIMESTAMP`, microseconds since the epoch) and its MESSAGE.

use std::io::{self, BufRead, Read};

/// One journal entry: when it was logged, and its MESSAGE value(s).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    pub realtime_us: Option<u64>,
    pub messages: Vec<Vec<u8>>,
}

/// Reads the Journal Export Format entry by entry; a field value longer than `max_field` is
/// cut there (the rest is skipped, not buffered).
pub struct ExportReader<R> {
    r: R,
    max_field: usize,
}

impl<R: BufRead> ExportReader<R> {
    pub fn new(r: R, max_field: usize) -> Self {
        ExportReader { r, max_field }
    }

    /// The next entry, None at the end of the input.
    pub fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        let mut e = Entry::default();
        let mut any = false;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = self
                .r
                .by_ref()
                .take(self.max_field as u64 + 256)
                .read_until(b'\n', &mut line)?;
            if n == 0 {
                return Ok(any.then_some(e));
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            } else if n as u64 == self.max_field as u64 + 256 {
                // A text field longer than the cap: drop the rest of it.
                skip_line(&mut self.r)?;
            }
            if line.is_empty() {
                if any {
                    return Ok(Some(e));
                }
                continue; // blank lines between entries
            }
            any = true;
            let (name, value) = match line.iter().position(|&b| b == b'=') {
                Some(i) => (line[..i].to_vec(), line[i + 1..].to_vec()),
                None => (line.clone(), self.binary_value()?),
            };
            match name.as_slice() {
                b"__REALTIME_TIMESTAMP" => {
                    e.realtime_us = std::str::from_utf8(&value)
                        .ok()
                        .and_then(|s| s.parse().ok())
                }
                b"MESSAGE" => {
                    let mut v = value;
                    v.truncate(self.max_field);
                    e.messages.push(v);
                }
                _ => {}
            }
        }
    }

    /// A binary field's value: its little-endian length, the bytes, a newline.
    fn binary_value(&mut self) -> io::Result<Vec<u8>> {
        let mut len = [0u8; 8];
        self.r.read_exact(&mut len)?;
        let len = u64::from_le_bytes(len);
        let keep = len.min(self.max_field as u64);
        let mut v = Vec::with_capacity(keep as usize);
        self.r.by_ref().take(keep).read_to_end(&mut v)?;
        io::copy(&mut self.r.by_ref().take(len - keep), &mut io::sink())?;
        let mut nl = [0u8; 1];
        self.r.read_exact(&mut nl)?;
        if nl[0] != b'\n' {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "journal export: a binary field is not followed by a newline",
            ));
        }
        Ok(v)
    }
}

fn skip_line(r: &mut impl BufRead) -> io::Result<()> {
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            r.consume(i + 1);
            return Ok(());
        }
        let n = buf.len();
        r.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_format_entries_with_text_and_binary_fields() {
        let mut input = Vec::new();
        input.extend_from_slice(
            b"__CURSOR=s=1\n__REALTIME_TIMESTAMP=1700000000123456\nMESSAGE=hello\n_PID=1\n\n",
        );
        input.extend_from_slice(b"__REALTIME_TIMESTAMP=1700000001000000\nMESSAGE\n");
        let bin = b"two\nlines\xff";
        input.extend_from_slice(&(bin.len() as u64).to_le_bytes());
        input.extend_from_slice(bin);
        input.extend_from_slice(b"\n\n");
        let mut r = ExportReader::new(&input[..], 1024);
        let a = r.next_entry().unwrap().unwrap();
        assert_eq!(a.realtime_us, Some(1_700_000_000_123_456));
        assert_eq!(a.messages, vec![b"hello".to_vec()]);
        let b = r.next_entry().unwrap().unwrap();
        assert_eq!(b.realtime_us, Some(1_700_000_001_000_000));
        assert_eq!(b.messages, vec![bin.to_vec()]);
        assert_eq!(r.next_entry().unwrap(), None);
        // Capped values are cut, the stream stays in step.
        let mut r = ExportReader::new(&input[..], 3);
        assert_eq!(
            r.next_entry().unwrap().unwrap().messages,
            vec![b"hel".to_vec()]
        );
        assert_eq!(
            r.next_entry().unwrap().unwrap().messages,
            vec![b"two".to_vec()]
        );
    }

    #[test]
    fn json_entries_carry_their_time() {
        let e = crate::json_entry(
            br#"{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"1700000000123456","MESSAGE":[104,105]}"#,
        )
        .unwrap();
        assert_eq!(e.realtime_us, Some(1_700_000_000_123_456));
        assert_eq!(e.messages, vec![b"hi".to_vec()]);
        assert!(crate::json_entry(b"not json").is_err());
    }
}
