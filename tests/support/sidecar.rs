//! A real sidecar (`chainwatch-exporter`, rebuilt when stale) on a configuration the test wrote,
//! listening on a port it picks itself.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::process::Proc;
use crate::stack::fresh_bin;

/// Start the sidecar on `config` (logs under `logs`, as `sidecar-<name>`); returns it and the
/// `host:port` it announced once listening.
pub fn start(name: &str, config: &Path, logs: &Path, timeout: Duration) -> (Proc, String) {
    let mut cmd = Command::new(fresh_bin("chainwatch-exporter"));
    cmd.arg("--config")
        .arg(config)
        .args(["--web.listen-address", "127.0.0.1:0"]);
    let mut p = Proc::spawn(&format!("sidecar-{name}"), cmd, logs);
    let err = p.stderr.clone();
    let line = p.wait_line(&err, "msg=listening", timeout);
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("address="))
        .unwrap_or_else(|| panic!("no address= in {line:?}"))
        .to_string();
    (p, addr)
}
