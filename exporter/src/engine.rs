//! The line engine: lines in, metric updates out. Each read buffer is scanned once for the literal
//! prefilters of all rules; only lines holding a literal are split out and run through the
//! regexes of the rules whose literal they hold, with captures extracted only then.

use aho_corasick::{AhoCorasick, MatchKind};
use prometheus::Counter;
use regex::bytes::CaptureLocations;

use crate::arbiter::Verdict;
use crate::profile::{Action, Captures, LabelSrc, Matcher, Op, Rule, ValueSrc};
use crate::registry::{Metrics, RegistryError};

pub struct Engine {
    rules: Vec<Rule>,
    /// Finds literals in whole buffers. Leftmost-first semantics let aho-corasick use its
    /// vectorized (Teddy) searcher.
    scanner: Option<AhoCorasick>,
    /// Pattern id → rules to try when it is found: the rules owning the literal, plus those owning
    /// any literal that could start inside it (leftmost-first reports only one of two overlapping
    /// hits, so the other's rules must be tried too).
    pattern_rules: Vec<Vec<usize>>,
    /// Rules without a prefilter: every line is tried against them.
    unfiltered: Vec<usize>,
    /// Some action has a `combine: prefer` arbiter: a line's actions then run best rank first.
    ranked: bool,
}

/// The sidecar's own counters for one source, resolved once.
pub struct SourceStats {
    pub lines: Counter,
    pub bytes: Counter,
    pub invalid_utf8: Counter,
    pub truncated: Counter,
    pub matches: Vec<Counter>,
}

/// Per-thread buffers reused across lines.
pub struct Scratch {
    locs: Vec<Option<CaptureLocations>>,
    candidates: Vec<usize>,
    /// JSON captures per rule: the captures of every rule matching one line are kept until its
    /// actions have run.
    json: Vec<Vec<Option<String>>>,
    labels: Vec<String>,
    matched: Vec<usize>,
    /// (rank, rule, action) of a line's actions, when they run in rank order.
    order: Vec<(usize, usize, usize)>,
}

