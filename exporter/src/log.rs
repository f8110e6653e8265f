//! Minimal logfmt logging to stderr, in the style of Prometheus's own components
//! (`ts=... level=info msg="..." key=value`).

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

pub fn set_level(l: Level) {
    LEVEL.store(l as u8, Ordering::Relaxed);
}

pub fn enabled(l: Level) -> bool {
    l as u8 >= LEVEL.load(Ordering::Relaxed)
}

pub fn log(level: Level, msg: &str, kv: &[(&str, &dyn std::fmt::Display)]) {
    if !enabled(level) {
        return;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut line = format!(
        "ts={}.{:03} level={} msg={}",
        now.as_secs(),
        now.subsec_millis(),
        match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        },
        quote(msg)
    );
    for (k, v) in kv {
        let _ = write!(line, " {k}={}", quote(&v.to_string()));
    }
    line.push('\n');
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '=')
    {
        s.to_string()
    } else {
        format!("{s:?}")
    }
}

#[macro_export]
macro_rules! info {
    ($msg:expr $(, $k:ident = $v:expr)* $(,)?) => {
        $crate::log::log($crate::log::Level::Info, $msg, &[$((stringify!($k), &$v as &dyn std::fmt::Display)),*])
    };
}
#[macro_export]
macro_rules! warn {
    ($msg:expr $(, $k:ident = $v:expr)* $(,)?) => {
        $crate::log::log($crate::log::Level::Warn, $msg, &[$((stringify!($k), &$v as &dyn std::fmt::Display)),*])
    };
}
#[macro_export]
macro_rules! error {
    ($msg:expr $(, $k:ident = $v:expr)* $(,)?) => {
        $crate::log::log($crate::log::Level::Error, $msg, &[$((stringify!($k), &$v as &dyn std::fmt::Display)),*])
    };
}
#[macro_export]
macro_rules! debug {
    ($msg:expr $(, $k:ident = $v:expr)* $(,)?) => {
        $crate::log::log($crate::log::Level::Debug, $msg, &[$((stringify!($k), &$v as &dyn std::fmt::Display)),*])
    };
}
