//! MQTT 5.0 features over TCP.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{connect_packet, start, start_with, Client};
use flowd_broker::codec::{
    Ack, AckKind, Disconnect, LastWill, Packet, Properties, ProtocolVersion::V5, Publish, QoS,
    RetainHandling, SubscriptionOptions,
};

fn opts(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions {
        qos,
        ..Default::default()
    }
}

fn publish(
    topic: &str,
    payload: &'static [u8],
    qos: QoS,
    pkid: u16,
    properties: Properties,
) -> Packet {
    Packet::Publish(Publish {
        qos,
        topic: topic.into(),
        pkid,
        properties,
        payload: Bytes::from_static(payload),
        ..Default::default()
    })
}

#[tokio::test]
async fn properties_are_forwarded_unaltered_with_subscription_ids() {
    let broker = start().await;
    let addr = broker.local_addr().unwrap();
    let mut sub = Client::connect(addr, V5, "props-sub", true).await;
    let mut sp = Properties::default();
    sp.subscription_identifiers.push(42);
    sub.subscribe_opts(1, vec![("req/#".into(), opts(QoS::AtMostOnce))], sp)
        .await;
    let mut publ = Client::connect(addr, V5, "props-pub", true).await;
    let mut p = Properties {
        payload_format_indicator: Some(1),
        content_type: Some("application/json".into()),
        response_topic: Some("resp/1".into()),
        correlation_data: Some(Bytes::from_static(b"\x00corr")),
        ..Default::default()
    };
    p.user_properties = vec![
        ("b".into(), "2".into()),
        ("a".into(), "1".into()),
        ("b".into(), "3".into()),
    ];
    publ.send(publish("req/x", b"{}", QoS::AtMostOnce, 0, p.clone()))
        .await;
    let got = sub.expect_publish().await;
    assert_eq!(got.properties.user_properties, p.user_properties);
    assert_eq!(got.properties.content_type, p.content_type);
    assert_eq!(got.properties.payload_format_indicator, Some(1));
    assert_eq!(got.properties.response_topic, p.response_topic);
    assert_eq!(got.properties.correlation_data, p.correlation_data);
    assert_eq!(got.properties.subscription_identifiers, vec![42]);
    broker.shutdown().await;
}

#[tokio::test]
async fn no_local_and_retain_as_published_and_retain_handling() {
    let broker = start().await;
    let addr = broker.local_addr().unwrap();
    let mut c = Client::connect(addr, V5, "nl", true).await;
    let nl = SubscriptionOptions {
        no_local: true,
        ..opts(QoS::AtMostOnce)
    };
    c.subscribe_opts(1, vec![("own".into(), nl)], Properties::default())
        .await;
    c.send(publish(
        "own",
        b"mine",
        QoS::AtMostOnce,
        0,
        Properties::default(),
    ))
    .await;
    c.expect_nothing().await;

    let mut publ = Client::connect(addr, V5, "rap-pub", true).await;
    let mut retained = Publish {
        retain: true,
        topic: "kept".into(),
        payload: "v".into(),
        ..Default::default()
    };
    publ.send(Packet::Publish(retained.clone())).await;
    let never = SubscriptionOptions {
        retain_handling: RetainHandling::Never,
        ..opts(QoS::AtMostOnce)
    };
    c.subscribe_opts(2, vec![("kept".into(), never)], Properties::default())
        .await;
    c.expect_nothing().await;
    let rap = SubscriptionOptions {
        retain_as_published: true,
        retain_handling: RetainHandling::OnNewSubscribe,
        ..opts(QoS::AtMostOnce)
    };
    let mut d = Client::connect(addr, V5, "rap", true).await;
    d.subscribe_opts(1, vec![("kept".into(), rap)], Properties::default())
        .await;
    assert!(
        d.expect_publish().await.retain,
        "retained on new subscription"
    );
    d.subscribe_opts(2, vec![("kept".into(), rap)], Properties::default())
        .await;
    d.expect_nothing().await;
    retained.payload = "w".into();
    publ.send(Packet::Publish(retained)).await;
    assert!(d.expect_publish().await.retain, "retain as published");
    broker.shutdown().await;
}

