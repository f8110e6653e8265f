//! journalctl `--output=json` records → sink lines, plus the framing of its
//! stdout into records with a hard cap on their length.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::checkpoint::check_cursor;

/// What one stretch of journalctl's output produced, delivered to the sink
/// in one [`Sink::lines`](crate::Sink::lines) call.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Batch {
    /// Complete lines.
    pub data: Vec<u8>,
    /// Cursor of the last entry decoded into this batch.
    pub cursor: Option<String>,
    pub truncated: u32,
    pub invalid: Vec<String>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.cursor.is_none()
            && self.truncated == 0
            && self.invalid.is_empty()
    }
}

#[derive(Deserialize)]
struct Record {
    #[serde(rename = "__CURSOR", default)]
    cursor: Option<String>,
    /// Microseconds since the epoch, as a decimal string.
    #[serde(rename = "__REALTIME_TIMESTAMP", default)]
    realtime: Option<String>,
    #[serde(rename = "MESSAGE", default)]
    message: Message,
}

/// journald's JSON encodings of a field: a string; an array of numbers for
/// a value that is not printable UTF-8; an array of those two forms when
/// the entry holds the field several times; `null` when journalctl elided
/// it. Decoded to the list of values.
#[derive(Default)]
struct Message(Vec<Vec<u8>>);

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MessageVisitor)
    }
}

struct MessageVisitor;

impl<'de> Visitor<'de> for MessageVisitor {
    type Value = Message;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, an array of bytes, an array of such values, or null")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Message, E> {
        Ok(Message(vec![v.as_bytes().to_vec()]))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Message, E> {
        Ok(Message(Vec::new()))
    }

