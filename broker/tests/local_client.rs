//! In-process clients: same semantics as network clients.

mod common;

use std::time::Duration;

use common::{start, start_with, Client, WAIT};
use flowd_broker::codec::{AckKind, Packet, ProtocolVersion::V311, QoS};
use flowd_broker::{
    LocalError, LocalMessage, LocalOptions, LocalPublish, LocalReceiver, MessageProperties,
    SubscriptionOptions,
};

fn opts(id: &str) -> LocalOptions {
    LocalOptions {
        client_id: id.into(),
        clean_start: true,
        ..Default::default()
    }
}

fn sub(filter: &str, qos: QoS) -> Vec<(String, SubscriptionOptions)> {
    vec![(
        filter.into(),
        SubscriptionOptions {
            qos,
            ..Default::default()
        },
    )]
}

fn msg(topic: &str, payload: &'static str, qos: QoS) -> LocalPublish {
    LocalPublish {
        topic: topic.into(),
        payload: payload.into(),
        qos,
        ..Default::default()
    }
}

async fn next(rx: &mut LocalReceiver) -> LocalMessage {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("message in time")
        .expect("connected")
}

async fn nothing(rx: &mut LocalReceiver) {
    if let Ok(m) = tokio::time::timeout(common::QUIET, rx.recv()).await {
        panic!("expected nothing, got {m:?}");
    }
}

#[tokio::test]
async fn local_publish_and_subscribe_at_every_qos_with_properties() {
    let broker = start().await;
    let (a, mut rx) = broker.connect_local(opts("la")).await.unwrap();
    assert_eq!(
        a.subscribe(sub("l/#", QoS::ExactlyOnce), Some(7))
            .await
            .unwrap(),
        vec![2]
    );
    let (b, _rxb) = broker.connect_local(opts("lb")).await.unwrap();
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let mut m = msg("l/x", "p", qos);
        m.properties = MessageProperties {
            content_type: Some("text/plain".into()),
            user_properties: vec![("z".into(), "1".into()), ("a".into(), "2".into())],
            ..Default::default()
        };
        b.publish(m).await.unwrap();
        let got = next(&mut rx).await;
        assert_eq!(
            (got.qos, &got.topic[..], &got.payload[..]),
            (qos, "l/x", &b"p"[..])
        );
        assert_eq!(
            got.properties.user_properties,
            vec![("z".into(), "1".into()), ("a".into(), "2".into())]
        );
        assert_eq!(got.properties.subscription_identifiers, vec![7]);
    }
    assert_eq!(
        a.unsubscribe(vec!["l/#".into(), "none".into()])
            .await
            .unwrap(),
        vec![0, 0x11]
    );
    assert!(matches!(
        b.publish(msg("bad/#", "", QoS::AtMostOnce)).await,
        Err(LocalError::InvalidTopic(_))
    ));
    broker.shutdown().await;
}

#[tokio::test]
async fn local_and_tcp_clients_see_each_other() {
    let broker = start().await;
    let addr = broker.local_addr().unwrap();
    let (local, mut rx) = broker.connect_local(opts("mix-local")).await.unwrap();
    local
        .subscribe(sub("from/tcp", QoS::AtLeastOnce), None)
        .await
        .unwrap();
    let mut tcp = Client::connect(addr, V311, "mix-tcp", true).await;
    tcp.subscribe(1, &[("from/local", QoS::AtLeastOnce)]).await;
    tcp.publish_acked("from/tcp", b"hi", false, 1).await;
    assert_eq!(&next(&mut rx).await.payload[..], b"hi");
    local
        .publish(msg("from/local", "yo", QoS::AtLeastOnce))
        .await
        .unwrap();
    let p = tcp.expect_publish().await;
    assert_eq!(&p.payload[..], b"yo");
    tcp.send(Packet::Ack(flowd_broker::codec::Ack::new(
        AckKind::PubAck,
        p.pkid,
    )))
    .await;
    broker.shutdown().await;
}

