//! A JSON document as far as a mapping reads it. The body is parsed straight into this, keeping
//! only the values some pointer of the mapping reaches, borrowed from the body where they can be;
//! everything else is skipped as it is read, allocating nothing. At most [`MAX_VALUES`] values are
//! kept: past that the parse stops. Nesting deeper than serde_json's limit (128) is an error
//! whether kept or skipped. So what a body costs is bounded by the body cap (the bytes) and by
//! that cap (what is kept), whatever its shape: a 4 MiB body of tiny objects costs no more than
//! the ones the mapping looks at.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// The most values (objects, arrays, strings, numbers, ...) kept from one document: room for an
/// `each` over 25,000 elements of three fields.
pub const MAX_VALUES: usize = 100_000;

/// What a mapping reads of a document: built once from its pointers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Need {
    /// Keep the value itself (a scalar; a container as its type only).
    here: bool,
    /// Keep the value with everything in it.
    whole: bool,
    /// Members by object key or array index (RFC 6901 tokens, unescaped).
    keys: Vec<(String, Need)>,
    /// Every member: the elements an `each` iterates. Merged into `keys` by `finish`.
    each: Option<Box<Need>>,
}

static WHOLE: Need = Need {
    here: true,
    whole: true,
    keys: Vec::new(),
    each: None,
};

impl Need {
    /// The need at `pointer` below this one, created on the way.
    pub fn at(&mut self, pointer: &str) -> &mut Need {
        let mut n = self;
        for token in tokens(pointer) {
            let i = match n.keys.iter().position(|(k, _)| *k == token) {
                Some(i) => i,
                None => {
                    n.keys.push((token.into_owned(), Need::default()));
                    n.keys.len() - 1
                }
            };
            n = &mut n.keys[i].1;
        }
        n
    }

    /// Keep the value at `pointer`.
    pub fn value(&mut self, pointer: &str) {
        self.at(pointer).here = true;
    }

    /// Keep the value at `pointer` whole.
    pub fn whole(&mut self, pointer: &str) {
        let n = self.at(pointer);
        n.here = true;
        n.whole = true;
    }

    /// The need of every member of the container at `pointer`.
    pub fn each(&mut self, pointer: &str) -> &mut Need {
        let n = self.at(pointer);
        n.here = true;
        n.each.get_or_insert_with(Default::default)
    }

    /// Call once all pointers are in: a member named in `keys` is also an `each` element.
    pub fn finish(&mut self) {
        if let Some(e) = &mut self.each {
            e.finish();
        }
        if let Some(e) = self.each.clone() {
            for (_, k) in &mut self.keys {
                k.merge(&e);
            }
        }
        for (_, k) in &mut self.keys {
            k.finish();
        }
    }

    fn merge(&mut self, other: &Need) {
        self.here |= other.here;
        self.whole |= other.whole;
        for (t, n) in &other.keys {
            match self.keys.iter_mut().find(|(k, _)| k == t) {
                Some((_, mine)) => mine.merge(n),
                None => self.keys.push((t.clone(), n.clone())),
            }
        }
        match (&mut self.each, &other.each) {
            (Some(a), Some(b)) => a.merge(b),
            (None, Some(b)) => self.each = Some(b.clone()),
            _ => {}
        }
    }

    fn wants_anything(&self) -> bool {
        self.here || self.whole || !self.keys.is_empty() || self.each.is_some()
    }

    /// The need of member `token`, and the need's own spelling of it when `keys` names it.
    fn member(&self, token: &str) -> Option<(Option<&str>, &Need)> {
        if self.whole {
            return Some((None, &WHOLE));
        }
        match self.keys.iter().find(|(k, _)| k == token) {
            Some((k, n)) => Some((Some(k.as_str()), n)),
            None => self.each.as_deref().map(|n| (None, n)),
        }
    }

    fn element(&self, i: usize) -> Option<&Need> {
        if self.whole {
            return Some(&WHOLE);
        }
        if self.keys.is_empty() {
            return self.each.as_deref();
        }
        self.member(&i.to_string()).map(|(_, n)| n)
    }
}

/// RFC 6901 reference tokens of `pointer` ("" is the document itself).
fn tokens(pointer: &str) -> impl Iterator<Item = Cow<'_, str>> {
    pointer.split('/').skip(1).map(token)
}

fn token(raw: &str) -> Cow<'_, str> {
    if raw.contains('~') {
        Cow::Owned(raw.replace("~1", "/").replace("~0", "~"))
    } else {
        Cow::Borrowed(raw)
    }
}

