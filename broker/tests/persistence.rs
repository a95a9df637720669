//! Retained messages and persistent sessions survive a broker that is
//! dropped without shutdown (its runtime torn down mid-flight, as a kill
//! would), and a graceful restart.

mod common;

use std::path::{Path, PathBuf};

use common::{connect_packet, Client};
use flowd_broker::codec::{Ack, AckKind, Packet, ProtocolVersion::V311, ProtocolVersion::V5, QoS};
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
