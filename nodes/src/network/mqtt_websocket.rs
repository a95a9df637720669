//! MQTT over WebSocket for flowd's client (`ws://` and `wss://` broker
//! URLs, as Node-RED accepts them): the HTTP upgrade asks for the `mqtt`
//! subprotocol, then each write of the event loop goes out as one binary
//! frame and received frames are read back as one byte stream.

use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// A WebSocket connection seen as the byte stream MQTT runs on.
pub(super) struct WebSocketTransport<S> {
    ws: WebSocketStream<S>,
    /// What is left of the last received frame.
    pending: Bytes,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketTransport<S> {
    /// The underlying stream (TCP or TLS).
    pub(super) fn get_ref(&self) -> &S {
        self.ws.get_ref()
    }
}

/// Upgrades `stream` (already connected to `host:port`) to a WebSocket on `path`.
pub(super) async fn upgrade<S>(
    stream: S,
    host: &str,
    port: u16,
    path: &str,
) -> Result<WebSocketTransport<S>, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let url = format!("ws://{host}:{port}{path}");
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("invalid WebSocket URL \"{url}\": {e}"))?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
    let (ws, _response) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(|e| format!("WebSocket upgrade failed: {e}"))?;
    Ok(WebSocketTransport {
        ws,
        pending: Bytes::new(),
    })
}

fn io_error(e: tokio_tungstenite::tungstenite::Error) -> io::Error {
    io::Error::other(e)
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WebSocketTransport<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                buf.put_slice(&self.pending[..n]);
                self.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(b))) => self.pending = b,
                // End of stream: a read of 0 bytes.
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                // Pings are answered by tungstenite; text frames are not MQTT.
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WebSocketTransport<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(io_error)?;
        Pin::new(&mut self.ws)
            .start_send(Message::Binary(Bytes::copy_from_slice(buf)))
            .map_err(io_error)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(io_error)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_close(cx).map_err(io_error)
    }
}