/// A kept value, borrowing from the body and the mapping where it can.
#[derive(Debug, Clone, PartialEq)]
pub enum Node<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(Cow<'a, str>),
    /// The kept elements with their index.
    Arr(Vec<(usize, Node<'a>)>),
    /// The kept members, in document order.
    Obj(Vec<(Cow<'a, str>, Node<'a>)>),
}

impl<'a> Node<'a> {
    /// The value at `pointer`, or None when it is absent: an object without the key, an array
    /// without the index (as `serde_json::Value::pointer`: a later duplicate key wins, an index
    /// has no sign and no leading zero). `Err` names the part of the pointer that reached a value
    /// of another type (a string where an object was expected).
    pub fn lookup(&self, pointer: &str) -> Result<Option<&Node<'a>>, String> {
        let mut n = self;
        let mut walked = 0;
        for raw in pointer.split('/').skip(1) {
            let token = token(raw);
            let next = match n {
                Node::Obj(m) => m.iter().rev().find(|(k, _)| **k == *token).map(|(_, c)| c),
                Node::Arr(e) => match index(&token) {
                    Some(i) => e.iter().find(|(j, _)| *j == i).map(|(_, c)| c),
                    None => {
                        return Err(format!(
                            "{}: expected an object, got an array",
                            shown(&pointer[..walked])
                        ))
                    }
                },
                other => {
                    return Err(format!(
                        "{}: expected an object or an array, got {}",
                        shown(&pointer[..walked]),
                        other.type_name()
                    ))
                }
            };
            walked += 1 + raw.len();
            match next {
                Some(c) => n = c,
                None => return Ok(None),
            }
        }
        Ok(Some(n))
    }

    /// The value at `pointer`, absent when it is absent or of another type somewhere on the way.
    pub fn pointer(&self, pointer: &str) -> Option<&Node<'a>> {
        self.lookup(pointer).ok().flatten()
    }

    /// Elements of an array or values of an object.
    pub fn members(&self) -> Option<Vec<&Node<'a>>> {
        match self {
            Node::Arr(e) => Some(e.iter().map(|(_, n)| n).collect()),
            Node::Obj(m) => Some(m.iter().map(|(_, n)| n).collect()),
            _ => None,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Num(_) => "a number",
            Node::Str(_) => "a string",
            Node::Arr(_) => "an array",
            Node::Obj(_) => "an object",
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        match self {
            Node::Obj(m) => m.iter().rev().find(|(k, _)| **k == *key).map(|(_, n)| n),
            _ => None,
        }
    }
}

/// How a pointer is named in messages.
pub fn shown(pointer: &str) -> &str {
    if pointer.is_empty() {
        "(the document)"
    } else {
        pointer
    }
}

fn index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

/// JSON text of what was kept (for messages and labels read from containers).
impl fmt::Display for Node<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Null => f.write_str("null"),
            Node::Bool(b) => write!(f, "{b}"),
            // Integers without a fraction, as the document wrote them (`2`, not `2.0`).
            Node::Num(n) => write!(f, "{n}"),
            Node::Str(s) => write!(f, "{}", serde_json::Value::String(s.to_string())),
            Node::Arr(e) => {
                f.write_str("[")?;
                for (i, (_, n)) in e.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{n}")?;
                }
                f.write_str("]")
            }
            Node::Obj(m) => {
                f.write_str("{")?;
                for (i, (k, n)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}:{n}", serde_json::Value::String(k.to_string()))?;
                }
                f.write_str("}")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    #[error("{0}")]
    Syntax(String),
    #[error("more than {0} values to keep")]
    TooMany(usize),
}

/// Parse `body`, keeping what `need` asks for (`Node::Null` when it asks for nothing at the root).
pub fn parse<'a>(body: &'a [u8], need: &'a Need) -> Result<Node<'a>, DocError> {
    parse_capped(body, need, MAX_VALUES)
}

