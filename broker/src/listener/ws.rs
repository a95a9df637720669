//! MQTT over WebSocket (browser clients such as MQTT.js): the HTTP upgrade
//! answers the `mqtt` subprotocol, then binary frames are bridged to an
//! in-memory byte stream that the ordinary connection code serves.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tracing::debug;

use crate::connection::{self, ConnContext};

/// The WebSocket subprotocol MQTT clients ask for.
const MQTT_SUBPROTOCOL: &str = "mqtt";
/// Buffer between the WebSocket frames and the MQTT connection.
const BRIDGE_BUFFER: usize = 64 * 1024;

// The signature is tungstenite's handshake callback's.
#[allow(clippy::result_large_err)]
fn answer_subprotocol(req: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
    let asked = req
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == MQTT_SUBPROTOCOL);
    if asked {
        resp.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(MQTT_SUBPROTOCOL),
        );
    }
    Ok(resp)
}

/// Upgrades `stream` and serves MQTT over it until either side closes.
pub async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    port: u16,
    allow_anonymous: bool,
    ctx: Arc<ConnContext>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ws = match tokio_tungstenite::accept_hdr_async(stream, answer_subprotocol).await {
        Ok(ws) => ws,
        Err(e) => {
            debug!(%peer, error = %e, "WebSocket handshake failed.");
            return;
        }
    };
    let (client_side, broker_side) = tokio::io::duplex(BRIDGE_BUFFER);
    let mqtt = tokio::spawn(connection::serve(
        broker_side,
        connection::Peer::Network(peer),
        port,
        allow_anonymous,
        ctx,
    ));
    let (mut ws_tx, mut ws_rx) = ws.split();
    let (mut rd, mut wr) = tokio::io::split(client_side);
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        tokio::select! {
            frame = ws_rx.next() => match frame {
                Some(Ok(WsMessage::Binary(data))) => {
                    if wr.write_all(&data).await.is_err() {
                        break;
                    }
                }
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {}
                // MQTT must be carried in binary frames [MQTT-6.0.0-1].
                Some(Ok(WsMessage::Text(_) | WsMessage::Close(_))) | Some(Err(_)) | None => break,
            },
            n = rd.read_buf(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if ws_tx.send(WsMessage::Binary(buf.split().freeze())).await.is_err() {
                        break;
                    }
                }
            },
        }
    }
    let _ = ws_tx.close().await;
    drop(wr);
    let _ = mqtt.await;
}
