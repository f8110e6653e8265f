//! The host's address as the monitoring network reaches it: a TCP forwarder in front of the
//! host's sidecar. Prometheus scrapes this address, never the sidecar's own port, so the network
//! between the two can fail on its own: a partition (or a host that is off) drops every packet —
//! connections are accepted and never answered, the ones in flight stall — while a host that is up
//! without a sidecar listening closes the connection before any answer, as a closed port fails.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Link {
    pub addr: SocketAddr,
    /// Does the network carry packets to the host?
    open: watch::Sender<bool>,
    /// Where the sidecar listens now (None: no sidecar process listening).
    upstream: watch::Sender<Option<SocketAddr>>,
}

impl Link {
    /// Bind a loopback port for the host and start forwarding (open, with no upstream yet).
    pub async fn bind() -> std::io::Result<Arc<Link>> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let link = Arc::new(Link {
            addr: listener.local_addr()?,
            open: watch::Sender::new(true),
            upstream: watch::Sender::new(None),
        });
        tokio::spawn(accept(listener, link.clone()));
        Ok(link)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_open(&self, open: bool) {
        self.open
            .send_if_modified(|o| std::mem::replace(o, open) != open);
    }

    pub fn is_open(&self) -> bool {
        *self.open.borrow()
    }

    pub fn set_upstream(&self, to: Option<SocketAddr>) {
        self.upstream
            .send_if_modified(|u| std::mem::replace(u, to) != to);
    }

    pub fn upstream(&self) -> Option<SocketAddr> {
        *self.upstream.borrow()
    }

    pub fn watch_upstream(&self) -> watch::Receiver<Option<SocketAddr>> {
        self.upstream.subscribe()
    }
}

async fn accept(listener: TcpListener, link: Arc<Link>) {
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                tokio::spawn(connection(client, link.clone()));
            }
            Err(e) => {
                eprintln!("chainwatch-sim: host address {}: accept: {e}", link.addr);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn connection(mut client: TcpStream, link: Arc<Link>) {
    let mut open = link.open.subscribe();
    if !*open.borrow_and_update() {
        return blackhole(client, &mut open).await;
    }
    let Some(to) = link.upstream() else {
        return; // dropped: closed before any answer, as a port nobody listens on
    };
    let Ok(mut server) = TcpStream::connect(to).await else {
        return;
    };
    let cut = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => false,
        _ = open.wait_for(|o| !*o) => true,
    };
    if cut {
        // The partition starts mid-connection: nothing more gets through either way.
        drop(server);
        blackhole(client, &mut open).await;
    }
}

/// Answer nothing: read and discard until the client gives up, or the network is back (then the
/// connection is dropped, as one that stalled across a partition would be).
async fn blackhole(mut client: TcpStream, open: &mut watch::Receiver<bool>) {
    let mut buf = [0u8; 4096];
    loop {
        tokio::select! {
            r = client.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            _ = open.wait_for(|o| *o) => return,
        }
    }
}