impl Engine {
    pub fn new(rules: Vec<Rule>) -> Self {
        // One pattern per distinct literal, owned by every rule that needs it.
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut owners: Vec<Vec<usize>> = Vec::new();
        let mut unfiltered = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            match &r.literals {
                Some(lits) => {
                    for l in lits {
                        match patterns.iter().position(|p| p == l) {
                            Some(k) => owners[k].push(i),
                            None => {
                                patterns.push(l.clone());
                                owners.push(vec![i]);
                            }
                        }
                    }
                }
                None => unfiltered.push(i),
            }
        }
        let pattern_rules = patterns
            .iter()
            .enumerate()
            .map(|(a, pa)| {
                let mut v: Vec<usize> = Vec::new();
                for (b, pb) in patterns.iter().enumerate() {
                    if a == b || may_start_inside(pa, pb) {
                        v.extend_from_slice(&owners[b]);
                    }
                }
                v.sort_unstable();
                v.dedup();
                v
            })
            .collect();
        let scanner = if patterns.is_empty() {
            None
        } else {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostFirst)
                .build(&patterns)
                .ok()
        };
        // A scanner that failed to build (it cannot at these sizes) degrades to trying every rule.
        if scanner.is_none() && !patterns.is_empty() {
            unfiltered = (0..rules.len()).collect();
        }
        let ranked = rules
            .iter()
            .any(|r| r.actions.iter().any(|a| a.arbiter.is_some()));
        Self {
            rules,
            scanner,
            pattern_rules,
            unfiltered,
            ranked,
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn scratch(&self) -> Scratch {
        Scratch {
            locs: self
                .rules
                .iter()
                .map(|r| match &r.matcher {
                    Matcher::Regex(re) => Some(re.capture_locations()),
                    Matcher::Json { .. } => None,
                })
                .collect(),
            candidates: Vec::new(),
            json: vec![Vec::new(); self.rules.len()],
            labels: Vec::new(),
            matched: Vec::new(),
            order: Vec::new(),
        }
    }

    pub fn source_stats(
        &self,
        metrics: &mut Metrics,
        source: &str,
    ) -> Result<SourceStats, RegistryError> {
        let per = |m: &mut Metrics, name: &str| {
            m.counter_vec(name, &["source"])
                .map(|c| c.with_label_values(&[source]))
        };
        let matches = metrics.counter_vec("chainwatch_rule_matches_total", &["source", "rule"])?;
        Ok(SourceStats {
            lines: per(metrics, "chainwatch_source_lines_read_total")?,
            bytes: per(metrics, "chainwatch_source_read_bytes_total")?,
            invalid_utf8: per(metrics, "chainwatch_lines_invalid_utf8_total")?,
            truncated: per(metrics, "chainwatch_lines_truncated_total")?,
            matches: self
                .rules
                .iter()
                .map(|r| matches.with_label_values(&[source, r.name.as_str()]))
                .collect(),
        })
    }

    /// Process a buffer of whole lines (each ends in `\n`; a final line without one counts too).
    pub fn process(&self, chunk: &[u8], stats: &SourceStats, scratch: &mut Scratch) {
        if chunk.is_empty() {
            return;
        }
        let mut lines = memchr::memchr_iter(b'\n', chunk).count();
        if chunk.last() != Some(&b'\n') {
            lines += 1;
        }
        stats.lines.inc_by(lines as f64);
        stats.bytes.inc_by(chunk.len() as f64);
        if std::str::from_utf8(chunk).is_err() {
            let bad = split_lines(chunk)
                .filter(|l| std::str::from_utf8(l).is_err())
                .count();
            stats.invalid_utf8.inc_by(bad as f64);
        }
        match (&self.scanner, self.unfiltered.is_empty()) {
            (Some(ac), true) => {
                // Walk the literal hits of the whole buffer; lines without one are never looked
                // at. Hits in the same line add up to that line's candidate rules.
                let mut line: Option<(usize, usize)> = None;
                for m in ac.find_iter(chunk) {
                    if let Some((start, end)) = line {
                        if m.start() < end {
                            scratch
                                .candidates
                                .extend_from_slice(&self.pattern_rules[m.pattern().as_usize()]);
                            continue;
                        }
                        self.line(&chunk[start..end], stats, scratch);
                    }
                    scratch.candidates.clear();
                    let start = memchr::memrchr(b'\n', &chunk[..m.start()]).map_or(0, |i| i + 1);
                    let end = memchr::memchr(b'\n', &chunk[m.start()..])
                        .map_or(chunk.len(), |i| m.start() + i);
                    scratch
                        .candidates
                        .extend_from_slice(&self.pattern_rules[m.pattern().as_usize()]);
                    line = Some((start, end));
                }
                if let Some((start, end)) = line {
                    self.line(&chunk[start..end], stats, scratch);
                }
            }
            _ => {
                for line in split_lines(chunk) {
                    scratch.candidates.clear();
                    scratch.candidates.extend_from_slice(&self.unfiltered);
                    // Rules with a prefilter still run on the lines holding their literal.
                    if let Some(ac) = &self.scanner {
                        for m in ac.find_iter(line) {
                            scratch
                                .candidates
                                .extend_from_slice(&self.pattern_rules[m.pattern().as_usize()]);
                        }
                    }
                    self.line(line, stats, scratch);
                }
            }
        }
    }

    /// Run one line (without its `\n`) through every rule that may match it, counting it as read;
    /// true when some rule matched. What `replay --unmatched` and `test` use to see lines one by
    /// one; the sources use `process`.
    pub fn process_line(&self, line: &[u8], stats: &SourceStats, scratch: &mut Scratch) -> bool {
        stats.lines.inc();
        stats.bytes.inc_by(line.len() as f64 + 1.0);
        if std::str::from_utf8(line).is_err() {
            stats.invalid_utf8.inc();
        }
        scratch.candidates.clear();
        scratch.candidates.extend_from_slice(&self.unfiltered);
        if let Some(ac) = &self.scanner {
            for m in ac.find_iter(line) {
                scratch
                    .candidates
                    .extend_from_slice(&self.pattern_rules[m.pattern().as_usize()]);
            }
        }
        self.line(line, stats, scratch)
    }

    /// Try the candidate rules (in `scratch.candidates`) on one line, then run the actions of
    /// those that matched; true when some rule matched.
    fn line(&self, line: &[u8], stats: &SourceStats, scratch: &mut Scratch) -> bool {
        let line = clean(line);
        if scratch.candidates.is_empty() {
            return false;
        }
        scratch.candidates.sort_unstable();
        scratch.candidates.dedup();
        scratch.matched.clear();
        for k in 0..scratch.candidates.len() {
            let i = scratch.candidates[k];
            let rule = &self.rules[i];
            let hit = match &rule.matcher {
                Matcher::Regex(re) => {
                    let locs = scratch.locs[i]
                        .as_mut()
                        .expect("regex rules have capture slots");
                    re.captures_read(locs, line).is_some()
                }
                m @ Matcher::Json { .. } => json_capture(m, line, &mut scratch.json[i]),
            };
            if hit && !rule.unless.as_ref().is_some_and(|u| u.is_match(line)) {
                stats.matches[i].inc();
                scratch.matched.push(i);
            }
        }
        let Scratch {
            locs,
            json,
            labels,
            matched,
            order,
            ..
        } = scratch;
        let caps = |i: usize| match &self.rules[i].matcher {
            Matcher::Regex(_) => Captures::Regex {
                line,
                locs: locs[i].as_ref().expect("regex rules have capture slots"),
            },
            Matcher::Json { .. } => Captures::Json(&json[i]),
        };
        if self.ranked && matched.len() > 1 {
            // A source of truth and its fallback on the same line: the better rank runs first,
            // so the fallback finds the series taken and adds nothing.
            order.clear();
            for &i in matched.iter() {
                for (j, a) in self.rules[i].actions.iter().enumerate() {
                    order.push((a.rank(), i, j));
                }
            }
            order.sort_unstable();
            for &(_, i, j) in order.iter() {
                let rule = &self.rules[i];
                apply(rule, &rule.actions[j], &caps(i), labels);
            }
        } else {
            for &i in matched.iter() {
                let rule = &self.rules[i];
                let c = caps(i);
                for a in &rule.actions {
                    apply(rule, a, &c, labels);
                }
            }
        }
        !matched.is_empty()
    }
}

