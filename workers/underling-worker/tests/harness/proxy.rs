//! A TCP proxy on loopback between one worker process and PostgreSQL that can freeze: stop
//! relaying in both directions without closing anything, as a connection gone half-open does
//! (a NAT or a proxy that stopped forwarding). Bytes that arrive meanwhile wait, and go on once
//! it thaws.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy; it stops relaying when dropped.
pub struct Proxy {
    addr: SocketAddr,
    frozen: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Relays every connection to `upstream` (host:port).
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let (frozen, _) = watch::channel(false);
        let upstream = upstream.to_string();
        let thaw = frozen.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (client_rx, client_tx) = client.into_split();
                let (server_rx, server_tx) = server.into_split();
                tokio::spawn(pump(client_rx, server_tx, thaw.subscribe()));
                tokio::spawn(pump(server_rx, client_tx, thaw.subscribe()));
            }
        });
        Proxy {
            addr,
            frozen,
            accept,
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stops relaying in both directions, closing nothing.
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// Relays again, the bytes held meanwhile first.
    pub fn thaw(&self) {
        self.frozen.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Copies one direction, holding each chunk while frozen.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if frozen.wait_for(|frozen| !*frozen).await.is_err() {
            // The proxy is gone: as frozen as it gets.
            std::future::pending::<()>().await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
