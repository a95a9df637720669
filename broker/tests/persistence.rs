//! Retained messages and persistent sessions survive a broker that is
//! dropped without shutdown (its runtime torn down mid-flight, as a kill
//! would), and a graceful restart.

mod common;

use std::path::{Path, PathBuf};

use common::{connect_packet, Client};
use flowd_broker::codec::{
    Ack, AckKind, Connect, Packet, ProtocolVersion::V311, ProtocolVersion::V5, Publish, QoS,
};
use flowd_broker::{Broker, BrokerConfig};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("flowd-broker-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn config(dir: &Path) -> BrokerConfig {
    BrokerConfig {
        persistence_dir: Some(dir.to_path_buf()),
        ..common::config()
    }
}

#[test]
fn acknowledged_state_survives_a_killed_broker() {
    let d = dir("kill");
    let rt = runtime();
    rt.block_on(async {
        let broker = Broker::start(config(&d)).await.unwrap();
        let addr = broker.local_addr().unwrap();
        let mut sub = Client::connect(addr, V311, "durable", false).await;
        sub.subscribe(
            1,
            &[("d/#", QoS::AtLeastOnce), ("$share/g/s", QoS::ExactlyOnce)],
        )
        .await;
        sub.disconnect().await;
        let mut publ = Client::connect(addr, V311, "durable-pub", true).await;
        publ.publish_acked("d/retained", b"kept", true, 1).await;
        publ.publish_acked("d/queued", b"q1", false, 2).await;
        publ.publish("d/queued", b"q2", QoS::ExactlyOnce, false, 3)
            .await;
        publ.expect_ack(AckKind::PubRec, 3).await;
        broker.kill().await; // no shutdown: nothing but the journal survives
    });
    drop(rt);

    let rt = runtime();
    rt.block_on(async {
        let broker = Broker::start(config(&d)).await.unwrap();
        let addr = broker.local_addr().unwrap();
        let (mut sub, ack) =
            Client::connect_with(addr, connect_packet(V311, "durable", false, 60)).await;
        assert!(ack.session_present, "session restored");
        let mut got = Vec::new();
        for _ in 0..2 {
            let p = sub.expect_publish().await;
            got.push((p.topic.clone(), p.payload.clone(), p.qos));
            sub.send(Packet::Ack(Ack::new(AckKind::PubAck, p.pkid)))
                .await;
        }
        assert_eq!(got[0].1, "kept");
        assert_eq!(got[1].1, "q1");
        // The QoS 2 message, at min(2, 1) = 1.
        let p = sub.expect_publish().await;
        assert_eq!((&p.payload[..], p.qos), (&b"q2"[..], QoS::AtLeastOnce));
        sub.send(Packet::Ack(Ack::new(AckKind::PubAck, p.pkid)))
            .await;
        sub.expect_nothing().await;
        // The subscription was restored too.
        let mut publ = Client::connect(addr, V311, "durable-pub2", true).await;
        publ.publish_acked("d/later", b"live", false, 1).await;
        assert_eq!(&sub.expect_publish().await.payload[..], b"live");
        let mut fresh = Client::connect(addr, V5, "fresh", true).await;
        fresh.subscribe(1, &[("d/retained", QoS::AtMostOnce)]).await;
        assert_eq!(&fresh.expect_publish().await.payload[..], b"kept");
        broker.shutdown().await;
    });
    drop(rt);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn clean_sessions_and_cleared_retained_do_not_come_back() {
    let d = dir("clean");
    let rt = runtime();
    rt.block_on(async {
        let broker = Broker::start(config(&d)).await.unwrap();
        let addr = broker.local_addr().unwrap();
        let mut c = Client::connect(addr, V311, "clean", true).await;
        c.subscribe(1, &[("other", QoS::AtLeastOnce)]).await;
        c.publish_acked("c/r", b"x", true, 1).await;
        c.publish_acked("c/r", b"", true, 2).await;
        c.disconnect().await;
        let mut gone = Client::connect(addr, V5, "expiring", true).await;
        gone.subscribe(1, &[("e", QoS::AtLeastOnce)]).await;
        gone.disconnect().await;
        broker.shutdown().await;
    });
    drop(rt);
    let rt = runtime();
    rt.block_on(async {
        let broker = Broker::start(config(&d)).await.unwrap();
        let addr = broker.local_addr().unwrap();
        let (_c, ack) = Client::connect_with(addr, connect_packet(V311, "clean", false, 60)).await;
        assert!(!ack.session_present);
        let mut s = Client::connect(addr, V311, "look", true).await;
        s.subscribe(1, &[("c/#", QoS::AtMostOnce)]).await;
        s.expect_nothing().await;
        broker.shutdown().await;
    });
    drop(rt);
    let _ = std::fs::remove_dir_all(&d);
}

/// CONNECT resuming (or starting) a persistent session: v3 clean session 0,
/// v5 with a session expiry.
fn persistent(version: flowd_broker::codec::ProtocolVersion, id: &str) -> Connect {
    let mut c = connect_packet(version, id, false, 60);
    if version == V5 {
        c.properties.session_expiry_interval = Some(300);
    }
    c
}

enum Stop {
    Kill,
    Graceful,
}

/// Runs `f` against a broker on the persistence directory `d`, then kills
/// it or shuts it down.
fn with_broker<F, Fut>(d: &Path, stop: Stop, f: F)
where
    F: FnOnce(std::net::SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    runtime().block_on(async {
        let broker = Broker::start(config(d)).await.unwrap();
        f(broker.local_addr().unwrap()).await;
        match stop {
            Stop::Kill => broker.kill().await,
            Stop::Graceful => broker.shutdown().await,
        }
    });
}

async fn resume(addr: std::net::SocketAddr, c: Connect) -> Client {
    let (client, ack) = Client::connect_with(addr, c).await;
    assert_eq!(ack.code, 0);
    assert!(ack.session_present, "session restored");
    client
}

/// Takes QoS 2 deliveries until the broker is quiet, completing each flow
/// (PUBREC, PUBREL, PUBCOMP); returns the payloads in arrival order.
async fn take_qos2(c: &mut Client) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    for _ in 0..20 {
        match c.recv_within(common::QUIET).await {
            Some(Packet::Publish(p)) => {
                assert_eq!(p.qos, QoS::ExactlyOnce);
                got.push(p.payload.to_vec());
                c.send(Packet::Ack(Ack::new(AckKind::PubRec, p.pkid))).await;
            }
            Some(Packet::Ack(a)) if a.kind == AckKind::PubRel => {
                c.send(Packet::Ack(Ack::new(AckKind::PubComp, a.pkid)))
                    .await;
            }
            None => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    got
}

#[test]
fn an_incoming_qos2_message_awaiting_pubrel_is_routed_once_across_kills() {
    let d = dir("qos2-in");
    // 1. A persistent subscriber (away) and a v5 publisher with a session:
    //    PUBLISH QoS 2 answered with PUBREC, then the broker is killed
    //    before the PUBREL.
    with_broker(&d, Stop::Kill, |addr| async move {
        let mut sub = Client::connect(addr, V311, "q2in-sub", false).await;
        sub.subscribe(1, &[("in/#", QoS::ExactlyOnce)]).await;
        sub.disconnect().await;
        let (mut publ, ack) = Client::connect_with(addr, persistent(V5, "q2in-pub")).await;
        assert_eq!(ack.code, 0);
        publ.publish("in/x", b"once", QoS::ExactlyOnce, false, 9)
            .await;
        let rec = publ.expect_ack(AckKind::PubRec, 9).await;
        assert!(rec.code < 0x80);
    });
    // 2. The publisher resumes: it resends the PUBLISH (DUP), which is
    //    not routed again, then the PUBREL, answered with a successful
    //    PUBCOMP (not 0x92: the broker still knows the id). Killed again.
    with_broker(&d, Stop::Kill, |addr| async move {
        let mut publ = resume(addr, persistent(V5, "q2in-pub")).await;
        publ.send(Packet::Publish(Publish {
            dup: true,
            qos: QoS::ExactlyOnce,
            topic: "in/x".into(),
            pkid: 9,
            payload: "once".into(),
            ..Default::default()
        }))
        .await;
        publ.expect_ack(AckKind::PubRec, 9).await;
        publ.send(Packet::Ack(Ack::new(AckKind::PubRel, 9))).await;
        let comp = publ.expect_ack(AckKind::PubComp, 9).await;
        assert_eq!(comp.code, 0, "PUBCOMP for a packet id the broker has");
    });
    // 3. After the PUBCOMP the id is free: a new message with it is routed.
    //    The subscriber gets each message exactly once.
    with_broker(&d, Stop::Graceful, |addr| async move {
        let mut publ = resume(addr, persistent(V5, "q2in-pub")).await;
        publ.publish("in/x", b"next", QoS::ExactlyOnce, false, 9)
            .await;
        publ.expect_ack(AckKind::PubRec, 9).await;
        publ.send(Packet::Ack(Ack::new(AckKind::PubRel, 9))).await;
        assert_eq!(publ.expect_ack(AckKind::PubComp, 9).await.code, 0);
        let mut sub = resume(addr, persistent(V311, "q2in-sub")).await;
        assert_eq!(
            take_qos2(&mut sub).await,
            vec![b"once".to_vec(), b"next".to_vec()]
        );
    });
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn outgoing_qos2_deliveries_keep_their_packet_ids_and_phase_across_a_kill() {
    let d = dir("qos2-out");
    let (pa, pb) = runtime().block_on(async {
        let broker = Broker::start(config(&d)).await.unwrap();
        let addr = broker.local_addr().unwrap();
        let mut sub = Client::connect(addr, V311, "q2out-sub", false).await;
        sub.subscribe(1, &[("out/#", QoS::ExactlyOnce)]).await;
        let mut publ = Client::connect(addr, V311, "q2out-pub", true).await;
        for (pkid, topic) in [(1, "out/a"), (2, "out/b")] {
            publ.publish(topic, b"m", QoS::ExactlyOnce, false, pkid)
                .await;
            publ.expect_ack(AckKind::PubRec, pkid).await;
            publ.send(Packet::Ack(Ack::new(AckKind::PubRel, pkid)))
                .await;
            publ.expect_ack(AckKind::PubComp, pkid).await;
        }
        let a = sub.expect_publish().await;
        let b = sub.expect_publish().await;
        assert_eq!((&a.topic[..], &b.topic[..]), ("out/a", "out/b"));
        // `a` goes past PUBREC (the broker answers PUBREL once that is on
        // disk); `b` stays unacknowledged.
        sub.send(Packet::Ack(Ack::new(AckKind::PubRec, a.pkid)))
            .await;
        sub.expect_ack(AckKind::PubRel, a.pkid).await;
        broker.kill().await;
        (a.pkid, b.pkid)
    });
    runtime().block_on(async {
        let broker = Broker::start(config(&d)).await.unwrap();
        let addr = broker.local_addr().unwrap();
        let mut sub = resume(addr, persistent(V311, "q2out-sub")).await;
        // `a`: PUBREL again, never the PUBLISH; `b`: the same PUBLISH, same
        // packet id, DUP set [MQTT-4.4.0-1].
        sub.expect_ack(AckKind::PubRel, pa).await;
        let b = sub.expect_publish().await;
        assert_eq!((&b.topic[..], b.pkid, b.dup), ("out/b", pb, true));
        sub.send(Packet::Ack(Ack::new(AckKind::PubComp, pa))).await;
        sub.send(Packet::Ack(Ack::new(AckKind::PubRec, pb))).await;
        sub.expect_ack(AckKind::PubRel, pb).await;
        sub.send(Packet::Ack(Ack::new(AckKind::PubComp, pb))).await;
        sub.expect_nothing().await;
        broker.kill().await;
    });
    // Completed flows do not come back.
    runtime().block_on(async {
        let broker = Broker::start(config(&d)).await.unwrap();
        let addr = broker.local_addr().unwrap();
        let mut sub = resume(addr, persistent(V311, "q2out-sub")).await;
        sub.expect_nothing().await;
        broker.shutdown().await;
    });
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn outgoing_qos1_deliveries_keep_their_packet_ids_across_a_kill() {
    let d = dir("qos1-out");
    let (pa, pb) = runtime().block_on(async {
        let broker = Broker::start(config(&d)).await.unwrap();
        let addr = broker.local_addr().unwrap();
        let mut sub = Client::connect(addr, V311, "q1out-sub", false).await;
        sub.subscribe(1, &[("out/#", QoS::AtLeastOnce)]).await;
        let mut publ = Client::connect(addr, V311, "q1out-pub", true).await;
        // A first delivery, acknowledged: the next ones do not get the
        // packet ids a fresh session would hand out first.
        publ.publish("out/0", b"m", QoS::AtLeastOnce, false, 1)
            .await;
        publ.expect_ack(AckKind::PubAck, 1).await;
        let first = sub.expect_publish().await;
        sub.send(Packet::Ack(Ack::new(AckKind::PubAck, first.pkid)))
            .await;
        for (pkid, topic) in [(2, "out/a"), (3, "out/b")] {
            publ.publish(topic, b"m", QoS::AtLeastOnce, false, pkid)
                .await;
            // PUBACK once the journal (with the delivery's packet id,
            // journaled in the same batch) is on disk.
            publ.expect_ack(AckKind::PubAck, pkid).await;
        }
        let a = sub.expect_publish().await;
        let b = sub.expect_publish().await;
        assert_eq!((&a.topic[..], &b.topic[..]), ("out/a", "out/b"));
        assert!(!a.dup && !b.dup);
        // Neither is acknowledged when the broker dies.
        broker.kill().await;
        (a.pkid, b.pkid)
    });
    runtime().block_on(async {
        let broker = Broker::start(config(&d)).await.unwrap();
        let addr = broker.local_addr().unwrap();
        let mut sub = resume(addr, persistent(V311, "q1out-sub")).await;
        // The same PUBLISHes, same packet ids, DUP set [MQTT-4.4.0-1].
        let a = sub.expect_publish().await;
        let b = sub.expect_publish().await;
        assert_eq!((&a.topic[..], a.pkid, a.dup), ("out/a", pa, true));
        assert_eq!((&b.topic[..], b.pkid, b.dup), ("out/b", pb, true));
        sub.send(Packet::Ack(Ack::new(AckKind::PubAck, pa))).await;
        sub.send(Packet::Ack(Ack::new(AckKind::PubAck, pb))).await;
        sub.expect_nothing().await;
        broker.shutdown().await;
    });
    // Acknowledged deliveries do not come back.
    runtime().block_on(async {
        let broker = Broker::start(config(&d)).await.unwrap();
        let addr = broker.local_addr().unwrap();
        let mut sub = resume(addr, persistent(V311, "q1out-sub")).await;
        sub.expect_nothing().await;
        broker.shutdown().await;
    });
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_local_clients_persistent_session_survives_a_killed_broker() {
    use flowd_broker::{LocalOptions, SubscriptionOptions};
    let d = dir("local");
    let opts = LocalOptions {
        client_id: "local-durable".into(),
        clean_start: false,
        session_expiry: 300,
        manual_acks: true,
        ..Default::default()
    };
    runtime().block_on(async {
        let broker = Broker::start(config(&d)).await.unwrap();
        let (c, mut rx) = broker.connect_local(opts.clone()).await.unwrap();
        let qos2 = SubscriptionOptions {
            qos: QoS::ExactlyOnce,
            ..Default::default()
        };
        c.subscribe(vec![("loc/#".into(), qos2)], None)
            .await
            .unwrap();
        let mut publ = Client::connect(broker.local_addr().unwrap(), V311, "loc-pub", true).await;
        publ.publish_acked("loc/1", b"taken", false, 1).await;
        // Received and acknowledged before the kill: not again after it.
        let m = tokio::time::timeout(common::WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&m.payload[..], b"taken");
        c.ack(&m).await.unwrap();
        c.disconnect(false).await;
        // Queued while the local client is away.
        publ.publish_acked("loc/2", b"queued", false, 2).await;
        publ.publish("loc/3", b"queued2", QoS::ExactlyOnce, false, 3)
            .await;
        publ.expect_ack(AckKind::PubRec, 3).await;
        broker.kill().await;
    });
    runtime().block_on(async {
        let broker = Broker::start(config(&d)).await.unwrap();
        let (c, mut rx) = broker.connect_local(opts.clone()).await.unwrap();
        assert!(c.session_present(), "session restored");
        let mut got = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout(common::QUIET, rx.recv()).await {
            c.ack(&m).await.unwrap();
            got.push((m.payload.to_vec(), m.qos));
            assert!(got.len() <= 2, "{got:?}");
        }
        assert_eq!(
            got,
            vec![
                (b"queued".to_vec(), QoS::AtLeastOnce),
                (b"queued2".to_vec(), QoS::ExactlyOnce)
            ]
        );
        broker.shutdown().await;
    });
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn an_expired_qos2_delivery_in_flight_is_completed_after_a_kill() {
    let d = dir("qos2-expired");
    let pkid = runtime().block_on(async {
        let broker = Broker::start(config(&d)).await.unwrap();
        let addr = broker.local_addr().unwrap();
        let (mut sub, _) = Client::connect_with(addr, persistent(V5, "q2exp-sub")).await;
        sub.subscribe(1, &[("exp/#", QoS::ExactlyOnce)]).await;
        let mut publ = Client::connect(addr, V5, "q2exp-pub", true).await;
        publ.send(Packet::Publish(Publish {
            qos: QoS::ExactlyOnce,
            topic: "exp/a".into(),
            pkid: 1,
            payload: "short-lived".into(),
            properties: flowd_broker::Properties {
                message_expiry_interval: Some(1),
                ..Default::default()
            },
            ..Default::default()
        }))
        .await;
        publ.expect_ack(AckKind::PubRec, 1).await;
        let p = sub.expect_publish().await;
        broker.kill().await;
        p.pkid
    });
    std::thread::sleep(std::time::Duration::from_millis(2100));
    runtime().block_on(async {
        let broker = Broker::start(config(&d)).await.unwrap();
        let addr = broker.local_addr().unwrap();
        let mut sub = resume(addr, persistent(V5, "q2exp-sub")).await;
        // Its delivery had started: resent (same id, DUP, no time left)
        // rather than dropped while the client may hold the id.
        let p = sub.expect_publish().await;
        assert_eq!((p.pkid, p.dup), (pkid, true));
        assert_eq!(p.properties.message_expiry_interval, Some(0));
        sub.send(Packet::Ack(Ack::new(AckKind::PubRec, pkid))).await;
        sub.expect_ack(AckKind::PubRel, pkid).await;
        sub.send(Packet::Ack(Ack::new(AckKind::PubComp, pkid)))
            .await;
        sub.expect_nothing().await;
        broker.shutdown().await;
    });
    let _ = std::fs::remove_dir_all(&d);
}