    fn visit_none<E: de::Error>(self) -> Result<Message, E> {
        Ok(Message(Vec::new()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Message, A::Error> {
        let mut bytes = Vec::new();
        let mut values = Vec::new();
        while let Some(el) = seq.next_element::<Element>()? {
            match el {
                Element::Byte(b) => bytes.push(b),
                Element::Value(v) => values.push(v),
            }
        }
        match (bytes.is_empty(), values.is_empty()) {
            (false, false) => Err(de::Error::custom("MESSAGE mixes bytes and values")),
            (false, true) => Ok(Message(vec![bytes])),
            // `[]`: no value at all.
            _ => Ok(Message(values)),
        }
    }
}

enum Element {
    Byte(u8),
    Value(Vec<u8>),
}

impl<'de> Deserialize<'de> for Element {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ElementVisitor)
    }
}

struct ElementVisitor;

impl<'de> Visitor<'de> for ElementVisitor {
    type Value = Element;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte (0-255), a string or an array of bytes")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Element, E> {
        u8::try_from(v)
            .map(Element::Byte)
            .map_err(|_| E::custom(format!("byte out of range: {v}")))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Element, E> {
        u8::try_from(v)
            .map(Element::Byte)
            .map_err(|_| E::custom(format!("byte out of range: {v}")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Element, E> {
        Ok(Element::Value(v.as_bytes().to_vec()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Element, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            bytes.push(b);
        }
        Ok(Element::Value(bytes))
    }
}

/// One entry of `journalctl -o json` (one line, without its newline): when it was logged and
/// its messages (several when the entry holds MESSAGE several times), for reading a journal
/// exported earlier rather than following one.
pub fn json_entry(record: &[u8]) -> Result<crate::Entry, String> {
    let rec: Record = serde_json::from_slice(record)
        .map_err(|e| format!("not a journalctl -o json entry ({e}): {}", preview(record)))?;
    Ok(crate::Entry {
        realtime_us: rec.realtime.and_then(|t| t.trim().parse().ok()),
        messages: rec.message.0,
    })
}

/// Decodes one JSON record (without its newline) into `batch`.
pub(crate) fn decode_record(record: &[u8], max_line: usize, batch: &mut Batch) {
    let rec: Record = match serde_json::from_slice(record) {
        Ok(r) => r,
        Err(e) => {
            batch.invalid.push(format!(
                "undecodable journalctl output ({e}): {}",
                preview(record)
            ));
            return;
        }
    };
    for value in &rec.message.0 {
        batch.truncated += push_lines(value, max_line, &mut batch.data);
    }
    match rec.cursor {
        Some(c) => match check_cursor(&c) {
            Ok(()) => batch.cursor = Some(c),
            // The message is delivered; the checkpoint just stays on the
            // previous entry.
            Err(e) => batch
                .invalid
                .push(format!("entry with an unusable __CURSOR: {e}")),
        },
        None => batch
            .invalid
            .push("entry without __CURSOR: delivered, not checkpointed".into()),
    }
}

/// One message → lines. Returns how many were truncated.
fn push_lines(value: &[u8], max_line: usize, out: &mut Vec<u8>) -> u32 {
    let value = value.strip_suffix(b"\n").unwrap_or(value);
    let mut truncated = 0;
    for line in value.split(|&b| b == b'\n') {
        if line.len() > max_line {
            out.extend_from_slice(&line[..max_line]);
            truncated += 1;
        } else {
            out.extend_from_slice(line);
        }
        out.push(b'\n');
    }
    truncated
}

fn preview(record: &[u8]) -> String {
    const MAX: usize = 120;
    let s = String::from_utf8_lossy(&record[..record.len().min(MAX)]);
    if record.len() > MAX {
        format!("{s:?}…")
    } else {
        format!("{s:?}")
    }
}

/// Splits journalctl's stdout into newline-terminated records; a record
/// longer than `cap` is dropped (reported) and the framer resynchronises at
/// the next newline. Memory: at most `cap` bytes are held.
pub(crate) struct Framer {
    cap: usize,
    max_line: usize,
    pending: Vec<u8>,
    skipping: bool,
}

impl Framer {
    pub fn new(cap: usize, max_line: usize) -> Self {
        Framer {
            cap,
            max_line,
            pending: Vec::new(),
            skipping: false,
        }
    }

    /// Feeds bytes read from journalctl; complete records are decoded into
    /// `batch`.
    pub fn feed(&mut self, mut input: &[u8], batch: &mut Batch) {
        while !input.is_empty() {
            match memchr::memchr(b'\n', input) {
                Some(i) => {
                    let seg = &input[..i];
                    input = &input[i + 1..];
                    if self.skipping {
                        self.skipping = false;
                        continue;
                    }
                    if self.pending.len() + seg.len() > self.cap {
                        self.pending = Vec::new();
                        batch.invalid.push(self.too_long());
                        continue;
                    }
                    if self.pending.is_empty() {
                        decode_record(seg, self.max_line, batch);
                    } else {
                        self.pending.extend_from_slice(seg);
                        decode_record(&self.pending, self.max_line, batch);
                        self.pending.clear();
                        if self.pending.capacity() > 1 << 20 {
                            // Give a huge record's buffer back.
                            self.pending = Vec::new();
                        }
                    }
                }
                None => {
                    if !self.skipping {
                        if self.pending.len() + input.len() > self.cap {
                            self.pending = Vec::new();
                            self.skipping = true;
                            batch.invalid.push(self.too_long());
                        } else {
                            self.pending.extend_from_slice(input);
                        }
                    }
                    input = &[];
                }
            }
        }
    }

    /// Bytes of an unterminated record held at the end of the stream.
    #[cfg(test)]
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    fn too_long(&self) -> String {
        format!(
            "journal record longer than {} bytes skipped (see max_line_bytes)",
            self.cap
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C1: &str = "s=9990c99acc9649bfa32191c29267ef03;i=1;b=0123456789abcdef0123456789abcdef;m=3e8;t=660d2145a3c6a;x=2c7621a3fb80ff55";

    fn rec(message: &str) -> String {
        format!(
            r#"{{"__CURSOR":"{C1}","__REALTIME_TIMESTAMP":"1","MESSAGE":{message},"_BOOT_ID":"x"}}"#
        )
    }

    fn decode(json: &str, max: usize) -> Batch {
        let mut b = Batch::default();
        decode_record(json.as_bytes(), max, &mut b);
        b
    }

    #[test]
    fn message_forms() {
        let b = decode(&rec(r#""hello wörld""#), 100);
        assert_eq!(b.data, "hello wörld\n".as_bytes());
        assert_eq!(b.cursor.as_deref(), Some(C1));
        assert!(b.invalid.is_empty());

        let b = decode(&rec("[98,105,110,255,254,0,120]"), 100);
        assert_eq!(b.data, b"bin\xff\xfe\x00x\n");

        // The field given twice: each value is a message.
        let b = decode(&rec(r#"["a",[98,255]]"#), 100);
        assert_eq!(b.data, b"a\nb\xff\n");

        // Newlines split; one trailing newline is dropped; empty message is
        // an empty line.
        let b = decode(&rec(r#""l1\nl2\n""#), 100);
        assert_eq!(b.data, b"l1\nl2\n");
        let b = decode(&rec(r#""""#), 100);
        assert_eq!(b.data, b"\n");
        let b = decode(&rec(r#""a\n\nb""#), 100);
        assert_eq!(b.data, b"a\n\nb\n");
    }

    #[test]
    fn missing_or_null_message_advances_the_cursor_only() {
        for json in [
            format!(r#"{{"__CURSOR":"{C1}","OTHER":"x"}}"#),
            rec("null"),
            rec("[]"),
        ] {
            let b = decode(&json, 100);
            assert!(b.data.is_empty(), "{json}");
            assert_eq!(b.cursor.as_deref(), Some(C1));
            assert!(b.invalid.is_empty(), "{json}: {:?}", b.invalid);
        }
    }

    #[test]
    fn truncation() {
        let b = decode(&rec(r#""0123456789\nab\n0123456789abc""#), 4);
        assert_eq!(b.data, b"0123\nab\n0123\n");
        assert_eq!(b.truncated, 2);
        let b = decode(&rec("[1,2,3,4,5,6]"), 4);
        assert_eq!(b.data, b"\x01\x02\x03\x04\n");
        assert_eq!(b.truncated, 1);
    }

    #[test]
    fn invalid_input_is_reported_not_fatal() {
        for json in [
            "".to_string(),
            "not json".into(),
            "[1,2]".into(),
            "{\"MESSAGE\":".into(),
            rec("[256]"),
            rec("[-1]"),
            rec("[1.5]"),
            rec(r#"[1,"a"]"#),
            rec(r#"{"a":1}"#),
            rec("true"),
            rec("7"),
            rec(r#"[[1,256]]"#),
            rec(r#"[["a"]]"#),
            format!(r#"{{"__CURSOR":"{C1}","__CURSOR":"{C1}","MESSAGE":"x"}}"#),
        ] {
            let b = decode(&json, 100);
            assert_eq!(b.invalid.len(), 1, "{json}: {b:?}");
            assert!(b.data.is_empty() && b.cursor.is_none(), "{json}: {b:?}");
        }
        // A bad or missing cursor: the message is still delivered.
        let b = decode(r#"{"__CURSOR":"nope","MESSAGE":"m"}"#, 100);
        assert_eq!((b.data.as_slice(), b.cursor.is_none()), (&b"m\n"[..], true));
        assert_eq!(b.invalid.len(), 1);
        let b = decode(r#"{"MESSAGE":"m"}"#, 100);
        assert_eq!((b.data.as_slice(), b.cursor.is_none()), (&b"m\n"[..], true));
        assert_eq!(b.invalid.len(), 1);
    }

    #[test]
    fn framer_reassembles_and_caps() {
        let r1 = rec(r#""one""#);
        let long = rec(&format!("\"{}\"", "x".repeat(300)));
        let r2 = rec(r#""two""#);
        let stream = format!("{r1}\n{long}\n{r2}\n{r1}");
        // Every split point of the stream gives the same result.
        for step in [1, 2, 7, 64, 1000, stream.len()] {
            let mut f = Framer::new(250, 100);
            let mut b = Batch::default();
            for piece in stream.as_bytes().chunks(step) {
                f.feed(piece, &mut b);
            }
            assert_eq!(b.data, b"one\ntwo\n", "step {step}");
            assert_eq!(b.invalid.len(), 1, "step {step}: {:?}", b.invalid);
            assert!(b.invalid[0].contains("longer than 250"));
            // The unterminated last record is held, not decoded.
            assert_eq!(f.pending_len(), r1.len(), "step {step}");
        }
    }
}