#[tokio::test]
async fn inbound_topic_aliases_and_invalid_alias_disconnects() {
    let broker = start().await;
    let addr = broker.local_addr().unwrap();
    let mut sub = Client::connect(addr, V5, "ta-sub", true).await;
    sub.subscribe(1, &[("alias/t", QoS::AtMostOnce)]).await;
    let mut publ = Client::connect(addr, V5, "ta-pub", true).await;
    let alias = Properties {
        topic_alias: Some(1),
        ..Default::default()
    };
    publ.send(publish("alias/t", b"1", QoS::AtMostOnce, 0, alias.clone()))
        .await;
    publ.send(publish("", b"2", QoS::AtMostOnce, 0, alias))
        .await;
    assert_eq!(sub.expect_publish().await.topic, "alias/t");
    let second = sub.expect_publish().await;
    assert_eq!(
        (second.topic.as_str(), &second.payload[..]),
        ("alias/t", &b"2"[..])
    );
    let bad = Properties {
        topic_alias: Some(0),
        ..Default::default()
    };
    publ.send(publish("alias/t", b"3", QoS::AtMostOnce, 0, bad))
        .await;
    let (closed, seen) = publ.closed().await;
    assert!(closed);
    assert_eq!(seen, vec![Packet::Disconnect(Disconnect::new(0x94))]);
    broker.shutdown().await;
}

