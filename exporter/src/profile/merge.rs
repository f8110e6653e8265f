//! What merged profiles share beyond their rules: the `chain` constant label.

use chainwatch_yaml::SpecError;

use super::Loaded;

/// The `chain` label of a pipeline: the configuration's (or `--label chain=`) when it sets one —
/// a profile merged beside others never relabels the chain. Otherwise the profiles' own, which
/// must then agree: a user's profile without `chain:` loaded beside `dilithion` (to reuse its
/// mappings) must not silently become `chain="dilithion"`.
pub fn chain_label(
    loaded: &[Loaded],
    configured: Option<&str>,
) -> Result<Option<String>, SpecError> {
    if let Some(c) = configured {
        return Ok(Some(c.to_string()));
    }
    let Some(first) = loaded.first() else {
        return Ok(None);
    };
    let says = |l: &Loaded| match &l.spec.chain {
        Some(c) => format!("`{}` declares `chain: {c}`", l.spec.name),
        None => format!("`{}` declares no chain", l.spec.name),
    };
    let at = |l: &Loaded| {
        let field = if l.spec.chain.is_some() {
            "chain"
        } else {
            "name"
        };
        let p = l.positions.pos(field);
        format!("{}:{}", l.positions.file().display(), p.line)
    };
    for other in &loaded[1..] {
        if other.spec.chain != first.spec.chain {
            let field = if other.spec.chain.is_some() {
                "chain"
            } else {
                "name"
            };
            return Err(other.positions.error(
                field,
                format!(
                    "the merged profiles disagree on the `chain` label: {} and {} ({}); set it in the configuration (`labels: {{chain: …}}`, or `--label chain=…` for replay and test)",
                    says(other),
                    says(first),
                    at(first)
                ),
            ));
        }
    }
    Ok(first.spec.chain.clone())
}
