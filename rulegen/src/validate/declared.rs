//! The metrics thresholds.yaml may name besides the catalog's: those its own `metrics:` declares,
//! and those of the files its `catalogs:` lists (profiles or catalog extension files, relative to
//! thresholds.yaml). The catalog crate reads both, exactly as the sidecar reads a profile's
//! `metrics:`, so rules and sidecar agree on a declared metric's type, unit and labels.

use std::path::Path;

use chainwatch_catalog::{declare, Catalog};

use crate::spec::{Locator, Spec};

use super::ctx::Ctx;

/// The catalog extended by the declarations, into `cx.catalog`; every error of every file.
pub fn catalog(spec: &Spec, loc: &Locator, cx: &mut Ctx) {
    let mut c = Catalog::builtin();
    let dir = loc.base().file().parent().unwrap_or(Path::new(""));
    for (i, f) in spec.catalogs.iter().enumerate() {
        let path = dir.join(f);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for e in declare::add_str(&mut c, &path, &text)
                    .err()
                    .unwrap_or_default()
                {
                    cx.push(e);
                }
            }
            Err(e) => {
                let tried = std::path::absolute(&path).unwrap_or(path);
                cx.err(
                    &format!("catalogs[{i}]"),
                    format!("cannot read {}: {e}", tried.display()),
                );
            }
        }
    }
    for e in c
        .declare(&spec.metrics, loc.base(), "metrics")
        .err()
        .unwrap_or_default()
    {
        cx.push(e);
    }
    cx.catalog = c;
}
