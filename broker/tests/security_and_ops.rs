//! ACL and password files, the anonymous rule, limits, and `$SYS`.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use common::{connect_packet, start_with, Client};
use flowd_broker::codec::{
    AckKind, Disconnect, Packet, Properties, ProtocolVersion::V311, ProtocolVersion::V5, Publish,
    QoS,
};

fn file(name: &str, text: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("flowd-broker-{name}-{}", std::process::id()));
    std::fs::write(&p, text).expect("write temp file");
    p
}

/// `mosquitto_passwd -b FILE alice secret` (Mosquitto 2.0.11).
const PASSWD: &str =
    "alice:$7$101$oezicVClSxCAz5b0$YjQvzfm8mNhmVVWYW4L4NS76WanOFn0aPhYyG/Sq3kYGoy2MLQpjzVm9IL2P5eGwi0q3xl+KZiFi5JhQP2Ncsw==\n";

#[tokio::test]
async fn acl_denies_subscribe_with_a_failure_code_and_drops_denied_publishes() {
    let mut config = common::config();
    config.acl_file = Some(file(
        "acl",
        "topic readwrite ok/#\ntopic readwrite test/#\ntopic deny test/nosubscribe\ntopic read ro/#\n",
    ));
    let broker = start_with(config).await;
    let addr = broker.local_addr().unwrap();
    let mut v3 = Client::connect(addr, V311, "acl3", true).await;
    assert_eq!(
        v3.subscribe(
            1,
            &[
                ("test/nosubscribe", QoS::AtLeastOnce),
                ("ok", QoS::AtMostOnce)
            ]
        )
        .await
        .codes,
        vec![0x80, 0]
    );
    let mut v5 = Client::connect(addr, V5, "acl5", true).await;
    let ack = v5
        .subscribe(
            1,
            &[
                ("test/nosubscribe", QoS::AtLeastOnce),
                ("ro/#", QoS::AtMostOnce),
            ],
        )
        .await;
    assert_eq!(ack.codes, vec![0x80, 0]);
    assert_eq!(
        ack.properties.reason_string.as_deref(),
        Some("Not authorized")
    );
    // ro/# is read-only: a publish there is acknowledged but not delivered.
    v3.publish_acked("ro/x", b"nope", false, 2).await;
    v5.expect_nothing().await;
    v5.send(Packet::Publish(Publish {
        qos: QoS::AtLeastOnce,
        topic: "ro/y".into(),
        pkid: 3,
        payload: Bytes::from_static(b"nope"),
        ..Default::default()
    }))
    .await;
    assert_eq!(v5.expect_ack(AckKind::PubAck, 3).await.code, 0x87);
    // QoS 2: the refusal comes as a failure PUBREC, which ends the flow;
    // the packet id is free again for the next message.
    let mut listener = Client::connect(addr, V311, "acl-listen", true).await;
    listener.subscribe(1, &[("ok/#", QoS::AtMostOnce)]).await;
    for (topic, code) in [("ro/z", 0x87), ("ok/z", 0)] {
        v5.send(Packet::Publish(Publish {
            qos: QoS::ExactlyOnce,
            topic: topic.into(),
            pkid: 4,
            payload: Bytes::from_static(b"q2"),
            ..Default::default()
        }))
        .await;
        assert_eq!(v5.expect_ack(AckKind::PubRec, 4).await.code, code);
    }
    v5.send(Packet::Ack(flowd_broker::codec::Ack::new(
        AckKind::PubRel,
        4,
    )))
    .await;
    assert_eq!(v5.expect_ack(AckKind::PubComp, 4).await.code, 0);
    assert_eq!(&listener.expect_publish().await.topic[..], "ok/z");
    broker.shutdown().await;
}

#[tokio::test]
async fn password_file_checks_users() {
    let mut config = common::config();
    config.password_file = Some(file("passwd", PASSWD));
    let broker = start_with(config).await;
    let addr = broker.local_addr().unwrap();
    let login = |version, password: &'static str| {
        let mut c = connect_packet(version, "u", true, 60);
        c.username = Some("alice".into());
        c.password = Some(Bytes::from_static(password.as_bytes()));
        c
    };
    assert_eq!(
        Client::connect_with(addr, login(V311, "secret"))
            .await
            .1
            .code,
        0
    );
    assert_eq!(
        Client::connect_with(addr, login(V311, "wrong"))
            .await
            .1
            .code,
        4
    );
    assert_eq!(
        Client::connect_with(addr, login(V5, "wrong")).await.1.code,
        0x86
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn anonymous_clients_are_refused_on_non_loopback_listeners_unless_allowed() {
    let mut config = common::config();
    config.mqtt = Some(SocketAddr::from(([0, 0, 0, 0], 0)));
    let broker = start_with(config.clone()).await;
    let port = broker.local_addr().unwrap().port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(
        Client::connect_with(addr, connect_packet(V311, "anon", true, 60))
            .await
            .1
            .code,
        5
    );
    broker.shutdown().await;

    config.allow_anonymous = Some(true);
    let broker = start_with(config).await;
    let addr = SocketAddr::from(([127, 0, 0, 1], broker.local_addr().unwrap().port()));
    assert_eq!(
        Client::connect_with(addr, connect_packet(V311, "anon", true, 60))
            .await
            .1
            .code,
        0
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn oversized_packets_close_the_connection() {
    let mut config = common::config();
    config.limits.max_packet_size = 1024;
    let broker = start_with(config).await;
    let addr = broker.local_addr().unwrap();
    let (mut c, ack) = Client::connect_with(addr, connect_packet(V5, "big", true, 60)).await;
    assert_eq!(ack.properties.maximum_packet_size, Some(1024));
    c.send(Packet::Publish(Publish {
        topic: "t".into(),
        payload: Bytes::from(vec![0u8; 2000]),
        ..Default::default()
    }))
    .await;
    let (closed, seen) = c.closed().await;
    assert!(closed);
    assert_eq!(seen, vec![Packet::Disconnect(Disconnect::new(0x95))]);
    broker.shutdown().await;
}

#[tokio::test]
async fn connection_limit_closes_extra_connections() {
    let mut config = common::config();
    config.limits.max_connections = 1;
    let broker = start_with(config).await;
    let addr = broker.local_addr().unwrap();
    let _first = Client::connect(addr, V311, "first", true).await;
    let mut second = Client::open(addr, V311).await;
    second
        .send(Packet::Connect(Box::new(connect_packet(
            V311, "second", true, 60,
        ))))
        .await;
    assert!(second.closed().await.0);
    broker.shutdown().await;
}

#[tokio::test]
async fn sys_topics_are_published_retained() {
    let mut config = common::config();
    config.sys_interval = Some(Duration::from_millis(100));
    let broker = start_with(config).await;
    let mut c = Client::connect(broker.local_addr().unwrap(), V311, "sys", true).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.subscribe(
        1,
        &[
            ("$SYS/broker/version", QoS::AtMostOnce),
            ("$SYS/broker/clients/connected", QoS::AtMostOnce),
        ],
    )
    .await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let p = c.expect_publish().await;
        assert!(p.retain);
        seen.push((p.topic, String::from_utf8_lossy(&p.payload).into_owned()));
    }
    seen.sort();
    assert_eq!(
        seen[0],
        ("$SYS/broker/clients/connected".to_string(), "1".to_string())
    );
    assert!(seen[1].1.starts_with("flowd-broker version "));
    let _ = Properties::default();
    broker.shutdown().await;
}
