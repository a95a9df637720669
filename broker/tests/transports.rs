//! MQTT over WebSocket and over TLS reach the same broker as plain TCP.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::BytesMut;
use common::{connect_packet, Client, WAIT};
use flowd_broker::codec::{self, Packet, ProtocolVersion::V311, ProtocolVersion::V5, QoS};
use flowd_broker::TlsConfig;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[tokio::test]
async fn websocket_clients_use_the_mqtt_subprotocol_and_binary_frames() {
    let mut config = common::config();
    config.ws = Some(local(0));
    let broker = common::start_with(config).await;
    let ws_addr = broker.ws_addr().unwrap();
    let mut tcp = Client::connect(broker.local_addr().unwrap(), V311, "tcp-side", true).await;
    tcp.subscribe(1, &[("ws/#", QoS::AtMostOnce)]).await;

    let mut req = format!("ws://{ws_addr}/mqtt")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
    let stream = tokio::net::TcpStream::connect(ws_addr).await.unwrap();
    let (mut ws, resp) = tokio_tungstenite::client_async(req, stream).await.unwrap();
    assert_eq!(
        resp.headers().get("Sec-WebSocket-Protocol").unwrap(),
        "mqtt"
    );
    let mut out = BytesMut::new();
    codec::encode(
        &Packet::Connect(Box::new(connect_packet(V5, "browser", true, 60))),
        V5,
        &mut out,
    );
    ws.send(Message::Binary(out.split().freeze()))
        .await
        .unwrap();
    let frame = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let mut data = BytesMut::from(&frame.into_data()[..]);
    assert!(
        matches!(codec::decode(&mut data, V5, usize::MAX), Ok(Some(Packet::ConnAck(a))) if a.code == 0)
    );
    let publish = codec::Publish {
        topic: "ws/hello".into(),
        payload: "from a browser".into(),
        ..Default::default()
    };
    codec::encode(&Packet::Publish(publish), V5, &mut out);
    ws.send(Message::Binary(out.split().freeze()))
        .await
        .unwrap();
    assert_eq!(&tcp.expect_publish().await.payload[..], b"from a browser");
    broker.shutdown().await;
}

#[tokio::test]
async fn tls_clients_connect_with_rustls() {
    let mut config = common::config();
    config.tls = Some(TlsConfig {
        addr: local(0),
        cert_file: fixture("server-cert.pem"),
        key_file: fixture("server-key.pem"),
    });
    let broker = common::start_with(config).await;
    let tls_addr = broker.tls_addr().unwrap();

    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    let pem = std::fs::read(fixture("ca-cert.pem")).unwrap();
    for cert in rustls_pemfile::certs(&mut &pem[..]) {
        roots.add(cert.unwrap()).unwrap();
    }
    let client_config = tokio_rustls::rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
    let stream = tokio::net::TcpStream::connect(tls_addr).await.unwrap();
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio::time::timeout(WAIT, connector.connect(name, stream))
        .await
        .unwrap()
        .unwrap();
    let mut out = BytesMut::new();
    codec::encode(
        &Packet::Connect(Box::new(connect_packet(V311, "secure", true, 60))),
        V311,
        &mut out,
    );
    tls.write_all(&out).await.unwrap();
    let mut buf = BytesMut::new();
    let connack = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(Some(p)) = codec::decode(&mut buf, V311, usize::MAX) {
                return p;
            }
            tls.read_buf(&mut buf).await.unwrap();
        }
    })
    .await
    .unwrap();
    assert!(matches!(connack, Packet::ConnAck(a) if a.code == 0));
    broker.shutdown().await;
}
