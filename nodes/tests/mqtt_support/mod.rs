//! Shared helpers of the MQTT integration tests: a private Mosquitto on a
//! free 127.0.0.1 port (killed on drop), an observing MQTT 5 client that
//! keeps the retain flag as published, and a publishing client.
#![allow(dead_code)]

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet};
use rumqttc::v5::mqttbytes::QoS as QoS5;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long any wait for the broker may take.
pub const WAIT: Duration = Duration::from_secs(10);

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A Mosquitto process on its own port.
pub struct Mosquitto {
    /// The port it listens on.
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

impl Mosquitto {
    /// Starts Mosquitto on a free port and waits until it accepts connections.
    pub fn start() -> Mosquitto {
        Self::start_with("")
    }

    /// Starts Mosquitto with extra configuration lines.
    pub fn start_with(extra: &str) -> Mosquitto {
        Self::start_on(free_port(), extra)
    }

    /// A free port nothing listens on (yet).
    pub fn free_port() -> u16 {
        free_port()
    }

    /// Starts Mosquitto with persistence (sessions and queued messages survive [`Mosquitto::stop`]).
    pub fn start_persistent() -> Mosquitto {
        // `user root`: stay the user that can write the temp directory (ignored when not root).
        Self::start_on(free_port(), "persistence true\nuser root\n")
    }

