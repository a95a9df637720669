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
