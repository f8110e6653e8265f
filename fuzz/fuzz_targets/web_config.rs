//! `--web.config.file` (exporter-toolkit's format: TLS, basic auth, headers): arbitrary bytes as
//! the file, loaded by `web::config::load` as the sidecar loads it at start and on reload.
//! Checked beyond "no panic": a refused file is reported against that file, with a message and a
//! line inside it (the operator is told where to look, never a line the file does not have).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use chainwatch_exporter::web::config;
use libfuzzer_sys::fuzz_target;

/// One file per fuzzing process, rewritten per input: the loader reads a path (relative
/// certificate paths resolve against its directory).
fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("chainwatch-fuzz-web-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("fuzz temp dir");
        dir.join("web.yml")
    })
}

fuzz_target!(|data: &[u8]| {
    let p = path();
    std::fs::write(p, data).expect("writing the input");
    if let Err(e) = config::load(p) {
        assert_eq!(&e.file, p, "error names another file: {e}");
        assert!(!e.message.is_empty(), "empty message for {data:?}");
        let lines = data.split(|&b| b == b'\n').count();
        assert!(e.line <= lines, "line {} of a {lines}-line file: {e}", e.line);
    }
});
