//! Listeners: plain TCP, WebSocket (`ws.rs`) and TLS (`tls.rs`). Each
//! accepts connections, bounds their number with a shared semaphore and
//! serves each on its own task until shutdown.

mod tls;
mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

pub use tls::{acceptor as tls_acceptor, TlsError};

use crate::connection::{self, ConnContext};

/// What runs on top of an accepted TCP stream.
#[derive(Clone)]
pub enum Transport {
    Tcp,
    WebSocket,
    Tls(TlsAcceptor),
}

/// Pause after a failed accept (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts on `listener` until `ctx.shutdown` is cancelled.
pub async fn run(
    listener: TcpListener,
    transport: Transport,
    ctx: Arc<ConnContext>,
    limit: Arc<Semaphore>,
) {
    let local = listener.local_addr().ok();
    let port = local.map(|a| a.port()).unwrap_or(0);
    // Mosquitto 2: anonymous clients only on loopback-bound listeners.
    let loopback = local.is_some_and(|a| a.ip().is_loopback());
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = ctx.shutdown.cancelled() => break,
        };
        let (stream, peer): (_, SocketAddr) = match accepted {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "Accept failed.");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            info!("Connection from {peer} refused: too many connections.");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        let transport = transport.clone();
        tokio::spawn(async move {
            match transport {
                Transport::Tcp => {
                    connection::serve(stream, connection::Peer::Network(peer), port, loopback, ctx)
                        .await
                }
                Transport::WebSocket => ws::serve(stream, peer, port, loopback, ctx).await,
                Transport::Tls(acceptor) => match acceptor.accept(stream).await {
                    Ok(tls) => {
                        connection::serve(tls, connection::Peer::Network(peer), port, loopback, ctx)
                            .await
                    }
                    Err(e) => debug!(%peer, error = %e, "TLS handshake failed."),
                },
            }
            drop(permit);
        });
    }
    info!("Listener on port {port} stopped.");
}