#[tokio::test]
async fn outbound_topic_aliases_when_the_client_allows_them() {
    let broker = start().await;
    let addr = broker.local_addr().unwrap();
    let mut c = connect_packet(V5, "ta-out", true, 60);
    c.properties.topic_alias_maximum = Some(2);
    let (mut sub, _) = Client::connect_with(addr, c).await;
    sub.subscribe(1, &[("o/t", QoS::AtMostOnce)]).await;
    let mut publ = Client::connect(addr, V5, "ta-outp", true).await;
    publ.send(publish(
        "o/t",
        b"1",
        QoS::AtMostOnce,
        0,
        Properties::default(),
    ))
    .await;
    publ.send(publish(
        "o/t",
        b"2",
        QoS::AtMostOnce,
        0,
        Properties::default(),
    ))
    .await;
    let first = sub.expect_publish().await;
    let second = sub.expect_publish().await;
    assert_eq!(
        (first.topic.as_str(), first.properties.topic_alias),
        ("o/t", Some(1))
    );
    assert_eq!(
        (second.topic.as_str(), second.properties.topic_alias),
        ("", Some(1))
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn receive_maximum_limits_inflight_towards_the_client() {
    let broker = start().await;
    let addr = broker.local_addr().unwrap();
    let mut c = connect_packet(V5, "rm", true, 60);
    c.properties.receive_maximum = Some(2);
    let (mut sub, _) = Client::connect_with(addr, c).await;
    sub.subscribe(1, &[("rm", QoS::AtLeastOnce)]).await;
    let mut publ = Client::connect(addr, V5, "rmp", true).await;
    for i in 1..=3 {
        publ.send(publish(
            "rm",
            b"m",
            QoS::AtLeastOnce,
            i,
            Properties::default(),
        ))
        .await;
        publ.expect_ack(AckKind::PubAck, i).await;
    }
    let a = sub.expect_publish().await;
    let _b = sub.expect_publish().await;
    sub.expect_nothing().await;
    sub.send(Packet::Ack(Ack::new(AckKind::PubAck, a.pkid)))
        .await;
    let _c = sub.expect_publish().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn maximum_packet_size_drops_oversized_deliveries() {
    let broker = start().await;
    let addr = broker.local_addr().unwrap();
    let mut c = connect_packet(V5, "mps", true, 60);
    c.properties.maximum_packet_size = Some(64);
    let (mut sub, _) = Client::connect_with(addr, c).await;
    sub.subscribe(1, &[("big", QoS::AtLeastOnce)]).await;
    let mut publ = Client::connect(addr, V5, "mpsp", true).await;
    publ.send(publish(
        "big",
        &[b'x'; 100],
        QoS::AtLeastOnce,
        1,
        Properties::default(),
    ))
    .await;
    publ.send(publish(
        "big",
        b"small",
        QoS::AtLeastOnce,
        2,
        Properties::default(),
    ))
    .await;
    assert_eq!(&sub.expect_publish().await.payload[..], b"small");
    broker.shutdown().await;
}

#[tokio::test]
async fn message_expiry_drops_stale_queued_messages_and_counts_down() {
    let broker = start().await;
    let addr = broker.local_addr().unwrap();
    let mut c = connect_packet(V5, "exp", true, 60);
    c.properties.session_expiry_interval = Some(60);
    let (mut sub, _) = Client::connect_with(addr, c).await;
    sub.subscribe(1, &[("e/+", QoS::AtLeastOnce)]).await;
    sub.disconnect().await;
    let mut publ = Client::connect(addr, V5, "expp", true).await;
    let short = Properties {
        message_expiry_interval: Some(1),
        ..Default::default()
    };
    let long = Properties {
        message_expiry_interval: Some(100),
        ..Default::default()
    };
    publ.send(publish("e/short", b"s", QoS::AtLeastOnce, 1, short))
        .await;
    publ.expect_ack(AckKind::PubAck, 1).await;
    publ.send(publish("e/long", b"l", QoS::AtLeastOnce, 2, long))
        .await;
    publ.expect_ack(AckKind::PubAck, 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut c = connect_packet(V5, "exp", false, 60);
    c.properties.session_expiry_interval = Some(60);
    let (mut sub, ack) = Client::connect_with(addr, c).await;
    assert!(ack.session_present);
    let p = sub.expect_publish().await;
    assert_eq!(p.topic, "e/long");
    assert!(p
        .properties
        .message_expiry_interval
        .is_some_and(|s| (98..100).contains(&s)));
    sub.send(Packet::Ack(Ack::new(AckKind::PubAck, p.pkid)))
        .await;
    sub.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn an_expired_message_already_in_flight_is_still_completed_on_reconnect() {
    let broker = start().await;
    let addr = broker.local_addr().unwrap();
    let session = || {
        let mut c = connect_packet(V5, "exp-inflight", false, 60);
        c.properties.session_expiry_interval = Some(60);
        c
    };
    let (mut sub, _) = Client::connect_with(addr, session()).await;
    sub.subscribe(1, &[("ei/+", QoS::ExactlyOnce)]).await;
    let mut publ = Client::connect(addr, V5, "exp-inflight-pub", true).await;
    let short = Properties {
        message_expiry_interval: Some(1),
        ..Default::default()
    };
    publ.send(publish("ei/q1", b"1", QoS::AtLeastOnce, 1, short.clone()))
        .await;
    publ.expect_ack(AckKind::PubAck, 1).await;
    publ.send(publish("ei/q2", b"2", QoS::ExactlyOnce, 2, short))
        .await;
    publ.expect_ack(AckKind::PubRec, 2).await;
    // Both sent, neither acknowledged; the client goes away until they
    // have expired.
    let first = [sub.expect_publish().await, sub.expect_publish().await];
    sub.disconnect().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (mut sub, ack) = Client::connect_with(addr, session()).await;
    assert!(ack.session_present);
    // Onward delivery had started [MQTT-3.3.2-5]: resent, same packet ids,
    // DUP, no time left.
    for before in &first {
        let p = sub.expect_publish().await;
        assert_eq!(
            (&p.topic, p.pkid, p.dup),
            (&before.topic, before.pkid, true)
        );
        assert_eq!(p.properties.message_expiry_interval, Some(0));
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn assigned_client_id_and_server_keep_alive() {
    let mut config = common::config();
    config.max_keepalive = Some(60);
    let broker = start_with(config).await;
    let addr = broker.local_addr().unwrap();
    let (_c, ack) = Client::connect_with(addr, connect_packet(V5, "", true, 120)).await;
    assert!(ack.properties.assigned_client_identifier.is_some());
    assert_eq!(ack.properties.server_keep_alive, Some(60));
    let (_c, ack) = Client::connect_with(addr, connect_packet(V5, "ka0", true, 0)).await;
    assert_eq!((ack.code, ack.properties.server_keep_alive), (0, Some(60)));
    broker.shutdown().await;
}

#[tokio::test]
async fn will_delay_is_cancelled_by_reconnect_and_sent_after_the_delay() {
    let broker = start().await;
    let addr = broker.local_addr().unwrap();
    let mut watcher = Client::connect(addr, V5, "wd-watch", true).await;
    watcher.subscribe(1, &[("wd/#", QoS::AtMostOnce)]).await;
    let mk = |id: &str| {
        let mut c = connect_packet(V5, id, false, 60);
        c.properties.session_expiry_interval = Some(30);
        c.will = Some(LastWill {
            topic: format!("wd/{id}"),
            payload: "gone".into(),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: Properties {
                will_delay_interval: Some(1),
                ..Default::default()
            },
        });
        c
    };
    let (c1, _) = Client::connect_with(addr, mk("back")).await;
    drop(c1);
    let (_c1, ack) = Client::connect_with(addr, mk("back")).await;
    assert!(ack.session_present);
    let (c2, _) = Client::connect_with(addr, mk("away")).await;
    drop(c2);
    let p = watcher.expect_publish().await;
    assert_eq!(p.topic, "wd/away");
    watcher.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn disconnect_with_will_message_publishes_the_will() {
    let broker = start().await;
    let addr = broker.local_addr().unwrap();
    let mut watcher = Client::connect(addr, V5, "dww", true).await;
    watcher.subscribe(1, &[("dw", QoS::AtMostOnce)]).await;
    let mut c = connect_packet(V5, "dw-client", true, 60);
    c.will = Some(LastWill {
        topic: "dw".into(),
        payload: "w".into(),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties::default(),
    });
    let (mut client, _) = Client::connect_with(addr, c).await;
    client.send(Packet::Disconnect(Disconnect::new(0x04))).await;
    assert_eq!(watcher.expect_publish().await.topic, "dw");
    broker.shutdown().await;
}

#[tokio::test]
async fn no_matching_subscribers_reason_code() {
    let broker = start().await;
    let mut c = Client::connect(broker.local_addr().unwrap(), V5, "nms", true).await;
    c.send(publish(
        "nobody/here",
        b"x",
        QoS::AtLeastOnce,
        1,
        Properties::default(),
    ))
    .await;
    assert_eq!(c.expect_ack(AckKind::PubAck, 1).await.code, 0x10);
    broker.shutdown().await;
}

#[tokio::test]
async fn exceeding_our_receive_maximum_disconnects_with_0x93() {
    let mut config = common::config();
    config.limits.max_inflight_messages = 2;
    let broker = start_with(config).await;
    let (mut c, ack) = Client::connect_with(
        broker.local_addr().unwrap(),
        connect_packet(V5, "rmx", true, 60),
    )
    .await;
    assert_eq!(ack.properties.receive_maximum, Some(2));
    for pkid in 1..=3 {
        c.send(publish(
            "t",
            b"x",
            QoS::ExactlyOnce,
            pkid,
            Properties::default(),
        ))
        .await;
    }
    let (closed, seen) = c.closed().await;
    assert!(closed);
    assert_eq!(
        seen.last(),
        Some(&Packet::Disconnect(Disconnect::new(0x93)))
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn session_expiry_interval_is_honoured() {
    let broker = start().await;
    let addr = broker.local_addr().unwrap();
    let with_expiry = |clean: bool, secs: u32| {
        let mut c = connect_packet(V5, "sei", clean, 60);
        c.properties.session_expiry_interval = Some(secs);
        c
    };
    let (mut c, _) = Client::connect_with(addr, with_expiry(true, 1)).await;
    c.subscribe(1, &[("sei", QoS::AtLeastOnce)]).await;
    c.disconnect().await;
    let (c, ack) = Client::connect_with(addr, with_expiry(false, 1)).await;
    assert!(ack.session_present, "within the interval");
    c.disconnect().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (c, ack) = Client::connect_with(addr, with_expiry(false, 0)).await;
    assert!(!ack.session_present, "expired");
    c.disconnect().await;
    let (c, ack) = Client::connect_with(addr, with_expiry(false, 0)).await;
    assert!(
        !ack.session_present,
        "expiry 0 ends the session at disconnect"
    );
    c.disconnect().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn unsubscribe_stops_delivery_and_reports_unknown_filters() {
    let broker = start().await;
    let addr = broker.local_addr().unwrap();
    let mut c = Client::connect(addr, V5, "unsub", true).await;
    c.subscribe(1, &[("u/1", QoS::AtMostOnce)]).await;
    c.send(Packet::Unsubscribe(flowd_broker::codec::Unsubscribe {
        pkid: 2,
        properties: Properties::default(),
        filters: vec!["u/1".into(), "u/none".into()],
    }))
    .await;
    match c.recv().await {
        Some(Packet::UnsubAck(a)) => assert_eq!((a.pkid, a.codes), (2, vec![0, 0x11])),
        other => panic!("expected UNSUBACK, got {other:?}"),
    }
    let mut p = Client::connect(addr, V5, "unsub-pub", true).await;
    p.send(publish(
        "u/1",
        b"x",
        QoS::AtMostOnce,
        0,
        Properties::default(),
    ))
    .await;
    c.expect_nothing().await;
    broker.shutdown().await;
}
