//! What this binary is: version, git revision and branch, rustc version and build date, captured
//! by `build.rs`. Shown by `--version`, `chainwatch_build_info` and the landing page.

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const REVISION: &str = env!("CHAINWATCH_REVISION");
pub const BRANCH: &str = env!("CHAINWATCH_BRANCH");
/// `1.95.0`: the `rustversion` label (Go exporters' `goversion`).
pub const RUSTC_VERSION: &str = env!("CHAINWATCH_RUSTC_VERSION");
pub const BUILD_DATE: &str = env!("CHAINWATCH_BUILD_DATE");

/// `--version` after the program name, laid out as Prometheus's binaries print it.
pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (branch: ",
    env!("CHAINWATCH_BRANCH"),
    ", revision: ",
    env!("CHAINWATCH_REVISION"),
    ")\n  build date:       ",
    env!("CHAINWATCH_BUILD_DATE"),
    "\n  rustc version:    ",
    env!("CHAINWATCH_RUSTC"),
    "\n  platform:         ",
    env!("CHAINWATCH_TARGET"),
);
