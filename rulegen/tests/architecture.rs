//! rulegen's layout is a promise this test keeps: data flows one way, spec → validate → model →
//! steps → write, with `promql` and `conventions` beside the model (see rulegen/README.md). It
//! reads rulegen's sources, collects every module path they name (`use crate::…`, `super::…`,
//! `self::…`, a declared child module's items, inline `crate::x::f()` calls) and fails on
//! - an import circle between files (each file is a node; a `mod.rs` whose children use its
//!   items is a circle too);
//! - an import the layering forbids (`MAY_IMPORT`, and one step importing another);
//! - a function longer than `MAX_FN_LINES`.
//!
//! The scanner is checked on small made-up sources first, so a scanner that finds nothing fails.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The stages (first segment of a module path) each stage may import. The crate root (`lib.rs`)
/// may import every stage; no stage may import the root. Inside a stage any file may import
/// another, except that one step (`steps::x`) never imports another (`steps::y`).
const MAY_IMPORT: &[(&str, &[&str])] = &[
    ("conventions", &[]),
    ("model", &[]),
    ("spec", &[]),
    ("promql", &["model"]),
    ("validate", &["spec", "model", "promql", "conventions"]),
    ("steps", &["model", "promql", "conventions", "write"]),
    ("write", &["conventions"]),
];

/// Longer functions are split by meaning (data tables are constants, not functions).
const MAX_FN_LINES: usize = 150;

// ------------------------------------------------------------------------------- scanning

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Semi,
    Other(char),
}

/// Tokens of Rust source, each with its line, with comments, strings and char literals
/// removed.
fn tokens(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        let end = if ch == '/' && next == Some('/') {
            c[i..]
                .iter()
                .position(|x| *x == '\n')
                .map_or(c.len(), |p| i + p)
        } else if ch == '/' && next == Some('*') {
            block_comment_end(&c, i)
        } else if ch == 'r' && raw_string_start(&c, i) {
            raw_string_end(&c, i)
        } else if ch == '"' {
            string_end(&c, i)
        } else if ch == '\'' {
            // A char literal ('x', '\n', '\u{..}'); else a lifetime's quote.
            if next == Some('\\') {
                c[i + 2..]
                    .iter()
                    .position(|x| *x == '\'')
                    .map_or(c.len(), |p| i + 3 + p)
            } else if c.get(i + 2) == Some(&'\'') {
                i + 3
            } else {
                i + 1
            }
        } else if ch.is_alphanumeric() || ch == '_' {
            let j = c[i..]
                .iter()
                .position(|x| !(x.is_alphanumeric() || *x == '_'))
                .map_or(c.len(), |p| i + p);
            out.push((Tok::Ident(c[i..j].iter().collect()), line));
            j
        } else if ch == ':' && next == Some(':') {
            out.push((Tok::PathSep, line));
            i + 2
        } else {
            if !ch.is_whitespace() {
                let t = match ch {
                    '{' => Tok::Open,
                    '}' => Tok::Close,
                    ',' => Tok::Comma,
                    ';' => Tok::Semi,
                    x => Tok::Other(x),
                };
                out.push((t, line));
            }
            i + 1
        };
        line += c[i..end].iter().filter(|x| **x == '\n').count();
        i = end;
    }
    out
}

fn block_comment_end(c: &[char], i: usize) -> usize {
    let (mut depth, mut j) = (1, i + 2);
    while j < c.len() && depth > 0 {
        if c[j] == '/' && c.get(j + 1) == Some(&'*') {
            depth += 1;
            j += 1;
        } else if c[j] == '*' && c.get(j + 1) == Some(&'/') {
            depth -= 1;
            j += 1;
        }
        j += 1;
    }
    j.min(c.len())
}

/// `r"…"` or `r#"…"#`, not the end of an identifier such as `for`.
fn raw_string_start(c: &[char], i: usize) -> bool {
    let hashes = c[i + 1..].iter().take_while(|x| **x == '#').count();
    let ident_before = i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_');
    c.get(i + 1 + hashes) == Some(&'"') && !ident_before
}

fn raw_string_end(c: &[char], i: usize) -> usize {
    let hashes = c[i + 1..].iter().take_while(|x| **x == '#').count();
    let mut j = i + 2 + hashes;
    while j < c.len() {
        if c[j] == '"' && c[j + 1..].iter().take_while(|x| **x == '#').count() >= hashes {
            return j + 1 + hashes;
        }
        j += 1;
    }
    c.len()
}