#[tokio::test]
async fn a_consumer_that_stops_reading_is_bounded_like_a_slow_tcp_client() {
    let mut config = common::config();
    config.limits.max_queued_messages = 2;
    let broker = start_with(config).await;
    let slow_opts = LocalOptions {
        receive_maximum: 2,
        ..opts("slow")
    };
    let (slow, mut rx) = broker.connect_local(slow_opts).await.unwrap();
    slow.subscribe(sub("load", QoS::AtLeastOnce), None)
        .await
        .unwrap();
    let (fast, _) = broker.connect_local(opts("fast")).await.unwrap();
    for _ in 0..6 {
        // The publisher is not held up by the slow consumer.
        tokio::time::timeout(WAIT, fast.publish(msg("load", "m", QoS::AtLeastOnce)))
            .await
            .unwrap()
            .unwrap();
    }
    // 2 in flight + 2 queued; the rest were dropped at the queue limit.
    for _ in 0..4 {
        next(&mut rx).await;
    }
    nothing(&mut rx).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn takeover_by_a_network_client_disconnects_the_local_one() {
    let broker = start().await;
    let (local, mut rx) = broker.connect_local(opts("shared-id")).await.unwrap();
    let _tcp = Client::connect(broker.local_addr().unwrap(), V311, "shared-id", true).await;
    assert_eq!(tokio::time::timeout(WAIT, rx.recv()).await.unwrap(), None);
    assert!(!local.is_connected());
    assert_eq!(
        local.publish(msg("x", "y", QoS::AtMostOnce)).await,
        Err(LocalError::Disconnected)
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn persistent_local_session_keeps_subscriptions_and_queued_messages() {
    let broker = start().await;
    let persistent = LocalOptions {
        clean_start: false,
        session_expiry: 60,
        ..opts("lp")
    };
    let (c, rx) = broker.connect_local(persistent.clone()).await.unwrap();
    c.subscribe(sub("q", QoS::AtLeastOnce), None).await.unwrap();
    c.disconnect(false).await;
    drop(rx);
    let (p, _) = broker.connect_local(opts("lp-pub")).await.unwrap();
    p.publish(msg("q", "while away", QoS::AtLeastOnce))
        .await
        .unwrap();
    let (_c, mut rx) = broker.connect_local(persistent).await.unwrap();
    assert_eq!(&next(&mut rx).await.payload[..], b"while away");
    broker.shutdown().await;
}

#[tokio::test]
async fn dropping_every_handle_publishes_the_will() {
    let broker = start().await;
    let (w, mut rx) = broker.connect_local(opts("lw-watch")).await.unwrap();
    w.subscribe(sub("lw/#", QoS::AtMostOnce), None)
        .await
        .unwrap();
    let will = flowd_broker::LastWill {
        topic: "lw/dead".into(),
        payload: "x".into(),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Default::default(),
    };
    let (c, crx) = broker
        .connect_local(LocalOptions {
            will: Some(will),
            ..opts("lw")
        })
        .await
        .unwrap();
    drop(c);
    drop(crx);
    assert_eq!(&next(&mut rx).await.topic[..], "lw/dead");
    tokio::time::sleep(Duration::from_millis(10)).await;
    broker.shutdown().await;
}

fn manual(id: &str, receive_maximum: u16) -> LocalOptions {
    LocalOptions {
        manual_acks: true,
        receive_maximum,
        ..opts(id)
    }
}

async fn publish_all(broker: &flowd_broker::Broker, msgs: &[(&'static str, QoS)]) {
    let (p, _rx) = broker.connect_local(opts("producer")).await.unwrap();
    for (payload, qos) in msgs {
        p.publish(msg("m/x", payload, *qos)).await.unwrap();
    }
    p.disconnect(false).await;
}

#[tokio::test]
async fn manual_acks_bound_the_in_flight_window_until_the_consumer_acks() {
    let broker = start().await;
    let (c, mut rx) = broker.connect_local(manual("consumer", 2)).await.unwrap();
    c.subscribe(sub("m/#", QoS::AtLeastOnce), None)
        .await
        .unwrap();
    let q1 = QoS::AtLeastOnce;
    publish_all(
        &broker,
        &[("0", q1), ("1", q1), ("2", q1), ("3", q1), ("4", q1)],
    )
    .await;
    let m0 = next(&mut rx).await;
    let m1 = next(&mut rx).await;
    assert_eq!((&m0.payload[..], &m1.payload[..]), (&b"0"[..], &b"1"[..]));
    // Two unacknowledged: the window (receive maximum 2) is full.
    nothing(&mut rx).await;
    assert_eq!(c.unacked(), 2);
    // Out of order is fine; each ack opens the window by one.
    c.ack(&m1).await.unwrap();
    let m2 = next(&mut rx).await;
    assert_eq!(&m2.payload[..], b"2");
    nothing(&mut rx).await;
    c.try_ack(&m0).unwrap();
    // A second ack of the same message acknowledges nothing else.
    c.try_ack(&m0).unwrap();
    let m3 = next(&mut rx).await;
    assert_eq!(&m3.payload[..], b"3");
    nothing(&mut rx).await;
    c.ack(&m2).await.unwrap();
    c.ack(&m3).await.unwrap();
    let m4 = next(&mut rx).await;
    c.ack(&m4).await.unwrap();
    nothing(&mut rx).await;
    assert_eq!(c.unacked(), 0);
    broker.shutdown().await;
}

#[tokio::test]
async fn unacknowledged_messages_come_back_to_a_resumed_local_session_and_acked_ones_do_not() {
    let broker = start().await;
    let persistent = LocalOptions {
        clean_start: false,
        session_expiry: 60,
        ..manual("resumer", 0)
    };
    let (c, mut rx) = broker.connect_local(persistent.clone()).await.unwrap();
    assert!(!c.session_present());
    c.subscribe(sub("m/#", QoS::ExactlyOnce), None)
        .await
        .unwrap();
    let (q1, q2) = (QoS::AtLeastOnce, QoS::ExactlyOnce);
    publish_all(&broker, &[("a", q1), ("b", q2), ("c", q1), ("d", q2)]).await;
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(next(&mut rx).await);
    }
    let qos: Vec<QoS> = got.iter().map(|m| m.qos).collect();
    assert_eq!(qos, vec![q1, q2, q1, q2]);
    // Processed: a and b. Then the consumer goes away.
    c.ack(&got[0]).await.unwrap();
    c.ack(&got[1]).await.unwrap();
    c.disconnect(false).await;
    assert_eq!(c.ack(&got[2]).await, Err(LocalError::Disconnected));
    drop(rx);

    let (c, mut rx) = broker.connect_local(persistent.clone()).await.unwrap();
    assert!(c.session_present());
    let again = [next(&mut rx).await, next(&mut rx).await];
    let seen: Vec<(&[u8], QoS, bool)> = again
        .iter()
        .map(|m| (&m.payload[..], m.qos, m.dup))
        .collect();
    assert_eq!(seen, vec![(&b"c"[..], q1, true), (&b"d"[..], q2, true)]);
    nothing(&mut rx).await;
    // A message of the earlier connection acknowledges nothing here.
    c.ack(&got[2]).await.unwrap();
    assert_eq!(c.unacked(), 2);
    for m in &again {
        c.ack(m).await.unwrap();
    }
    c.disconnect(false).await;
    drop(rx);

    let (_c, mut rx) = broker.connect_local(persistent).await.unwrap();
    nothing(&mut rx).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn local_retained_messages_are_delivered_on_subscribe_and_cleared() {
    let broker = start().await;
    let (p, _) = broker.connect_local(opts("rt-pub")).await.unwrap();
    let mut retained = msg("rt/a", "kept", QoS::AtLeastOnce);
    retained.retain = true;
    p.publish(retained.clone()).await.unwrap();
    let (s, mut rx) = broker.connect_local(opts("rt-sub")).await.unwrap();
    s.subscribe(sub("rt/#", QoS::ExactlyOnce), None)
        .await
        .unwrap();
    let m = next(&mut rx).await;
    assert_eq!(
        (&m.topic[..], &m.payload[..], m.retain, m.qos),
        ("rt/a", &b"kept"[..], true, QoS::AtLeastOnce)
    );
    // A TCP client sees the retained message a local client published.
    let mut tcp = Client::connect(broker.local_addr().unwrap(), V311, "rt-tcp", true).await;
    tcp.subscribe(1, &[("rt/#", QoS::AtMostOnce)]).await;
    let p2 = tcp.expect_publish().await;
    assert!(p2.retain);
    // An empty retained payload clears it (and is delivered, retain 0, to
    // the existing subscription).
    retained.payload = "".into();
    p.publish(retained).await.unwrap();
    let cleared = next(&mut rx).await;
    assert!(cleared.payload.is_empty() && !cleared.retain);
    let (s2, mut rx2) = broker.connect_local(opts("rt-sub2")).await.unwrap();
    s2.subscribe(sub("rt/#", QoS::AtLeastOnce), None)
        .await
        .unwrap();
    nothing(&mut rx2).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn a_normal_disconnect_publishes_no_will_and_an_abnormal_one_does() {
    let broker = start().await;
    let (w, mut rx) = broker.connect_local(opts("will-watch")).await.unwrap();
    w.subscribe(sub("wills/#", QoS::AtLeastOnce), None)
        .await
        .unwrap();
    let with_will = |id: &str| LocalOptions {
        will: Some(flowd_broker::LastWill {
            topic: format!("wills/{id}"),
            payload: "gone".into(),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Default::default(),
        }),
        ..opts(id)
    };
    let (a, _ra) = broker.connect_local(with_will("polite")).await.unwrap();
    a.disconnect(false).await;
    nothing(&mut rx).await;
    let (b, _rb) = broker.connect_local(with_will("asked")).await.unwrap();
    b.disconnect(true).await;
    assert_eq!(&next(&mut rx).await.topic[..], "wills/asked");
    // Every handle dropped (clones too), no disconnect: the will.
    let (c, _rc) = broker.connect_local(with_will("dropped")).await.unwrap();
    let c2 = c.clone();
    drop(c);
    nothing(&mut rx).await;
    drop(c2);
    assert_eq!(&next(&mut rx).await.topic[..], "wills/dropped");
    broker.shutdown().await;
}

#[tokio::test]
async fn a_local_publish_larger_than_the_maximum_packet_size_is_refused() {
    let mut config = common::config();
    config.limits.max_packet_size = 1024;
    let broker = start_with(config).await;
    let (c, _rx) = broker.connect_local(opts("big")).await.unwrap();
    let big = LocalPublish {
        topic: "big".into(),
        payload: vec![b'x'; 2000].into(),
        ..Default::default()
    };
    assert_eq!(c.publish(big).await, Err(LocalError::Refused(0x95)));
    // The connection stays usable.
    c.publish(msg("small", "ok", QoS::AtLeastOnce))
        .await
        .unwrap();
    broker.shutdown().await;
}
