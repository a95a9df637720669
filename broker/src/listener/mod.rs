//! The TCP listener: accepts connections, bounds their number with a
//! semaphore and serves each on its own task until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::connection::{self, ConnContext};

/// Accepts on `listener` until `ctx.shutdown` is cancelled.
pub async fn run_tcp(listener: TcpListener, ctx: Arc<ConnContext>, limit: Arc<Semaphore>) {
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
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            info!("Connection from {peer} refused: too many connections.");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        tokio::spawn(async move {
            connection::serve(stream, peer, port, loopback, ctx).await;
            drop(permit);
        });
    }
    info!("Listener on port {port} stopped.");
}