fn string_end(c: &[char], i: usize) -> usize {
    let mut j = i + 1;
    while j < c.len() && c[j] != '"' {
        if c[j] == '\\' {
            j += 1;
        }
        j += 1;
    }
    (j + 1).min(c.len())
}

fn ident(t: Option<&(Tok, usize)>) -> Option<&str> {
    match t {
        Some((Tok::Ident(s), _)) => Some(s),
        _ => None,
    }
}

fn is(t: Option<&(Tok, usize)>, want: &Tok) -> bool {
    t.is_some_and(|(x, _)| x == want)
}

/// The paths starting at `toks[*i]`: `a::b::c`, or a use tree `a::{b, c::{d, self}}` flattened.
fn path_tree(
    toks: &[(Tok, usize)],
    i: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) {
    let mut p = prefix;
    loop {
        match toks.get(*i).map(|t| &t.0) {
            Some(Tok::Ident(s)) => {
                // `a::{self}` is `a`.
                if s != "self" || p.is_empty() {
                    p.push(s.clone());
                }
                *i += 1;
            }
            Some(Tok::Open) => {
                *i += 1;
                loop {
                    match toks.get(*i).map(|t| &t.0) {
                        Some(Tok::Close) => {
                            *i += 1;
                            break;
                        }
                        Some(Tok::Comma) => *i += 1,
                        None => return,
                        _ => path_tree(toks, i, p.clone(), out),
                    }
                }
                return;
            }
            Some(Tok::Other('*')) => {
                *i += 1;
                break;
            }
            _ => break,
        }
        if is(toks.get(*i), &Tok::PathSep) {
            *i += 1;
        } else {
            break;
        }
    }
    out.push(p);
}

/// What one source file names: resolved module paths, and its functions' lengths in lines.
#[derive(Debug, Default)]
struct FileScan {
    paths: Vec<Vec<String>>,
    fn_lines: Vec<(String, usize)>,
}

fn scan(module: &[String], src: &str) -> FileScan {
    let toks = tokens(src);
    let mut f = FileScan::default();
    // Child modules declared by `mod name;`.
    let children: Vec<String> = toks
        .windows(3)
        .filter(|w| ident(w.first()) == Some("mod") && is(w.get(2), &Tok::Semi))
        .filter_map(|w| ident(w.get(1)).map(str::to_string))
        .collect();
    // Inline modules (`mod tests { … }`) shift what `self` and `super` mean inside them.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        match toks[i].0 {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            _ => {}
        }
        if ident(toks.get(i)) == Some("mod") && is(toks.get(i + 2), &Tok::Open) {
            if let Some(name) = ident(toks.get(i + 1)) {
                inline.push((name.to_string(), depth));
                depth += 1;
                i += 3;
                continue;
            }
        }
        if ident(toks.get(i)) == Some("fn") {
            if let (Some(name), Some(n)) = (ident(toks.get(i + 1)), fn_length(&toks, i)) {
                f.fn_lines.push((name.to_string(), n));
            }
        }
        let starts_path = ident(toks.get(i)).is_some()
            && is(toks.get(i + 1), &Tok::PathSep)
            && !(i > 0 && is(toks.get(i - 1), &Tok::PathSep));
        if !starts_path {
            i += 1;
            continue;
        }
        let mut here: Vec<String> = module.to_vec();
        here.extend(inline.iter().map(|(n, _)| n.clone()));
        let mut raw = Vec::new();
        path_tree(&toks, &mut i, Vec::new(), &mut raw);
        let kids: &[String] = if inline.is_empty() { &children } else { &[] };
        f.paths
            .extend(raw.iter().filter_map(|p| resolve(&here, kids, p)));
    }
    f
}

/// An absolute module path for `p` as written in module `here`, or `None` for a path into
/// another crate or to a local item (`Measure::Ratio`).
fn resolve(here: &[String], children: &[String], p: &[String]) -> Option<Vec<String>> {
    let first = p.first()?;
    let mut rest = &p[1..];
    let mut base: Vec<String> = match first.as_str() {
        "crate" => Vec::new(),
        "self" => here.to_vec(),
        "super" => {
            let mut b = here.to_vec();
            b.pop();
            while rest.first().map(String::as_str) == Some("super") {
                b.pop();
                rest = &rest[1..];
            }
            b
        }
        name if children.iter().any(|c| c == name) => {
            let mut b = here.to_vec();
            b.push(name.to_string());
            b
        }
        _ => return None,
    };
    base.extend(rest.iter().cloned());
    Some(base)
}

