//! MQTT 3.1.1 behaviour over TCP with exact packet flows.

mod common;

use common::{connect_packet, start, start_with, Client, WAIT};
use flowd_broker::codec::{AckKind, LastWill, Packet, Properties, ProtocolVersion::V311, QoS};

#[tokio::test]
async fn qos0_1_2_flows_and_delivery_at_min_qos() {
    let broker = start().await;
    let addr = broker.local_addr().unwrap();
    let mut sub = Client::connect(addr, V311, "sub", true).await;
    let ack = sub.subscribe(1, &[("t/1", QoS::AtLeastOnce)]).await;
    assert_eq!(ack.codes, vec![1]);
    let mut publ = Client::connect(addr, V311, "pub", true).await;

    publ.publish("t/1", b"zero", QoS::AtMostOnce, false, 0)
        .await;
    let p = sub.expect_publish().await;
    assert_eq!((p.qos, &p.payload[..]), (QoS::AtMostOnce, &b"zero"[..]));

    publ.publish("t/1", b"one", QoS::AtLeastOnce, false, 7)
        .await;
    publ.expect_ack(AckKind::PubAck, 7).await;
    let p = sub.expect_publish().await;
    assert_eq!((p.qos, p.dup, p.retain), (QoS::AtLeastOnce, false, false));
    sub.send(Packet::Ack(flowd_broker::codec::Ack::new(
        AckKind::PubAck,
        p.pkid,
    )))
    .await;

    // QoS 2 in, downgraded to the subscription's QoS 1 out.
    publ.publish("t/1", b"two", QoS::ExactlyOnce, false, 8)
        .await;
    publ.expect_ack(AckKind::PubRec, 8).await;
    publ.send(Packet::Ack(flowd_broker::codec::Ack::new(
        AckKind::PubRel,
        8,
    )))
    .await;
    publ.expect_ack(AckKind::PubComp, 8).await;
    let p = sub.expect_publish().await;
    assert_eq!((p.qos, &p.payload[..]), (QoS::AtLeastOnce, &b"two"[..]));
    sub.send(Packet::Ack(flowd_broker::codec::Ack::new(
        AckKind::PubAck,
        p.pkid,
    )))
    .await;
    sub.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn qos2_to_subscriber_follows_pubrec_pubrel_pubcomp_and_resent_publish_is_not_duplicated() {
    let broker = start().await;
    let addr = broker.local_addr().unwrap();
    let mut sub = Client::connect(addr, V311, "sub2", true).await;
    sub.subscribe(1, &[("q2", QoS::ExactlyOnce)]).await;
    let mut publ = Client::connect(addr, V311, "pub2", true).await;
    publ.publish("q2", b"x", QoS::ExactlyOnce, false, 3).await;
    publ.expect_ack(AckKind::PubRec, 3).await;
    // A resent PUBLISH (DUP) before PUBREL must not be routed twice.
    let mut dup = flowd_broker::codec::Publish {
        dup: true,
        qos: QoS::ExactlyOnce,
        topic: "q2".into(),
        pkid: 3,
        payload: "x".into(),
        ..Default::default()
    };
    dup.retain = false;
    publ.send(Packet::Publish(dup)).await;
    publ.expect_ack(AckKind::PubRec, 3).await;
    let p = sub.expect_publish().await;
    assert_eq!(p.qos, QoS::ExactlyOnce);
    sub.send(Packet::Ack(flowd_broker::codec::Ack::new(
        AckKind::PubRec,
        p.pkid,
    )))
    .await;
    sub.expect_ack(AckKind::PubRel, p.pkid).await;
    sub.send(Packet::Ack(flowd_broker::codec::Ack::new(
        AckKind::PubComp,
        p.pkid,
    )))
    .await;
    sub.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn overlapping_subscriptions_deliver_once_at_highest_qos() {
    let broker = start().await;
    let addr = broker.local_addr().unwrap();
    let mut sub = Client::connect(addr, V311, "ov", true).await;
    sub.subscribe(
        1,
        &[
            ("a/#", QoS::AtMostOnce),
            ("a/+", QoS::ExactlyOnce),
            ("a/b", QoS::AtLeastOnce),
        ],
    )
    .await;
    let mut publ = Client::connect(addr, V311, "ovp", true).await;
    publ.publish_acked("a/b", b"m", false, 1).await;
    let p = sub.expect_publish().await;
    assert_eq!(p.qos, QoS::AtLeastOnce);
    sub.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn wildcards_and_dollar_topics() {
    let broker = start().await;
    let addr = broker.local_addr().unwrap();
    let mut sub = Client::connect(addr, V311, "wild", true).await;
    sub.subscribe(1, &[("#", QoS::AtMostOnce), ("+/x", QoS::AtMostOnce)])
        .await;
    let mut publ = Client::connect(addr, V311, "wildp", true).await;
    publ.publish("$internal/x", b"no", QoS::AtMostOnce, false, 0)
        .await;
    publ.publish("a/x", b"yes", QoS::AtMostOnce, false, 0).await;
    let p = sub.expect_publish().await;
    assert_eq!(p.topic, "a/x");
    sub.expect_nothing().await;
    let mut dollar = Client::connect(addr, V311, "dollar", true).await;
    dollar
        .subscribe(1, &[("$internal/+", QoS::AtMostOnce)])
        .await;
    publ.publish("$internal/x", b"yes", QoS::AtMostOnce, false, 0)
        .await;
    assert_eq!(dollar.expect_publish().await.topic, "$internal/x");
    broker.shutdown().await;
}

#[tokio::test]
async fn retained_delivered_on_subscribe_and_cleared_by_empty_payload() {
    let broker = start().await;
    let addr = broker.local_addr().unwrap();
    let mut publ = Client::connect(addr, V311, "rp", true).await;
    publ.publish_acked("r/1", b"kept", true, 1).await;
    let mut sub = Client::connect(addr, V311, "rs", true).await;
    sub.subscribe(1, &[("r/+", QoS::AtLeastOnce)]).await;
    let p = sub.expect_publish().await;
    assert!(p.retain);
    assert_eq!(&p.payload[..], b"kept");
    sub.send(Packet::Ack(flowd_broker::codec::Ack::new(
        AckKind::PubAck,
        p.pkid,
    )))
    .await;
    // A live delivery of a retained publish has retain 0 in 3.1.1.
    publ.publish_acked("r/1", b"new", true, 2).await;
    let p = sub.expect_publish().await;
    assert!(!p.retain);
    sub.send(Packet::Ack(flowd_broker::codec::Ack::new(
        AckKind::PubAck,
        p.pkid,
    )))
    .await;
    publ.publish_acked("r/1", b"", true, 3).await;
    let _ = sub.expect_publish().await;
    let mut late = Client::connect(addr, V311, "rl", true).await;
    late.subscribe(1, &[("r/#", QoS::AtLeastOnce)]).await;
    late.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn will_published_on_abnormal_close_not_on_disconnect() {
    let broker = start().await;
    let addr = broker.local_addr().unwrap();
    let mut watcher = Client::connect(addr, V311, "watch", true).await;
    watcher.subscribe(1, &[("will/#", QoS::AtLeastOnce)]).await;
    let will = |topic: &str| LastWill {
        topic: topic.into(),
        payload: "gone".into(),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Properties::default(),
    };
    let mut c = connect_packet(V311, "w1", true, 60);
    c.will = Some(will("will/w1"));
    let (dying, _) = Client::connect_with(addr, c).await;
    drop(dying);
    let p = watcher.expect_publish().await;
    assert_eq!(
        (p.topic.as_str(), &p.payload[..]),
        ("will/w1", &b"gone"[..])
    );
    watcher
        .send(Packet::Ack(flowd_broker::codec::Ack::new(
            AckKind::PubAck,
            p.pkid,
        )))
        .await;

    let mut c = connect_packet(V311, "w2", true, 60);
    c.will = Some(will("will/w2"));
    let (polite, _) = Client::connect_with(addr, c).await;
    polite.disconnect().await;
    watcher.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn persistent_session_queues_offline_qos1_and_resends_inflight_with_dup() {
    let broker = start().await;
    let addr = broker.local_addr().unwrap();
    let mut sub = Client::connect(addr, V311, "persist", false).await;
    sub.subscribe(1, &[("p/#", QoS::AtLeastOnce)]).await;
    let mut publ = Client::connect(addr, V311, "pp", true).await;
    publ.publish_acked("p/1", b"first", false, 1).await;
    let p = sub.expect_publish().await;
    assert!(!p.dup);
    drop(sub); // never acknowledged
    tokio::time::sleep(common::QUIET).await;
    publ.publish_acked("p/2", b"offline", false, 2).await;
    publ.publish("p/3", b"qos0 dropped offline", QoS::AtMostOnce, false, 0)
        .await;

    let (mut again, ack) =
        Client::connect_with(addr, connect_packet(V311, "persist", false, 60)).await;
    assert!(ack.session_present);
    let p = again.expect_publish().await;
    assert_eq!((&p.payload[..], p.dup), (&b"first"[..], true));
    again
        .send(Packet::Ack(flowd_broker::codec::Ack::new(
            AckKind::PubAck,
            p.pkid,
        )))
        .await;
    let p = again.expect_publish().await;
    assert_eq!(&p.payload[..], b"offline");
    again
        .send(Packet::Ack(flowd_broker::codec::Ack::new(
            AckKind::PubAck,
            p.pkid,
        )))
        .await;
    again.expect_nothing().await;
    again.disconnect().await;

    // Clean session discards it.
    let (c, ack) = Client::connect_with(addr, connect_packet(V311, "persist", true, 60)).await;
    assert!(!ack.session_present);
    c.disconnect().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn takeover_closes_the_old_connection() {
    let broker = start().await;
    let addr = broker.local_addr().unwrap();
    let mut old = Client::connect(addr, V311, "same", true).await;
    let _new = Client::connect(addr, V311, "same", true).await;
    let (closed, _) = old.closed().await;
    assert!(closed);
    broker.shutdown().await;
}

#[tokio::test]
async fn keepalive_is_enforced_at_one_and_a_half_times() {
    let broker = start().await;
    let addr = broker.local_addr().unwrap();
    let (mut c, _) = Client::connect_with(addr, connect_packet(V311, "ka", true, 1)).await;
    let started = tokio::time::Instant::now();
    let (closed, _) = c.closed().await;
    assert!(closed, "closed within {WAIT:?}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(1000));
    // Keep alive 0 means no timeout.
    let (mut idle, ack) = Client::connect_with(addr, connect_packet(V311, "ka0", true, 0)).await;
    assert_eq!(ack.code, 0);
    assert!(idle
        .recv_within(std::time::Duration::from_millis(1600))
        .await
        .is_none());
    idle.send(Packet::PingReq).await;
    assert_eq!(idle.recv().await, Some(Packet::PingResp));
    broker.shutdown().await;
}

#[tokio::test]
async fn zero_length_client_id_rules() {
    let broker = start().await;
    let addr = broker.local_addr().unwrap();
    let (_c, ack) = Client::connect_with(addr, connect_packet(V311, "", true, 60)).await;
    assert_eq!(ack.code, 0);
    let (_c, ack) = Client::connect_with(addr, connect_packet(V311, "", false, 60)).await;
    assert_eq!(ack.code, 2, "identifier rejected");
    broker.shutdown().await;
}

#[tokio::test]
async fn unsupported_protocol_level_gets_connack_1() {
    let broker = start().await;
    let mut c = Client::open(broker.local_addr().unwrap(), V311).await;
    c.send_raw(b"\x10\x0c\x00\x04MQTT\x06\x02\x00\x3c\x00\x00")
        .await;
    assert_eq!(
        c.recv().await,
        Some(Packet::ConnAck(flowd_broker::codec::ConnAck::new(1)))
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn malformed_packet_closes_only_that_connection() {
    let broker = start().await;
    let addr = broker.local_addr().unwrap();
    let mut good = Client::connect(addr, V311, "good", true).await;
    good.subscribe(1, &[("m", QoS::AtMostOnce)]).await;
    let mut bad = Client::connect(addr, V311, "bad", true).await;
    bad.send_raw(&[0x30, 0x03, 0x00, 0x09, b'x']).await; // topic length past the end
    assert!(bad.closed().await.0);
    let mut publ = Client::connect(addr, V311, "after", true).await;
    publ.publish("m", b"still here", QoS::AtMostOnce, false, 0)
        .await;
    assert_eq!(&good.expect_publish().await.payload[..], b"still here");
    broker.shutdown().await;
}

#[tokio::test]
async fn shared_subscription_delivers_each_message_to_one_member() {
    let broker = start_with(common::config()).await;
    let addr = broker.local_addr().unwrap();
    let mut a = Client::connect(addr, V311, "sa", true).await;
    let mut b = Client::connect(addr, V311, "sb", true).await;
    a.subscribe(1, &[("$share/g/s/+", QoS::AtMostOnce)]).await;
    b.subscribe(1, &[("$share/g/s/+", QoS::AtMostOnce)]).await;
    let mut publ = Client::connect(addr, V311, "sp", true).await;
    for _ in 0..10 {
        publ.publish("s/x", b"m", QoS::AtMostOnce, false, 0).await;
    }
    let mut got = [0usize; 2];
    for (i, c) in [&mut a, &mut b].into_iter().enumerate() {
        while c.recv_within(common::QUIET).await.is_some() {
            got[i] += 1;
        }
    }
    assert_eq!(got[0] + got[1], 10);
    assert!(got[0] > 0 && got[1] > 0, "both members served: {got:?}");
    broker.shutdown().await;
}

#[tokio::test]
async fn invalid_filters_get_failure_codes() {
    let broker = start().await;
    let mut c = Client::connect(broker.local_addr().unwrap(), V311, "inv", true).await;
    let ack = c
        .subscribe(
            1,
            &[
                ("a/#/b", QoS::AtMostOnce),
                ("ok/+", QoS::ExactlyOnce),
                ("$share/g", QoS::AtMostOnce),
            ],
        )
        .await;
    assert_eq!(ack.codes, vec![0x80, 2, 0x80]);
    broker.shutdown().await;
}
