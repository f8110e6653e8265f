//! Logging to stderr in the layout of Prometheus's own components: logfmt
//! (`ts=2025-01-31T12:00:00.123Z level=info msg="..." key=value`, the default) or one JSON object
//! per line (`--log.format=json`), timestamps RFC 3339 in UTC with milliseconds.
//!
//! `tracing` carries the events (levels, filtering, one writer shared by all threads) and
//! `tracing-subscriber` writes them; the two formatters here only lay a line out as Prometheus
//! does. The `info!`/`warn!`/`error!`/`debug!` macros keep the call sites short:
//! `info!("listening", address = addr)` — every value is written with its `Display`.

use std::fmt::{self, Write as _};
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn tracing(self) -> tracing::Level {
        match self {
            Level::Debug => tracing::Level::DEBUG,
            Level::Info => tracing::Level::INFO,
            Level::Warn => tracing::Level::WARN,
            Level::Error => tracing::Level::ERROR,
        }
    }
}

/// `--log.format`, as exporter-toolkit names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Logfmt,
    Json,
}

/// Install the process-wide logger. Events of other crates (TLS, HTTP) are kept from `warn` up
/// whatever `level` says: their debug output is about their internals, not the sidecar's work.
pub fn init(level: Level, format: Format) {
    use tracing_subscriber::layer::SubscriberExt as _;
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(tracing::Level::WARN.min(level.tracing()))
        .with_target(env!("CARGO_CRATE_NAME"), level.tracing());
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .event_format(Line(format));
    let _ = tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(layer).with(filter),
    );
}

/// Lays an event out as one line of `self.0`'s format.
pub struct Line(pub Format);

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warn",
            tracing::Level::INFO => "info",
            _ => "debug",
        };
        let ts = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let mut line = String::with_capacity(128);
        match self.0 {
            Format::Logfmt => {
                let _ = write!(line, "ts={ts} level={level} msg={}", logfmt(&fields.msg));
                for (k, v) in &fields.kv {
                    let _ = write!(line, " {k}={}", logfmt(v));
                }
            }
            Format::Json => {
                let mut obj = serde_json::Map::new();
                obj.insert("ts".into(), ts.into());
                obj.insert("level".into(), level.into());
                obj.insert("msg".into(), fields.msg.into());
                for (k, v) in fields.kv {
                    obj.insert(k.into(), v.into());
                }
                line = serde_json::Value::Object(obj).to_string();
            }
        }
        writeln!(w, "{line}")
    }
}

/// The message and the key-value pairs of one event, in the order they were written.
#[derive(Default)]
struct Fields {
    msg: String,
    kv: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields arrive here through their Display; the message as `fmt::Arguments`.
        self.put(field, format!("{value:?}"));
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.msg = value;
        } else {
            self.kv.push((field.name(), value));
        }
    }
}

/// A logfmt value: bare when it is plain, quoted and escaped otherwise.
fn logfmt(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '=' && c != '\\')
    {
        s.to_string()
    } else {
        format!("{s:?}")
    }
}

#[macro_export]
macro_rules! info {
    ($msg:expr $(, $k:ident = $v:expr)* $(,)?) => {
        ::tracing::event!(::tracing::Level::INFO, $($k = %$v,)* message = %$msg)
    };
}
#[macro_export]
macro_rules! warn {
    ($msg:expr $(, $k:ident = $v:expr)* $(,)?) => {
        ::tracing::event!(::tracing::Level::WARN, $($k = %$v,)* message = %$msg)
    };
}
#[macro_export]
macro_rules! error {
    ($msg:expr $(, $k:ident = $v:expr)* $(,)?) => {
        ::tracing::event!(::tracing::Level::ERROR, $($k = %$v,)* message = %$msg)
    };
}
#[macro_export]
macro_rules! debug {
    ($msg:expr $(, $k:ident = $v:expr)* $(,)?) => {
        ::tracing::event!(::tracing::Level::DEBUG, $($k = %$v,)* message = %$msg)
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn capture(format: Format, f: impl FnOnce()) -> String {
        use tracing_subscriber::layer::SubscriberExt as _;
        let buf = Buf::default();
        let out = buf.clone();
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(move || out.clone())
            .event_format(Line(format));
        let sub = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(sub, f);
        let bytes = buf.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    fn ts_of(s: &str) -> SystemTime {
        assert!(s.ends_with('Z') && s.len() == 24, "{s}");
        humantime::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn logfmt_line_has_rfc3339_ts_level_msg_and_quoted_values() {
        let before = SystemTime::now() - std::time::Duration::from_millis(2);
        let text = capture(Format::Logfmt, || {
            info!(
                "final count",
                labels = "source=a",
                value = 3.5,
                path = "a b\"c"
            );
        });
        let line = text.strip_suffix('\n').unwrap();
        let (ts, rest) = line.split_once(' ').unwrap();
        let t = ts_of(ts.strip_prefix("ts=").unwrap());
        assert!(t >= before && t <= SystemTime::now(), "{line}");
        assert_eq!(
            rest,
            r#"level=info msg="final count" labels="source=a" value=3.5 path="a b\"c""#
        );
    }

    #[test]
    fn json_line_is_one_object_with_prometheus_keys() {
        let text = capture(Format::Json, || {
            warn!("poll failed", source = "rpc", error = "HTTP status 500");
        });
        assert_eq!(text.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(v["level"], "warn");
        assert_eq!(v["msg"], "poll failed");
        assert_eq!(v["source"], "rpc");
        assert_eq!(v["error"], "HTTP status 500");
        ts_of(v["ts"].as_str().unwrap());
    }
}
