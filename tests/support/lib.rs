//! Support for the workspace-level integration tests in `tests/`: locating the workspace's binaries,
//! and for the end-to-end suite (`tests/e2e.rs`) the whole stack on loopback: processes stopped on
//! drop, a webhook receiver, a small HTTP client, polling with deadlines.

pub mod gate;
pub mod http;
pub mod notify;
pub mod process;
pub mod readme;
pub mod schemas;
pub mod sidecar;
pub mod stack;
pub mod wait;
pub mod webhook;

use std::path::PathBuf;

/// The built binary `name` from this workspace's target directory (built by `cargo test
/// --workspace`, which builds every member's binaries before running tests).
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target profile directory");
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} not built: run the tests with `cargo test --workspace`",
        bin.display()
    );
    bin
}