/// Lines from `fn` to the closing brace of its body (`None` for a declaration without one).
fn fn_length(toks: &[(Tok, usize)], at: usize) -> Option<usize> {
    let start = toks[at].1;
    let mut i = at;
    while i < toks.len() && toks[i].0 != Tok::Open {
        if toks[i].0 == Tok::Semi {
            return None;
        }
        i += 1;
    }
    let mut depth = 0;
    for (t, line) in &toks[i..] {
        match t {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth -= 1;
                if depth == 0 {
                    return Some(line - start + 1);
                }
            }
            _ => {}
        }
    }
    None
}

// ------------------------------------------------------------------------------- the graph

struct Graph {
    /// File module (`validate::alerts`; `` for lib.rs) → modules it imports (the longest known
    /// module prefix of each path it names).
    edges: BTreeMap<String, BTreeSet<String>>,
    /// (file, function, lines).
    fn_lines: Vec<(String, String, usize)>,
}

fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|s| s.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
        parts.pop();
    }
    parts
}

fn graph(files: &[(PathBuf, String)]) -> Graph {
    let modules: BTreeSet<Vec<String>> = files.iter().map(|(p, _)| module_of(p)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut fn_lines = Vec::new();
    for (path, src) in files {
        let here = module_of(path);
        let s = scan(&here, src);
        let e = edges.entry(here.join("::")).or_default();
        for p in s.paths {
            let target = (0..=p.len())
                .rev()
                .map(|k| &p[..k])
                .find(|pre| modules.contains(*pre))
                .unwrap_or(&[]);
            if target != here.as_slice() {
                e.insert(target.join("::"));
            }
        }
        for (f, n) in s.fn_lines {
            fn_lines.push((path.display().to_string(), f, n));
        }
    }
    Graph { edges, fn_lines }
}

fn label(m: &str) -> &str {
    if m.is_empty() {
        "lib"
    } else {
        m
    }
}

/// Every import circle found by a depth-first walk, as `a -> b -> a`.
fn cycles(g: &Graph) -> Vec<String> {
    fn visit<'a>(
        g: &'a Graph,
        n: &'a str,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        found: &mut Vec<String>,
    ) {
        if let Some(k) = stack.iter().position(|x| *x == n) {
            let mut c: Vec<&str> = stack[k..].iter().map(|x| label(x)).collect();
            c.push(label(n));
            found.push(c.join(" -> "));
            return;
        }
        if !done.insert(n) {
            return;
        }
        stack.push(n);
        for m in g.edges.get(n).into_iter().flatten() {
            visit(g, m, stack, done, found);
        }
        stack.pop();
    }
    let mut found = Vec::new();
    let mut done = BTreeSet::new();
    for n in g.edges.keys() {
        visit(g, n, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

fn stage(m: &str) -> &str {
    m.split("::").next().unwrap_or("")
}

/// Imports the layering forbids.
fn forbidden(g: &Graph) -> Vec<String> {
    let may: BTreeMap<&str, &[&str]> = MAY_IMPORT.iter().copied().collect();
    let step = |m: &str| m.split("::").nth(1).map(str::to_string);
    let mut out = Vec::new();
    for (from, tos) in &g.edges {
        let fs = stage(from);
        for to in tos {
            let ts = stage(to);
            let ok = if fs.is_empty() {
                true
            } else if ts.is_empty() {
                false
            } else if fs == ts {
                fs != "steps" || step(to).is_none() || step(from) == step(to)
            } else {
                may.get(fs).is_some_and(|allowed| allowed.contains(&ts))
            };
            if !ok {
                out.push(format!("{} imports {}", label(from), label(to)));
            }
        }
    }
    out
}

fn sources() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("main.rs") {
                let rel = p.strip_prefix(&root).unwrap().to_path_buf();
                out.push((rel, fs::read_to_string(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

// ------------------------------------------------------------------------------- tests

fn fake(files: &[(&str, &str)]) -> Graph {
    let v: Vec<(PathBuf, String)> = files
        .iter()
        .map(|(p, s)| (PathBuf::from(p), s.to_string()))
        .collect();
    graph(&v)
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_scanner_finds_imports_circles_forbidden_edges_and_long_functions() {
    let g = fake(&[
        (
            "lib.rs",
            "pub mod model; pub mod steps; use crate::steps::a::render;",
        ),
        (
            "model/mod.rs",
            "mod measure; pub use measure::*; // use crate::steps::a;\n",
        ),
        (
            "model/measure.rs",
            "/* crate::steps::b */ fn f() { let s = \"crate::steps::b\"; let c = '{'; let r = r#\"crate::steps::b\"#; }",
        ),
        ("steps/mod.rs", "pub mod a; pub mod b;"),
        (
            "steps/a.rs",
            "use crate::{model::{self, Measure}, steps::b::x};\nfn g<'a>(x: &'a str) { super::b::y(); }",
        ),
        (
            "steps/b.rs",
            "use super::a::z;\n#[cfg(test)]\nmod tests { use super::*; use crate::model::measure::M; }",
        ),
    ]);
    let e = |m: &str| g.edges.get(m).cloned().unwrap_or_default();
    assert_eq!(e(""), set(&["steps::a"]));
    assert_eq!(e("model"), set(&["model::measure"]));
    assert!(
        e("model::measure").is_empty(),
        "comments, strings and chars are not code"
    );
    assert_eq!(e("steps::a"), set(&["model", "steps::b"]));
    assert_eq!(e("steps::b"), set(&["model::measure", "steps::a"]));
    assert_eq!(
        cycles(&g),
        vec!["steps::a -> steps::b -> steps::a".to_string()]
    );
    let f = forbidden(&g);
    assert!(
        f.contains(&"steps::a imports steps::b".to_string()),
        "{f:?}"
    );
    assert!(
        f.contains(&"steps::b imports steps::a".to_string()),
        "{f:?}"
    );

    let g = fake(&[
        ("lib.rs", "pub mod model; pub mod promql; pub mod validate;"),
        ("model/mod.rs", "fn f() {\n    crate::promql::g()\n}\n"),
        (
            "promql/mod.rs",
            "use crate::model::M;\nfn long() {\n\n\n}\n",
        ),
        (
            "validate/mod.rs",
            "mod ctx; use ctx::Ctx; pub struct Known;",
        ),
        ("validate/ctx.rs", "use super::Known; use crate::Error;"),
    ]);
    assert_eq!(
        cycles(&g),
        vec![
            "model -> promql -> model".to_string(),
            "validate -> validate::ctx -> validate".to_string()
        ]
    );
    assert_eq!(
        forbidden(&g),
        vec![
            "model imports promql".to_string(),
            "validate::ctx imports lib".to_string()
        ]
    );
    let len = |f: &str| g.fn_lines.iter().find(|x| x.1 == f).map(|x| x.2);
    assert_eq!((len("f"), len("long")), (Some(3), Some(4)));
}

#[test]
fn rulegen_has_no_import_circle_and_keeps_its_layers() {
    let files = sources();
    assert!(files.len() > 30, "{} files", files.len());
    let g = graph(&files);
    // The root runs every stage; a scanner that lost the edges would pass everything below.
    let root = &g.edges[""];
    for s in ["spec", "validate", "model", "steps", "write"] {
        assert!(
            root.iter().any(|m| stage(m) == s),
            "lib.rs does not name {s}: {root:?}"
        );
    }
    assert!(g.edges["validate::alerts"].contains("promql"));
    assert!(g.edges.values().map(BTreeSet::len).sum::<usize>() > 80);
    let c = cycles(&g);
    assert!(c.is_empty(), "import circles:\n{}", c.join("\n"));
    let f = forbidden(&g);
    assert!(f.is_empty(), "imports across the layers:\n{}", f.join("\n"));
}

#[test]
fn no_function_is_longer_than_it_has_to_be() {
    let g = graph(&sources());
    assert!(g.fn_lines.len() > 200, "{} functions", g.fn_lines.len());
    let long: Vec<String> = g
        .fn_lines
        .iter()
        .filter(|(_, _, n)| *n > MAX_FN_LINES)
        .map(|(file, f, n)| format!("{file}: fn {f} is {n} lines"))
        .collect();
    assert!(
        long.is_empty(),
        "split these by meaning:\n{}",
        long.join("\n")
    );
}