/// Whether an occurrence of `b` can begin inside an occurrence of `a` (at its start or later):
/// `b` lies within `a`, or a suffix of `a` is a prefix of `b`.
fn may_start_inside(a: &[u8], b: &[u8]) -> bool {
    (0..a.len()).any(|k| {
        let rest = &a[k..];
        if rest.len() >= b.len() {
            rest.starts_with(b)
        } else {
            b.starts_with(rest)
        }
    })
}

/// Lines of a buffer without their `\n`.
pub fn split_lines(chunk: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = chunk.strip_suffix(b"\n").unwrap_or(chunk);
    body.split(|b| *b == b'\n')
}

/// Strip a trailing CR (CRLF files) and leading NULs (the hole a writer without O_APPEND leaves
/// after a copytruncate) so that anchored patterns still match.
fn clean(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let nuls = line.iter().take_while(|b| **b == 0).count();
    &line[nuls..]
}

/// Fill `out` with the rule's JSON fields from `line`; false unless the line holds a JSON object
/// with every required field. Tolerates a prefix before the object (journal or level prefixes).
pub fn json_capture(m: &Matcher, line: &[u8], out: &mut Vec<Option<String>>) -> bool {
    let Matcher::Json { fields, require } = m else {
        return false;
    };
    let Some(open) = memchr::memchr(b'{', line) else {
        return false;
    };
    let Some(close) = memchr::memrchr(b'}', line) else {
        return false;
    };
    if close < open {
        return false;
    }
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&line[open..=close]) else {
        return false;
    };
    if !doc.is_object() {
        return false;
    }
    out.clear();
    for f in fields {
        let v = if f.starts_with('/') {
            doc.pointer(f)
        } else {
            doc.get(f)
        };
        out.push(match v {
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Bool(b)) => Some(if *b { "1" } else { "0" }.to_string()),
            _ => None,
        });
    }
    require.iter().all(|i| out[*i].is_some())
}

enum Val {
    Absent,
    Bad,
    Ok(f64),
}

fn value(src: &ValueSrc, caps: &Captures<'_>) -> Val {
    match src {
        ValueSrc::Number(n) => Val::Ok(*n),
        ValueSrc::Capture(i) => match caps.get(*i) {
            None => Val::Absent,
            Some(b) => match std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.trim().parse::<f64>().ok())
            {
                Some(v) if v.is_finite() => Val::Ok(v),
                _ => Val::Bad,
            },
        },
    }
}

fn label_values(labels: &[Option<LabelSrc>], caps: &Captures<'_>, out: &mut Vec<String>) {
    out.clear();
    for l in labels {
        out.push(match l {
            None => String::new(),
            Some(LabelSrc::Literal(s)) => s.clone(),
            Some(LabelSrc::Capture { idx, map }) => {
                let raw = caps
                    .get(*idx)
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                match map.get(&raw.to_lowercase()) {
                    Some(v) => v.clone(),
                    None => raw.into_owned(),
                }
            }
        });
    }
}