    /// Starts Mosquitto on `port` with extra configuration lines.
    pub fn start_on(port: u16, extra: &str) -> Mosquitto {
        let dir = std::env::temp_dir().join(format!(
            "flowd-mqtt-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut m = Mosquitto {
            port,
            dir,
            child: None,
        };
        let conf = format!(
            "listener {} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n\
             persistence_location {}/\n{extra}\n",
            m.port,
            m.dir.display()
        );
        std::fs::write(m.dir.join("mosquitto.conf"), conf).expect("write config");
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        let child = Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(self.dir.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the broker (no clean shutdown).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the broker with SIGTERM (it saves its persistent state) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + WAIT;
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.kill();
        }
        let deadline = Instant::now() + WAIT;
        loop {
            self.spawn();
            if self
                .child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
            {
                return;
            }
            assert!(Instant::now() < deadline, "mosquitto did not restart");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A publication seen by the observer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seen {
    /// Topic.
    pub topic: String,
    /// Payload bytes.
    pub payload: Bytes,
    /// QoS.
    pub qos: u8,
    /// Retain flag as published.
    pub retain: bool,
}

/// An MQTT 5 client subscribed with retain-as-published.
pub struct Observer {
    client: rumqttc::v5::AsyncClient,
    rx: mpsc::UnboundedReceiver<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Observer {
    /// Connects and subscribes to `filter` (QoS 2); returns once subscribed.
    pub async fn subscribe(port: u16, filter: &str) -> Observer {
        let id = format!("observer{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let mut o = rumqttc::v5::MqttOptions::new(id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(30));
        let (client, mut events) = rumqttc::v5::AsyncClient::new(o, 100);
        let mut f = Filter::new(filter, QoS5::ExactlyOnce);
        f.preserve_retain = true;
        client
            .subscribe_many(std::iter::once(f))
            .await
            .expect("subscribe");
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            loop {
                match events.poll().await {
                    Ok(rumqttc::v5::Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                    }
                    Ok(rumqttc::v5::Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send(Seen {
                            topic: String::from_utf8_lossy(&p.topic).into_owned(),
                            payload: p.payload.clone(),
                            qos: p.qos as u8,
                            retain: p.retain,
                        });
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        tokio::time::timeout(WAIT, ready_rx)
            .await
            .expect("observer subscribed in time")
            .expect("observer task alive");
        Observer { client, rx, task }
    }

    /// The next publication, or None after `within`.
    pub async fn next_within(&mut self, within: Duration) -> Option<Seen> {
        tokio::time::timeout(within, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next publication; panics after [`WAIT`].
    pub async fn next(&mut self) -> Seen {
        self.next_within(WAIT)
            .await
            .expect("a publication within the wait")
    }

    /// Collects `n` publications; panics if they do not arrive within [`WAIT`].
    pub async fn take(&mut self, n: usize) -> Vec<Seen> {
        let mut out = Vec::with_capacity(n);
        let deadline = tokio::time::Instant::now() + WAIT;
        while out.len() < n {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(s)) => out.push(s),
                _ => panic!("got {} of {n} publications: {out:?}", out.len()),
            }
        }
        out
    }

    /// Everything arriving until nothing came for `quiet`.
    pub async fn until_quiet(&mut self, quiet: Duration, limit: usize) -> Vec<Seen> {
        let mut out = Vec::new();
        while out.len() < limit {
            match self.next_within(quiet).await {
                Some(s) => out.push(s),
                None => break,
            }
        }
        out
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        let _ = self.client.try_disconnect();
        self.task.abort();
    }
}

/// An MQTT 3.1.1 subscriber with a persistent session (fixed client id,
/// clean session off, QoS 1), reconnecting by itself.
pub struct PersistentObserver {
    client: rumqttc::AsyncClient,
    rx: mpsc::UnboundedReceiver<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl PersistentObserver {
    /// Connects as `client_id` and subscribes to `filter`; returns once subscribed.
    pub async fn subscribe(port: u16, client_id: &str, filter: &str) -> PersistentObserver {
        let mut o = rumqttc::MqttOptions::new(client_id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(30));
        o.set_clean_session(false);
        let (client, mut events) = rumqttc::AsyncClient::new(o, 100);
        client
            .subscribe(filter, rumqttc::QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            loop {
                match events.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                        let _ = tx.send(Seen {
                            topic: p.topic.clone(),
                            payload: p.payload.clone(),
                            qos: p.qos as u8,
                            retain: p.retain,
                        });
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        tokio::time::timeout(WAIT, ready_rx)
            .await
            .expect("observer subscribed in time")
            .expect("observer task alive");
        PersistentObserver { client, rx, task }
    }

    /// The next publication, or None after `within`.
    pub async fn next_within(&mut self, within: Duration) -> Option<Seen> {
        tokio::time::timeout(within, self.rx.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for PersistentObserver {
    fn drop(&mut self) {
        let _ = self.client.try_disconnect();
        self.task.abort();
    }
}

/// A plain MQTT 3.1.1 client publishing test input.
pub struct Publisher {
    client: rumqttc::AsyncClient,
    task: tokio::task::JoinHandle<()>,
}

impl Publisher {
    /// Connects to the broker on `port`.
    pub async fn connect(port: u16) -> Publisher {
        let id = format!("publisher{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let mut o = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(30));
        o.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut events) = rumqttc::AsyncClient::new(o, 100);
        let task = tokio::spawn(async move {
            loop {
                if events.poll().await.is_err() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
        Publisher { client, task }
    }

    /// Publishes one message.
    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>, qos: u8, retain: bool) {
        let qos = match qos {
            0 => rumqttc::QoS::AtMostOnce,
            1 => rumqttc::QoS::AtLeastOnce,
            _ => rumqttc::QoS::ExactlyOnce,
        };
        self.client
            .publish(topic, qos, retain, payload)
            .await
            .expect("publish");
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.client.try_disconnect();
        self.task.abort();
    }
}

/// An mqtt-broker config node for `port` with extra properties.
pub fn broker_node(id: &str, port: u16, extra: serde_json::Value) -> serde_json::Value {
    let mut b = serde_json::json!({
        "id": id, "type": "mqtt-broker", "name": "test", "broker": "127.0.0.1",
        "port": port.to_string(), "clientid": "", "autoConnect": true, "usetls": false,
        "protocolVersion": "4", "keepalive": "60", "cleansession": true,
        "autoUnsubscribe": true
    });
    if let (Some(o), Some(e)) = (b.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    b
}

/// Waits until node `id` reported the connected status.
pub async fn wait_connected(flow: &flowd_engine::testing::TestFlow, id: &str) {
    let id = id.to_string();
    flow.observer
        .wait_until(WAIT, &format!("{id} connected"), |o| {
            o.statuses()
                .iter()
                .rev()
                .find(|(n, _)| *n == id)
                .is_some_and(|(_, s)| s.text.as_deref() == Some("node-red:common.status.connected"))
        })
        .await;
}
