//! Where the server listens, as exporter-toolkit decides it: every `--web.listen-address`, or
//! with `--web.systemd-socket` the sockets systemd passed (socket activation: `LISTEN_FDS`,
//! `LISTEN_PID`, descriptors from 3 on), in which case the addresses are not used.

use std::net::{SocketAddr, TcpListener};

use anyhow::{bail, Context, Result};

/// The listening sockets, bound (or taken over) before the runtime starts: an address in use or
/// a missing activation socket ends the start with exit code 1, before any source runs.
pub fn listeners(addresses: &[String], systemd_socket: bool) -> Result<Vec<TcpListener>> {
    let all = if systemd_socket {
        systemd()?
    } else {
        let mut all = Vec::new();
        for a in addresses {
            let addr = parse(a)?;
            all.push(
                TcpListener::bind(addr)
                    .with_context(|| format!("listening on {addr} (--web.listen-address)"))?,
            );
        }
        all
    };
    for l in &all {
        l.set_nonblocking(true)
            .context("making the listening socket non-blocking")?;
    }
    Ok(all)
}

/// The TCP sockets systemd handed over; `LISTEN_*` are removed from the environment, so
/// programs the sidecar starts (journalctl) do not see them.
fn systemd() -> Result<Vec<TcpListener>> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        bail!("--web.systemd-socket: no socket activation file descriptors found (LISTEN_FDS, LISTEN_PID: start through a systemd .socket unit or systemd-socket-activate)");
    }
    let mut all = Vec::new();
    for i in 0..fds.len() {
        match fds.take_tcp_listener(i) {
            Ok(Some(l)) => all.push(l),
            Ok(None) => {}
            Err(e) => bail!("--web.systemd-socket: file descriptor {}: {e}", i + 3),
        }
    }
    Ok(all)
}

/// `:19942` (every IPv4 interface), `0.0.0.0:19942`, `127.0.0.1:0`, `[::1]:19942`.
pub fn parse(s: &str) -> Result<SocketAddr> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.parse()
        .with_context(|| format!("--web.listen-address `{s}` is not host:port"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_like_the_toolkit() {
        assert_eq!(parse(":19942").unwrap().to_string(), "0.0.0.0:19942");
        assert_eq!(parse("[::1]:9").unwrap().to_string(), "[::1]:9");
        assert!(parse("localhost").is_err());
    }

    #[test]
    fn several_addresses_bind_each() {
        let l = listeners(&["127.0.0.1:0".into(), "127.0.0.1:0".into()], false).unwrap();
        assert_eq!(l.len(), 2);
        assert_ne!(l[0].local_addr().unwrap(), l[1].local_addr().unwrap());
        let taken = l[0].local_addr().unwrap().to_string();
        let e = listeners(std::slice::from_ref(&taken), false).unwrap_err();
        assert!(format!("{e:#}").contains(&taken), "{e:#}");
    }
}
