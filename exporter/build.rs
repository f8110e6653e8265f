//! Build information for `chainwatch_build_info` and `--version`, as Prometheus's own binaries
//! carry it: git revision and branch, rustc version, build date.
//!
//! The revision and branch come from `git` in the checkout being built (CI builds from a fresh
//! clone, so they are known there too); `unknown` only outside a git checkout or without git.
//! `CHAINWATCH_REVISION` / `CHAINWATCH_BRANCH` in the build environment take precedence, for
//! builds from a source tree without `.git` (a container build context, a release tarball).
//! The build date is when this script last ran, or `SOURCE_DATE_EPOCH` for reproducible builds.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=build.rs");
    for v in [
        "CHAINWATCH_REVISION",
        "CHAINWATCH_BRANCH",
        "SOURCE_DATE_EPOCH",
    ] {
        println!("cargo:rerun-if-env-changed={v}");
    }
    let git = |args: &[&str]| git(&dir, args);
    let revision = env_or("CHAINWATCH_REVISION", || git(&["rev-parse", "HEAD"]));
    let branch = env_or("CHAINWATCH_BRANCH", || {
        git(&["rev-parse", "--abbrev-ref", "HEAD"])
    });
    // Run again when HEAD moves: a commit, a checkout, a fetch that packs refs.
    if let (Some(git_dir), Some(common)) = (
        git(&["rev-parse", "--absolute-git-dir"]),
        git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]),
    ) {
        let (git_dir, common) = (PathBuf::from(git_dir), PathBuf::from(common));
        rerun_if_exists(&git_dir.join("HEAD"));
        rerun_if_exists(&common.join("packed-refs"));
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
            rerun_if_exists(&common.join(r));
        }
    }
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let rustc_full = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    // `rustc 1.95.0 (59807616e 2026-04-14)` → `1.95.0`, the label value (like Go's `goversion`).
    let rustc_version = rustc_full
        .split_whitespace()
        .nth(1)
        .unwrap_or("unknown")
        .to_string();
    let date = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
        .unwrap_or_else(SystemTime::now);
    println!("cargo:rustc-env=CHAINWATCH_REVISION={revision}");
    println!("cargo:rustc-env=CHAINWATCH_BRANCH={branch}");
    println!("cargo:rustc-env=CHAINWATCH_RUSTC_VERSION={rustc_version}");
    println!("cargo:rustc-env=CHAINWATCH_RUSTC={rustc_full}");
    println!("cargo:rustc-env=CHAINWATCH_BUILD_DATE={}", build_date(date));
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=CHAINWATCH_TARGET={target}");
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

fn env_or(var: &str, f: impl FnOnce() -> Option<String>) -> String {
    std::env::var(var)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .or_else(f)
        .unwrap_or_else(|| "unknown".into())
}

/// Cargo runs the script again on every build when a watched path does not exist.
fn rerun_if_exists(p: &Path) {
    if p.exists() {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}

/// `20250131-12:00:00`, the layout of Prometheus's `build date` (UTC).
fn build_date(t: SystemTime) -> String {
    // `2025-01-31T12:00:00Z`
    let iso = humantime::format_rfc3339_seconds(t).to_string();
    let (date, time) = iso
        .trim_end_matches('Z')
        .split_once('T')
        .unwrap_or((&iso, ""));
    format!("{}-{time}", date.replace('-', ""))
}
