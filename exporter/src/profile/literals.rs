//! Literal prefilters: the byte strings one of which must occur in any line a regex can match.
//! The engine scans whole read buffers for these with one Aho-Corasick pass, so lines that can
//! match no rule (most of a node's log) never reach a regex.

use regex_syntax::hir::literal::{ExtractKind, Extractor};

/// Literals that every match of `pattern` must contain (as a prefix or suffix of the match), or
/// None when no short finite set exists and the rule must see every line.
pub fn required_literals(pattern: &str) -> Option<Vec<Vec<u8>>> {
    // Parsed exactly as the rule's regex is compiled (ASCII classes, byte semantics).
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()?;
    let best = [ExtractKind::Prefix, ExtractKind::Suffix]
        .into_iter()
        .filter_map(|kind| {
            let mut ex = Extractor::new();
            ex.kind(kind.clone()).limit_total(64);
            let mut seq = ex.extract(&hir);
            match kind {
                ExtractKind::Prefix => seq.optimize_for_prefix_by_preference(),
                _ => seq.optimize_for_suffix_by_preference(),
            }
            let lits = seq.literals()?;
            // Very short literals would make nearly every line a candidate: no gain.
            if lits.is_empty() || lits.iter().any(|l| l.as_bytes().len() < 3) {
                return None;
            }
            Some(
                lits.iter()
                    .map(|l| l.as_bytes().to_vec())
                    .collect::<Vec<_>>(),
            )
        })
        .min_by_key(|v| v.len());
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_patterns_yield_their_literals() {
        let l = required_literals(r"CONSENSUS DIVERGENCE").unwrap();
        assert_eq!(l, vec![b"CONSENSUS DIVERGENCE".to_vec()]);
        let l = required_literals(r"Block (?P<i>\d+) verified in").unwrap();
        assert_eq!(l, vec![b"Block ".to_vec()]);
    }

    #[test]
    fn a_match_always_contains_one_literal() {
        for (pat, line) in [
            (r"(?:⚖\x{FE0F}?\s*)?Equilibrium\b", "x ⚖️  Equilibrium: a"),
            (r"(?i)send\w*\s+timed?\s*out", "SendMessage timed out"),
            (r"(?i)view[ -]change", "VIEW-CHANGE"),
        ] {
            let lits = required_literals(pat).unwrap_or_else(|| panic!("{pat}"));
            assert!(regex::Regex::new(pat).unwrap().is_match(line));
            assert!(
                lits.iter()
                    .any(|l| line.as_bytes().windows(l.len()).any(|w| w == &l[..])),
                "{pat}: {lits:?}"
            );
        }
    }

    #[test]
    fn unbounded_patterns_have_no_prefilter() {
        assert!(required_literals(r"\d+").is_none());
        assert!(required_literals(r".*").is_none());
    }
}
