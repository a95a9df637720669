//! flowd's MQTT client on its own: the QoS flows against flowd's broker, and
//! against a scripted broker (raw packets) what a real broker is not easily
//! made to do: drop a connection with a publication unacknowledged, refuse
//! a connection, stop answering pings.

use bytes::{Bytes, BytesMut};
use flowd_broker::codec::{self, Ack, AckKind, ConnAck, Packet, ProtocolVersion, QoS};
use flowd_broker::{Broker, BrokerConfig};
use flowd_nodes::network::mqtt_client::{
    open, ClientOptions, EventLoop, LinkEvent, Protocol, SubOptions,
};
use flowd_nodes::network::mqtt_message::Publication;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(10);

fn options(port: u16, protocol: Protocol, client_id: &str) -> ClientOptions {
    ClientOptions {
        protocol,
        ..ClientOptions::new("127.0.0.1", port, client_id)
    }
}

fn publication(topic: &str, payload: &'static [u8], qos: u8) -> Publication {
    Publication {
        topic: topic.into(),
        payload: Bytes::from_static(payload),
        qos,
        retain: false,
    }
}

/// Polls until `pick` returns something, within [`WAIT`].
async fn next<T>(events: &mut EventLoop, mut pick: impl FnMut(LinkEvent) -> Option<T>) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let e = events.poll().await.expect("connection error");
            if let Some(t) = pick(e) {
                return t;
            }
        }
    })
    .await
    .expect("event within the time limit")
}

async fn local_broker() -> Broker {
    Broker::start(BrokerConfig {
        mqtt: Some("127.0.0.1:0".parse().unwrap()),
        ..BrokerConfig::default()
    })
    .await
    .expect("broker starts")
}

#[tokio::test]
async fn qos_2_both_ways_through_flowds_broker() {
    for protocol in [Protocol::V4, Protocol::V5] {
        let broker = local_broker().await;
        let port = broker.local_addr().unwrap().port();
        let (client, mut events) = open(&options(port, protocol, "q2"));
        next(&mut events, |e| {
            matches!(e, LinkEvent::Connected { .. }).then_some(())
        })
        .await;
        let sub = SubOptions {
            qos: 2,
            nl: false,
            rap: false,
            rh: 0,
        };
        assert!(client.try_subscribe("t/#", &sub));
        next(&mut events, |e| matches!(e, LinkEvent::Other).then_some(())).await;
        assert!(client.try_publish(&publication("t/a", b"once", 2), None));
        let mut sent = None;
        let mut acked = None;
        let mut received = None;
        tokio::time::timeout(WAIT, async {
            while sent.is_none() || acked.is_none() || received.is_none() {
                match events.poll().await.expect("connection error") {
                    LinkEvent::PublishSent(id) => sent = Some(id),
                    LinkEvent::PublishAcked(id) => acked = Some(id),
                    LinkEvent::Publish(r) => {
                        assert_eq!(r.topic, "t/a");
                        assert_eq!(&r.payload[..], b"once");
                        assert_eq!(r.qos, 2);
                        let p = r.packet.expect("QoS 2 needs an acknowledgement");
                        assert!(client.try_ack(&p));
                        received = Some(p);
                    }
                    _ => {}
                }
            }
        })
        .await
        .expect("publication sent, acknowledged and received");
        assert_ne!(sent, Some(0), "QoS 2 has a packet id");
        assert_eq!(sent, acked, "PUBCOMP for the packet that was sent");
        // The broker completes our PUBREC with PUBREL, which the client
        // answers: a second publication still flows.
        assert!(client.try_publish(&publication("t/b", b"twice", 1), None));
        let topic = next(&mut events, |e| match e {
            LinkEvent::Publish(r) => Some(r.topic),
            _ => None,
        })
        .await;
        assert_eq!(topic, "t/b");
        broker.shutdown().await;
    }
}

#[tokio::test]
async fn a_refused_connection_says_why() {
    let broker = Broker::start(BrokerConfig {
        mqtt: Some("127.0.0.1:0".parse().unwrap()),
        allow_anonymous: Some(false),
        ..BrokerConfig::default()
    })
    .await
    .unwrap();
    let port = broker.local_addr().unwrap().port();
    for protocol in [Protocol::V4, Protocol::V5] {
        let (_client, mut events) = open(&options(port, protocol, "anon"));
        let e = tokio::time::timeout(WAIT, events.poll())
            .await
            .expect("answer in time")
            .expect_err("anonymous clients are refused");
        assert!(e.starts_with("Connection refused: not authorized"), "{e}");
    }
    broker.shutdown().await;
}

