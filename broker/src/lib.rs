//! flowd's embedded MQTT 3.1.1 / 5.0 broker, usable on its own.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use flowd_broker::{Broker, BrokerConfig, LocalOptions, LocalPublish, QoS, SubscriptionOptions};
//! let broker = Broker::start(BrokerConfig::default()).await?;
//! let (client, mut messages) = broker.connect_local(LocalOptions::default()).await?;
//! client.subscribe(vec![("sensors/#".into(), SubscriptionOptions::default())], None).await?;
//! client.publish(LocalPublish { topic: "sensors/t1".into(), payload: "21.5".into(), qos: QoS::AtLeastOnce, ..Default::default() }).await?;
//! let msg = messages.recv().await;
//! broker.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Public API
//! - [`Broker::start`]`(`[`BrokerConfig`]`)` binds every listener (use port 0 in
//!   tests, read back [`Broker::local_addr`] / [`Broker::ws_addr`] /
//!   [`Broker::tls_addr`]) and serves on the broker's own thread(s);
//!   [`Broker::shutdown`] disconnects everyone and flushes the journal.
//! - [`Broker::connect_local`]`(`[`LocalOptions`]`)` -> ([`LocalClient`],
//!   [`LocalReceiver`]): an in-process MQTT 5 client with the exact
//!   semantics of a network client (session, will, QoS flows, ACL, limits).
//!   `LocalClient` (cloneable): `publish(LocalPublish)` returns at PUBACK /
//!   PUBCOMP, `subscribe(filters, subscription_id)` and `unsubscribe`
//!   return the reason codes, `ack(&LocalMessage)` / `try_ack`,
//!   `disconnect(publish_will)`. `LocalReceiver::recv()` yields
//!   [`LocalMessage`]s and acknowledges them as they are taken, or, with
//!   `LocalOptions::manual_acks`, when the application calls `ack`; a
//!   consumer that stops reading or acking gets back-pressure and queue
//!   limits like a slow TCP client.
//!
//! # Design decisions
//! - Own codec ([`codec`]), one file per packet type with round-trip,
//!   prefix and mutation tests: one `Packet` type for 3.1/3.1.1/5.0,
//!   zero-copy `Bytes` payloads shared by every subscriber, the size limit
//!   checked before a body is buffered.
//! - One router task owns sessions, the topic tree and retained messages
//!   (no locks); connections talk to it over one bounded channel and it
//!   answers through per-connection outboxes whose length it bounds
//!   (in-flight window + queue for QoS 1/2, a counter for QoS 0).
//! - One broker thread by default ([`BrokerConfig::worker_threads`]), as
//!   Mosquitto: requests from different clients are applied in arrival
//!   order.
//! - Persistence is an fsynced append-only journal written in batches
//!   that replay applies whole or not at all; acks (and, for persisted
//!   QoS 2 deliveries, PUBLISH and PUBREL) wait for it, so QoS 2 stays
//!   exactly once across a killed broker in both directions.
//!
//! # Map of the modules
//! - [`broker`]: `Broker::start(config)`, `local_addr`, `connect_local`, `shutdown`.
//! - [`config`]: `BrokerConfig` and `Limits`, plain data with defaults.
//! - [`codec`]: MQTT 3.1/3.1.1/5.0 packets, one file per packet type.
//! - `listener`: accept loops for TCP, WebSocket and TLS (rustls), and
//!   the connection limit.
//! - `connection`: one network connection: CONNECT handshake, reader loop
//!   (keep alive, inbound topic aliases), writer task (outbound aliases,
//!   client maximum packet size).
//! - `router`: the task owning sessions, the topic tree and retained
//!   messages; connections talk to it over a bounded channel.
//! - `session`: subscriptions, in-flight window and queue of one client.
//! - [`topic`]: filter validation, matching, shared subscriptions, tree.
//! - `retained`: the retained message store.
//! - [`local_client`]: in-process clients with network-client semantics.
//! - `auth`, [`passwd`], [`acl`]: Mosquitto password and ACL files.
//! - [`persistence`]: the crash-safe journal of retained messages and
//!   persistent sessions.
//! - `stats`, `sys`: counters, and the `$SYS/broker/...` publisher.
//! - `message`: what flows between connections and the router.

pub mod acl;
mod auth;
pub mod broker;
pub mod codec;
pub mod config;
mod connection;
mod listener;
pub mod local_client;
mod message;
pub mod passwd;
pub mod persistence;
mod retained;
mod router;
mod session;
mod stats;
mod sys;
pub mod topic;

pub use broker::{Broker, BrokerError, InProcessConnector, VERSION};
pub use codec::{LastWill, Properties, QoS, RetainHandling, SubscriptionOptions};
pub use config::{BrokerConfig, Limits, TlsConfig};
pub use local_client::{
    LocalClient, LocalError, LocalMessage, LocalOptions, LocalPublish, LocalReceiver,
    MessageProperties,
};
