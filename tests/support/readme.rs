//! Examples the README shows and the tests run, so the documentation cannot drift from what works.
//! Shared by the workspace tests and the exporter's (`#[path]`-included there).

use std::path::Path;

/// The fenced ```` ```yaml ```` block after the line `<!-- readme-test: NAME …-->` in the
/// README at the repository root `root`.
pub fn block(root: &Path, name: &str) -> String {
    let readme = std::fs::read_to_string(root.join("README.md")).expect("read README.md");
    let marker = format!("<!-- readme-test: {name}");
    let at = readme
        .find(&marker)
        .unwrap_or_else(|| panic!("README.md has no {marker}"));
    let rest = &readme[at..];
    let start = rest
        .find("```yaml\n")
        .unwrap_or_else(|| panic!("no yaml block after {marker}"))
        + "```yaml\n".len();
    let len = rest[start..]
        .find("```")
        .unwrap_or_else(|| panic!("the block after {marker} does not end"));
    rest[start..start + len].to_string()
}