pub fn parse_capped<'a>(body: &'a [u8], need: &'a Need, cap: usize) -> Result<Node<'a>, DocError> {
    let budget = Budget {
        left: Cell::new(cap),
        cap,
        exceeded: Cell::new(false),
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let kept = Seed {
        need,
        budget: &budget,
    }
    .deserialize(&mut de)
    .and_then(|n| de.end().map(|()| n));
    match kept {
        Ok(n) => Ok(n.unwrap_or(Node::Null)),
        Err(_) if budget.exceeded.get() => Err(DocError::TooMany(cap)),
        Err(e) => Err(DocError::Syntax(e.to_string())),
    }
}

struct Budget {
    left: Cell<usize>,
    cap: usize,
    exceeded: Cell<bool>,
}

impl Budget {
    fn take<E: de::Error>(&self) -> Result<(), E> {
        match self.left.get().checked_sub(1) {
            Some(l) => {
                self.left.set(l);
                Ok(())
            }
            None => {
                self.exceeded.set(true);
                Err(E::custom(format!("more than {} values to keep", self.cap)))
            }
        }
    }
}

#[derive(Clone, Copy)]
struct Seed<'a, 'b> {
    need: &'a Need,
    budget: &'b Budget,
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for Seed<'a, '_> {
    /// None: skipped.
    type Value = Option<Node<'a>>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        if !self.need.wants_anything() {
            Skip.deserialize(d)?;
            return Ok(None);
        }
        d.deserialize_any(self).map(Some)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for Seed<'a, '_> {
    type Value = Node<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        self.budget.take()?;
        Ok(Node::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.budget.take()?;
        Ok(Node::Num(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.budget.take()?;
        Ok(Node::Num(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.budget.take()?;
        Ok(Node::Num(v))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        self.budget.take()?;
        Ok(Node::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.budget.take()?;
        Ok(Node::Str(Cow::Owned(v.to_string())))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.budget.take()?;
        Ok(Node::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        self.budget.take()?;
        let mut kept = Vec::new();
        let mut i = 0usize;
        loop {
            let more = match self.need.element(i) {
                Some(need) => match seq.next_element_seed(Seed {
                    need,
                    budget: self.budget,
                })? {
                    Some(Some(n)) => {
                        kept.push((i, n));
                        true
                    }
                    Some(None) => true,
                    None => false,
                },
                None => seq.next_element_seed(Skip)?.is_some(),
            };
            if !more {
                break;
            }
            i += 1;
        }
        kept.shrink_to_fit();
        Ok(Node::Arr(kept))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        self.budget.take()?;
        let mut kept = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed(self.need))? {
            match key {
                Some((name, need)) => {
                    if let Some(n) = map.next_value_seed(Seed {
                        need,
                        budget: self.budget,
                    })? {
                        kept.push((name, n));
                    }
                }
                None => map.next_value_seed(Skip)?,
            }
        }
        kept.shrink_to_fit();
        Ok(Node::Obj(kept))
    }
}

/// Reads an object key: the member's need, and its name borrowed from the mapping or the body
/// (allocated only for a key with escapes that the mapping does not name).
struct KeySeed<'a>(&'a Need);

impl<'de: 'a, 'a> DeserializeSeed<'de> for KeySeed<'a> {
    type Value = Option<(Cow<'a, str>, &'a Need)>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for KeySeed<'a> {
    type Value = Option<(Cow<'a, str>, &'a Need)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(self
            .0
            .member(v)
            .map(|(name, n)| (Cow::Borrowed(name.unwrap_or(v)), n)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.member(v).map(|(name, n)| {
            let name = match name {
                Some(k) => Cow::Borrowed(k),
                None => Cow::Owned(v.to_string()),
            };
            (name, n)
        }))
    }
}

/// Skips a value, allocating nothing; unlike `IgnoredAny` through `deserialize_ignored_any`, it
/// goes through `deserialize_any`, so serde_json's nesting limit applies to what is skipped too.
#[derive(Clone, Copy)]
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Skip)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(pointers: &[&str], each: &[(&str, &[&str])]) -> Need {
        let mut n = Need::default();
        for p in pointers {
            n.value(p);
        }
        for (p, children) in each {
            let e = n.each(p);
            for c in *children {
                e.value(c);
            }
        }
        n.finish();
        n
    }

    #[test]
    fn keeps_only_what_pointers_reach() {
        let n = need(&["/a", "/b/0", "/t~1u"], &[("/list", &["/id"])]);
        let doc = parse(
            br#"{"a": 1, "skip": {"deep": [1,2,3]}, "b": [7, 8], "t/u": "x", "list": [{"id": "p", "junk": [1]}, {"id": 2}], "a": 3}"#,
            &n,
        )
        .unwrap();
        assert_eq!(
            doc.pointer("/a"),
            Some(&Node::Num(3.0)),
            "a later duplicate wins"
        );
        assert_eq!(doc.pointer("/b/0"), Some(&Node::Num(7.0)));
        assert_eq!(doc.pointer("/b/1"), None, "not asked for");
        assert_eq!(doc.pointer("/t~1u"), Some(&Node::Str("x".into())));
        assert_eq!(doc.pointer("/skip"), None);
        let list = doc.pointer("/list").unwrap().members().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].pointer("/id"), Some(&Node::Str("p".into())));
        assert_eq!(list[0].pointer("/junk"), None);
        assert_eq!(doc.pointer("/list/01"), None);
        assert_eq!(
            doc.to_string(),
            r#"{"a":1,"b":[7],"t/u":"x","list":[{"id":"p"},{"id":2}],"a":3}"#
        );
    }

    #[test]
    fn a_container_asked_for_as_a_value_keeps_its_type_only() {
        let n = need(&["/a"], &[]);
        let doc = parse(br#"{"a": {"x": [1, 2]}}"#, &n).unwrap();
        assert_eq!(doc.pointer("/a"), Some(&Node::Obj(vec![])));
        let mut w = Need::default();
        w.whole("/a");
        w.finish();
        let doc = parse(br#"{"a": {"x": [1, 2]}}"#, &w).unwrap();
        assert_eq!(doc.pointer("/a/x/1"), Some(&Node::Num(2.0)));
    }

    #[test]
    fn a_pointer_through_a_value_of_another_type_says_where() {
        let n = need(&["/a/b", "/l/x"], &[]);
        let doc = parse(br#"{"a": "s", "l": [1]}"#, &n).unwrap();
        assert_eq!(
            doc.lookup("/a/b"),
            Err("/a: expected an object or an array, got a string".into())
        );
        assert_eq!(
            doc.lookup("/l/x"),
            Err("/l: expected an object, got an array".into())
        );
        assert_eq!(doc.lookup("/missing/b"), Ok(None));
        let doc = parse(br#""oops""#, &n).unwrap();
        assert_eq!(
            doc.lookup("/a/b"),
            Err("(the document): expected an object or an array, got a string".into())
        );
        // Borrowed from the body unless escaped.
        let doc = parse(br#"{"a": {"b": "plain"}, "l": {"x": "esc\u0041"}}"#, &n).unwrap();
        assert!(matches!(
            doc.pointer("/a/b"),
            Some(Node::Str(Cow::Borrowed("plain")))
        ));
        assert_eq!(doc.pointer("/l/x"), Some(&Node::Str("escA".into())));
    }

    #[test]
    fn keys_and_each_merge() {
        let n = need(&["/v/0/extra"], &[("/v", &["/id"])]);
        let doc = parse(
            br#"{"v": [{"id": 1, "extra": 2}, {"id": 3, "extra": 4}]}"#,
            &n,
        )
        .unwrap();
        assert_eq!(doc.pointer("/v/0/extra"), Some(&Node::Num(2.0)));
        assert_eq!(doc.pointer("/v/1/extra"), None);
        assert_eq!(doc.pointer("/v/1/id"), Some(&Node::Num(3.0)));
    }

    #[test]
    fn the_cap_stops_the_parse_and_syntax_errors_are_errors() {
        let n = need(&[], &[("", &["/id"])]);
        let many = format!("[{}]", vec![r#"{"id": 1, "x": 2}"#; 100].join(","));
        assert!(parse_capped(many.as_bytes(), &n, 250).is_ok());
        assert_eq!(
            parse_capped(many.as_bytes(), &n, 150),
            Err(DocError::TooMany(150))
        );
        // What is not kept costs nothing against the cap.
        let skipped = format!("{{\"junk\": [{}]}}", vec!["{}"; 10_000].join(","));
        assert!(parse_capped(skipped.as_bytes(), &need(&["/a"], &[]), 1).is_ok());
        for bad in [&b"{"[..], b"[1,]", b"{\"a\": 1} x", b"", b"nan", b"1e999"] {
            assert!(
                matches!(parse(bad, &n), Err(DocError::Syntax(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // Too deep is an error whether the mapping reads that far or not.
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(matches!(
            parse(deep.as_bytes(), &n),
            Err(DocError::Syntax(_))
        ));
        assert!(matches!(
            parse(deep.as_bytes(), &need(&["/a"], &[])),
            Err(DocError::Syntax(_))
        ));
        let deep = format!(
            "{{\"a\": 1, \"b\": {}{}}}",
            "[".repeat(200),
            "]".repeat(200)
        );
        assert!(matches!(
            parse(deep.as_bytes(), &need(&["/a"], &[])),
            Err(DocError::Syntax(_))
        ));
    }
}