/// Numbers that can be counted (non-negative) or set, or None with the reason counted.
fn usable(src: &ValueSrc, caps: &Captures<'_>, rule: &Rule, non_negative: bool) -> Option<f64> {
    match value(src, caps) {
        Val::Ok(v) if v >= 0.0 || !non_negative => Some(v),
        Val::Absent => None,
        _ => {
            rule.value_errors.inc();
            None
        }
    }
}

/// The arbiter's verdict on this update, with the series' labels in `labels`; Apply without one.
fn judge(action: &Action, labels: &[String]) -> Verdict {
    match &action.arbiter {
        None => Verdict::Apply {
            taking_over: false,
            counted: 0.0,
        },
        Some((arb, rank)) => arb.judge(labels, *rank),
    }
}

fn apply(rule: &Rule, action: &Action, caps: &Captures<'_>, labels: &mut Vec<String>) {
    let Action {
        op,
        labels: lsrc,
        guard,
        arbiter,
    } = action;
    // A label set past the metric's cap is dropped (and counted by the guard).
    let admit = |labels: &[String]| guard.as_ref().is_none_or(|g| g.admit(labels));
    // Arbitrated series are judged by their labels, so those are resolved even when fixed.
    let arbitrated = arbiter.is_some();
    match op {
        Op::Inc {
            by,
            scale,
            family,
            fixed,
        } => {
            let v = match by {
                None => 1.0,
                Some(src) => match usable(src, caps, rule, true) {
                    Some(v) => v * scale,
                    None => return,
                },
            };
            if let (Some(c), false) = (fixed, arbitrated) {
                c.inc_by(v);
                return;
            }
            label_values(lsrc, caps, labels);
            if !admit(labels) || judge(action, labels) == Verdict::Drop {
                return;
            }
            match fixed {
                Some(c) => c.inc_by(v),
                None => family.with_label_values(labels).inc_by(v),
            }
            if let Some((arb, _)) = arbiter {
                arb.counted(labels, v);
            }
        }
        Op::Total {
            value: src,
            scale,
            family,
            last,
        } => {
            let Some(v) = usable(src, caps, rule, true) else {
                return;
            };
            let v = v * scale;
            label_values(lsrc, caps, labels);
            if !admit(labels) {
                return;
            }
            let Verdict::Apply {
                taking_over,
                counted,
            } = judge(action, labels)
            else {
                return;
            };
            let mut delta = last.delta(labels, v);
            if taking_over {
                // The events counted line by line before the node's total was seen are in it.
                delta = (delta - counted).max(0.0);
            }
            family.with_label_values(labels).inc_by(delta);
            if let Some((arb, _)) = arbiter {
                arb.counted(labels, delta);
            }
        }
        Op::Set {
            value: src,
            scale,
            family,
            fixed,
        } => {
            let Some(v) = usable(src, caps, rule, false) else {
                return;
            };
            let v = v * scale;
            if let (Some((vals, g)), false) = (fixed, arbitrated) {
                g.get_or_init(|| family.with_label_values(vals)).set(v);
                return;
            }
            label_values(lsrc, caps, labels);
            if admit(labels) && judge(action, labels) != Verdict::Drop {
                family.with_label_values(labels).set(v);
            }
        }
        Op::Observe {
            value: src,
            scale,
            family,
            fixed,
        } => {
            let Some(v) = usable(src, caps, rule, true) else {
                return;
            };
            let v = v * scale;
            if let (Some(h), false) = (fixed, arbitrated) {
                h.observe(v);
                return;
            }
            label_values(lsrc, caps, labels);
            if admit(labels) && judge(action, labels) != Verdict::Drop {
                family.with_label_values(labels).observe(v);
            }
        }
        Op::State {
            value: src,
            map,
            states,
            family,
        } => {
            let raw = match src {
                ValueSrc::Capture(i) => match caps.get(*i) {
                    Some(b) => String::from_utf8_lossy(b).trim().to_lowercase(),
                    None => return,
                },
                ValueSrc::Number(n) => n.to_string(),
            };
            let state = map.get(&raw).cloned().unwrap_or(raw);
            if !states.contains(&state.as_str()) {
                rule.value_errors.inc();
                return;
            }
            label_values(lsrc, caps, labels);
            if !admit(labels) || judge(action, labels) == Verdict::Drop {
                return;
            }
            labels.push(String::new());
            for s in states.iter() {
                *labels.last_mut().expect("pushed above") = s.to_string();
                family
                    .with_label_values(labels)
                    .set(if *s == state { 1.0 } else { 0.0 });
            }
        }
    }
}