/// A scripted broker: accepts one connection, answers CONNACK, returns the socket.
async fn accept_and_connack(listener: &TcpListener, session_present: bool) -> (TcpStream, Packet) {
    let (mut s, _) = listener.accept().await.unwrap();
    let connect = read_packet(&mut s, &mut BytesMut::new()).await;
    let mut out = BytesMut::new();
    let mut ack = ConnAck::new(0);
    ack.session_present = session_present;
    codec::encode(&Packet::ConnAck(ack), ProtocolVersion::V311, &mut out);
    s.write_all(&out).await.unwrap();
    (s, connect)
}

async fn read_packet(s: &mut TcpStream, buf: &mut BytesMut) -> Packet {
    loop {
        if let Some(p) = codec::decode(buf, ProtocolVersion::V311, 1 << 20).unwrap() {
            return p;
        }
        let n = tokio::time::timeout(WAIT, s.read_buf(buf))
            .await
            .expect("packet in time")
            .unwrap();
        assert!(n > 0, "client closed the connection");
    }
}

#[tokio::test]
async fn an_unacknowledged_publication_is_sent_again_after_reconnecting() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut o = options(port, Protocol::V4, "resend");
    o.clean = false;
    let (client, mut events) = open(&o);
    let broker = tokio::spawn(async move {
        let (mut s, connect) = accept_and_connack(&listener, false).await;
        let Packet::Connect(c) = connect else {
            panic!("CONNECT first")
        };
        assert_eq!(c.client_id, "resend");
        assert!(!c.clean_start);
        let mut buf = BytesMut::new();
        let Packet::Publish(first) = read_packet(&mut s, &mut buf).await else {
            panic!("PUBLISH expected")
        };
        assert!(!first.dup);
        drop(s); // gone without PUBACK
        let (mut s, _) = accept_and_connack(&listener, true).await;
        let mut buf = BytesMut::new();
        let Packet::Publish(again) = read_packet(&mut s, &mut buf).await else {
            panic!("PUBLISH expected again")
        };
        assert!(again.dup, "a resent publication has DUP set");
        assert_eq!(again.pkid, first.pkid);
        assert_eq!(again.payload, first.payload);
        assert_eq!(again.qos, QoS::AtLeastOnce);
        let mut out = BytesMut::new();
        codec::encode(
            &Packet::Ack(Ack::new(AckKind::PubAck, again.pkid)),
            ProtocolVersion::V311,
            &mut out,
        );
        s.write_all(&out).await.unwrap();
        // Keep the socket open until the client has seen the PUBACK.
        tokio::time::sleep(Duration::from_secs(1)).await;
        again.pkid
    });
    next(&mut events, |e| {
        matches!(e, LinkEvent::Connected { .. }).then_some(())
    })
    .await;
    assert!(client.try_publish(&publication("r", b"keep me", 1), None));
    let sent = next(&mut events, |e| match e {
        LinkEvent::PublishSent(id) => Some(id),
        _ => None,
    })
    .await;
    // The connection drops: the poll reports it, the next one reconnects.
    let err = tokio::time::timeout(WAIT, async {
        loop {
            if let Err(e) = events.poll().await {
                return e;
            }
        }
    })
    .await
    .expect("the drop is reported");
    assert!(!err.is_empty());
    let acked = next(&mut events, |e| match e {
        LinkEvent::PublishAcked(id) => Some(id),
        _ => None,
    })
    .await;
    assert_eq!(acked, sent);
    assert_eq!(broker.await.unwrap(), sent);
}

#[tokio::test]
async fn a_broker_that_stops_answering_pings_is_left() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut o = options(port, Protocol::V4, "ping");
    o.keepalive = 1;
    let (_client, mut events) = open(&o);
    let broker = tokio::spawn(async move {
        let (mut s, _) = accept_and_connack(&listener, false).await;
        // Read (and ignore) everything: PINGREQ gets no PINGRESP.
        let mut buf = BytesMut::new();
        let mut pings = 0;
        while let Ok(Ok(n)) = tokio::time::timeout(WAIT, s.read_buf(&mut buf)).await {
            if n == 0 {
                break;
            }
            while let Some(p) = codec::decode(&mut buf, ProtocolVersion::V311, 1 << 20).unwrap() {
                if p == Packet::PingReq {
                    pings += 1;
                }
            }
        }
        pings
    });
    next(&mut events, |e| {
        matches!(e, LinkEvent::Connected { .. }).then_some(())
    })
    .await;
    let started = std::time::Instant::now();
    let err = tokio::time::timeout(WAIT, async {
        loop {
            if let Err(e) = events.poll().await {
                return e;
            }
        }
    })
    .await
    .expect("the silent broker is detected");
    assert!(err.contains("keep-alive"), "{err}");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "not before a ping was due and unanswered"
    );
    drop(events);
    assert_eq!(
        broker.await.unwrap(),
        1,
        "one PINGREQ, then the connection is closed"
    );
}
