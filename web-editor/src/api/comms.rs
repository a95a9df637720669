//! `GET /comms`: upgrades to the comms websocket.

use crate::comms::serve_client;
use crate::EditorState;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;

/// Largest client frame accepted (clients only send subscriptions).
const MAX_CLIENT_FRAME: usize = 64 * 1024;

/// Upgrades and serves one comms client.
pub async fn websocket(State(st): State<Arc<EditorState>>, ws: WebSocketUpgrade) -> Response {
    let hub = st.comms.clone();
    let auth = st.auth.clone();
    let runtime = st.runtime.clone();
    let rates_interval = st.rates_interval;
    ws.max_message_size(MAX_CLIENT_FRAME)
        .on_upgrade(move |socket: WebSocket| async move {
            let (sink, stream) = socket.split();
            let incoming = stream
                .take_while(|m| {
                    std::future::ready(m.as_ref().is_ok_and(|m| !matches!(m, Message::Close(_))))
                })
                .filter_map(|m| async move {
                    match m {
                        Ok(Message::Text(t)) => Some(t.to_string()),
                        _ => None,
                    }
                })
                .boxed();
            let outgoing = sink.with(|text: String| async move {
                Ok::<_, axum::Error>(Message::Text(text.into()))
            });
            // The publisher first looks for clients one interval later, when
            // this one is counted.
            crate::rates::ensure_running(runtime, hub.clone(), rates_interval);
            serve_client(hub, auth, incoming, Box::pin(outgoing)).await;
        })
}
