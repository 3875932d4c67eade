//! A TCP proxy on loopback between one worker process and PostgreSQL that can fail the way
//! networks do:
//!
//! - **freeze**: stop relaying in both directions without closing anything, as a connection
//!   gone half-open does (a NAT or a proxy that stopped forwarding). Bytes that arrive
//!   meanwhile wait, and go on once it thaws;
//! - **cut**: close every connection it relays at once (both sides see them end), and relay
//!   new ones as before.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A running proxy; it stops relaying when dropped.
pub struct Proxy {
    addr: SocketAddr,
    frozen: watch::Sender<bool>,
    /// The pumps of the connections it relays now.
    pumps: Arc<Mutex<JoinSet<()>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Relays every connection to `upstream` (host:port), listening on a free port.
    pub async fn start(upstream: &str) -> std::io::Result<Proxy> {
        Self::start_at("127.0.0.1:0", upstream).await
    }

    /// Relays every connection to `upstream`, listening on `listen` (host:port).
    pub async fn start_at(listen: &str, upstream: &str) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (frozen, _) = watch::channel(false);
        let upstream = upstream.to_string();
        let thaw = frozen.clone();
        let pumps = Arc::new(Mutex::new(JoinSet::new()));
        let relaying = pumps.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (client_rx, client_tx) = client.into_split();
                let (server_rx, server_tx) = server.into_split();
                let mut pumps = relaying.lock().unwrap_or_else(|e| e.into_inner());
                // Reap the pumps of connections that ended.
                while pumps.try_join_next().is_some() {}
                pumps.spawn(pump(client_rx, server_tx, thaw.subscribe()));
                pumps.spawn(pump(server_rx, client_tx, thaw.subscribe()));
            }
        });
        Ok(Proxy {
            addr,
            frozen,
            pumps,
            accept,
        })
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

    /// Closes every connection it relays now (the bytes held by a freeze are dropped with
    /// them), and relays new ones, unfrozen.
    pub fn cut(&self) {
        // Dropping a pump drops its halves of both sockets: both ends see the connection end.
        self.pumps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .abort_all();
        self.thaw();
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
