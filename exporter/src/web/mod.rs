//! The HTTP face of the sidecar: the server (`/metrics`, `/health`, `/`), and what
//! `--web.config.file` configures on it (TLS, basic auth, headers), as exporter-toolkit does.

pub mod auth;
pub mod config;
pub mod listen;
pub mod server;
pub mod tls;
