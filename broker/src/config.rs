//! Broker configuration: plain data with defaults, no CLI parsing here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything [`crate::Broker::start`] needs. `Default` gives a broker on
/// 127.0.0.1:1883 with Mosquitto-like limits and no persistence.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Plain MQTT over TCP. `None` disables it. Use port 0 in tests and
    /// read the bound address back with [`crate::Broker::local_addr`].
    pub mqtt: Option<SocketAddr>,
    /// MQTT over WebSocket (subprotocol `mqtt`, any path).
    pub ws: Option<SocketAddr>,
    /// MQTT over TLS (rustls).
    pub tls: Option<TlsConfig>,
    /// A Mosquitto `mosquitto_passwd` file.
    pub password_file: Option<PathBuf>,
    /// A Mosquitto ACL file.
    pub acl_file: Option<PathBuf>,
    /// Whether clients without a user name may connect. `None` follows
    /// Mosquitto 2: allowed on loopback listeners, refused elsewhere.
    pub allow_anonymous: Option<bool>,
    /// Largest keep alive a client may ask for; v5 clients asking more (or
    /// 0) are told this one as Server Keep Alive, v3 clients are refused.
    pub max_keepalive: Option<u16>,
    /// Where retained messages and persistent sessions are kept.
    pub persistence_dir: Option<PathBuf>,
    pub limits: Limits,
    /// How often `$SYS/broker/...` is published; `None` disables it.
    pub sys_interval: Option<Duration>,
    /// Threads of the broker's own runtime. 1 (the default) serves every
    /// client from one thread, Mosquitto-like: requests from different
    /// clients are handled in the order they arrived.
    pub worker_threads: usize,
}

/// A TLS listener: address and PEM certificate chain and private key.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub addr: SocketAddr,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// Resource limits, so that no client can exhaust the broker's memory.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Concurrent network connections; more are closed at accept.
    pub max_connections: usize,
    /// Largest packet accepted from a client (and announced in v5 CONNACK).
    pub max_packet_size: u32,
    /// QoS 1/2 messages queued per session beyond the in-flight window.
    pub max_queued_messages: usize,
    /// QoS 0 messages waiting to be written per connection; more are
    /// dropped (and counted). Large, so a burst to an online client that
    /// reads at network speed is not lost.
    pub max_queued_qos0: usize,
    /// QoS 1/2 messages sent to a client and not yet acknowledged.
    pub max_inflight_messages: u16,
    /// Topic aliases a v5 client may use towards the broker.
    pub max_topic_alias: u16,
    /// Time a new connection has to send CONNECT.
    pub connect_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 100_000,
            max_packet_size: 16 * 1024 * 1024,
            max_queued_messages: 1000,
            max_queued_qos0: 100_000,
            max_inflight_messages: 20,
            max_topic_alias: 10,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            mqtt: Some(SocketAddr::from(([127, 0, 0, 1], 1883))),
            ws: None,
            tls: None,
            password_file: None,
            acl_file: None,
            allow_anonymous: None,
            max_keepalive: None,
            persistence_dir: None,
            limits: Limits::default(),
            sys_interval: Some(Duration::from_secs(10)),
            worker_threads: 1,
        }
    }
}
