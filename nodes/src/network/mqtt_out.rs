//! `mqtt out` node: publishes each message through a shared `mqtt-broker`
//! connection.
//!
//! Topic, QoS and retain follow Node-RED's precedence and the payload its
//! serialisation ([`super::mqtt_message::publication`]); an empty retained
//! payload clears the broker's retained message. `done` (complete nodes)
//! fires once the broker acknowledged the publication (QoS 0: once written).
//!
//! Unlike Node-RED, nothing is dropped silently while the broker is
//! unreachable: messages wait in the connection's bounded queue and are sent
//! in order after reconnecting. When that queue is full, a QoS 1/2 message
//! raises an error with the message (catch nodes get it); QoS 0 messages are
//! counted and reported in a warning. `msg.action` `connect` / `disconnect`
//! controls the shared connection.

use super::mqtt_broker::{MqttBroker, MQTT_BROKER};
use super::mqtt_client::{OutProps, Protocol};
use super::mqtt_connection::{LinkState, PublishError, Ticket};
use super::mqtt_message::{publication, NotPublished, Publication, INVALID_ACTION};
use bytes::Bytes;
use flowd_engine::config_de;
use flowd_engine::node::{BoxFuture, BuildContext, BuiltNode, NodeType, TaskIo, TaskNode};
use flowd_engine::registry::{NodeDescriptor, PropertyDescriptor as Prop, PropertyKind as Kind};
use flowd_engine::{Msg, NodeHandle, Value};
use serde::Deserialize;
use serde_json::{json, Value as Json};
use std::sync::Arc;

/// Messages published in one go before the node looks at the connection
/// status again.
const INBOX_BATCH: usize = 64;

/// The `mqtt out` node type.
pub struct MqttOutType;

#[derive(Deserialize, Default)]
#[serde(default)]
struct MqttOutConfig {
    #[serde(deserialize_with = "config_de::string")]
    topic: String,
    #[serde(deserialize_with = "config_de::string")]
    qos: String,
    #[serde(deserialize_with = "config_de::string")]
    retain: String,
    #[serde(rename = "respTopic", deserialize_with = "config_de::string")]
    resp_topic: String,
    #[serde(deserialize_with = "config_de::string")]
    correl: String,
    #[serde(rename = "contentType", deserialize_with = "config_de::string")]
    content_type: String,
    #[serde(deserialize_with = "config_de::opt_number")]
    expiry: Option<f64>,
    #[serde(rename = "userProps", deserialize_with = "config_de::string")]
    user_props: String,
}

struct MqttOutNode {
    broker: Arc<MqttBroker>,
    topic: String,
    qos: String,
    retain: String,
    props: OutProps,
}

impl NodeType for MqttOutType {
    fn type_name(&self) -> &'static str {
        "mqtt out"
    }

    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("mqtt out", "network", "node-red/mqtt", "#d8bfd8", 1, 0)
            .icon("bridge.svg")
            .prop(super::mqtt_broker::broker_reference())
            .prop(Prop::new("topic", "Topic", Kind::Text, json!("")))
            .prop(Prop::new(
                "qos",
                "QoS",
                Kind::Select {
                    options: vec![
                        ("".into(), "".into()),
                        ("0".into(), "0".into()),
                        ("1".into(), "1".into()),
                        ("2".into(), "2".into()),
                    ],
                },
                json!(""),
            ))
            .prop(Prop::new(
                "retain",
                "Retain",
                Kind::Select {
                    options: vec![
                        ("".into(), "".into()),
                        ("false".into(), "false".into()),
                        ("true".into(), "true".into()),
                    ],
                },
                json!(""),
            ))
            .prop(Prop::new(
                "respTopic",
                "Response topic (v5)",
                Kind::Text,
                json!(""),
            ))
            .prop(Prop::new(
                "correl",
                "Correlation data (v5)",
                Kind::Text,
                json!(""),
            ))
            .prop(Prop::new(
                "contentType",
                "Content type (v5)",
                Kind::Text,
                json!(""),
            ))
            .prop(Prop::new(
                "expiry",
                "Message expiry (v5)",
                Kind::Number,
                json!(""),
            ))
            .prop(Prop::new(
                "userProps",
                "User properties (v5)",
                Kind::Text,
                json!(""),
            ))
            .prop(Prop::new("name", "Name", Kind::Text, json!("")))
            .help(
                "Publishes `msg.payload` to `msg.topic` (or the node's topic, which wins). \
                 QoS and retain come from the node, or from `msg.qos` / `msg.retain` when \
                 left empty. Buffers are sent as is, strings as UTF-8, numbers and \
                 booleans as text, objects as JSON, null as an empty payload (which \
                 clears a retained message).\n\nWhile the broker is unreachable messages \
                 are queued and sent in order after reconnecting; when the queue is full, \
                 QoS 1/2 messages raise an error catch nodes receive.",
            )
    }

    fn build(&self, cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        let broker: Option<Arc<MqttBroker>> = cx.config_node("broker", MQTT_BROKER);
        let c: MqttOutConfig = cx.config()?;
        let mut ok = true;
        if !matches!(c.qos.as_str(), "" | "0" | "1" | "2") {
            cx.error(
                "qos",
                format!("invalid QoS \"{}\" (expected \"\", 0, 1 or 2)", c.qos),
            );
            ok = false;
        }
        if !matches!(c.retain.as_str(), "" | "true" | "false") {
            cx.error(
                "retain",
                format!(
                    "invalid retain \"{}\" (expected \"\", true or false)",
                    c.retain
                ),
            );
            ok = false;
        }
        if c.topic.contains(['+', '#']) {
            cx.error(
                "topic",
                format!(
                    "invalid topic \"{}\": wildcards are not allowed when publishing",
                    c.topic
                ),
            );
            ok = false;
        }
        let user_props = if c.user_props.trim().is_empty() {
            Vec::new()
        } else {
            match serde_json::from_str::<serde_json::Map<String, Json>>(&c.user_props) {
                Ok(m) => m
                    .into_iter()
                    .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                    .collect(),
                Err(e) => {
                    cx.error("userProps", format!("not a JSON object: {e}"));
                    ok = false;
                    Vec::new()
                }
            }
        };
        let expiry = match c.expiry {
            None => None,
            Some(e) if e >= 0.0 && e <= f64::from(u32::MAX) => Some(e as u32),
            Some(e) => {
                cx.error("expiry", format!("invalid message expiry {e}"));
                ok = false;
                None
            }
        };
        let broker = broker?;
        if !ok {
            return None;
        }
        let non_empty = |s: String| (!s.is_empty()).then_some(s);
        Some(BuiltNode::task(MqttOutNode {
            broker,
            topic: c.topic,
            qos: c.qos,
            retain: c.retain,
            props: OutProps {
                response_topic: non_empty(c.resp_topic),
                correlation_data: non_empty(c.correl).map(Bytes::from),
                content_type: non_empty(c.content_type),
                message_expiry: expiry,
                payload_format: None,
                user_props,
            },
        }))
    }
}

impl TaskNode for MqttOutNode {
    fn run(self: Box<Self>, io: TaskIo) -> BoxFuture<()> {
        Box::pin(self.run_node(io))
    }
}

/// MQTT 5 properties from the message, overridden by the node's.
fn message_props(node: &OutProps, msg: &Msg) -> OutProps {
    let text = |k: &str| msg.get(k).and_then(Value::as_str).map(str::to_string);
    let user_props = if node.user_props.is_empty() {
        msg.get("userProperties")
            .and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.to_string(), v.to_js_string()))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        node.user_props.clone()
    };
    OutProps {
        response_topic: node
            .response_topic
            .clone()
            .or_else(|| text("responseTopic")),
        correlation_data: node.correlation_data.clone().or_else(|| {
            match msg.get("correlationData") {
                Some(Value::Buffer(b)) => Some(b.clone()),
                Some(Value::String(s)) => Some(Bytes::copy_from_slice(s.as_bytes())),
                _ => None,
            }
        }),
        content_type: node.content_type.clone().or_else(|| text("contentType")),
        message_expiry: node.message_expiry.or_else(|| {
            msg.get("messageExpiryInterval")
                .and_then(Value::as_f64)
                .filter(|e| *e >= 0.0 && *e <= f64::from(u32::MAX))
                .map(|e| e as u32)
        }),
        payload_format: msg
            .get("payloadFormatIndicator")
            .map(|v| u8::from(v.is_truthy())),
        user_props,
    }
}

/// The message as Node-RED's mqtt out leaves it once published, which is
/// what complete nodes receive: the node's topic (when set), the QoS and
/// retain flag used, and a payload other than a Buffer as the text sent
/// (`null` -> "", objects as JSON).
fn as_published(msg: &mut Msg, p: &Publication, node_topic: bool) {
    if node_topic {
        msg.insert("topic", Value::str(&p.topic));
    }
    msg.insert("qos", Value::Number(f64::from(p.qos)));
    msg.insert("retain", Value::Bool(p.retain));
    if !matches!(msg.payload(), Some(Value::Buffer(_))) {
        let text = String::from_utf8_lossy(&p.payload).into_owned();
        msg.insert("payload", Value::string(text));
    }
}

impl MqttOutNode {
    async fn run_node(self: Box<Self>, io: TaskIo) {
        let TaskIo { inbox, handle } = io;
        let Some(mut inbox) = inbox else { return };
        let conn = self.broker.connection().clone();
        let mut state = conn.state();
        let now = *state.borrow_and_update();
        // Node-RED's "disconnected" at creation never reaches status nodes
        // (it is set before the flow starts): only a live state is reported.
        if now != LinkState::Disconnected {
            handle.status(now.status()).await;
        }
        conn.register_user();
        let mut dropped: u64 = 0;
        loop {
            tokio::select! {
                changed = state.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let s = *state.borrow_and_update();
                    handle.status(s.status()).await;
                }
                m = inbox.recv() => match m {
                    Some(msg) => {
                        self.on_message(&handle, msg, &mut dropped).await;
                        // Take what is already queued without another round
                        // of the select (bounded).
                        for _ in 0..INBOX_BATCH {
                            let Ok(msg) = inbox.try_recv() else { break };
                            self.on_message(&handle, msg, &mut dropped).await;
                        }
                    }
                    None => break,
                },
            }
        }
        if dropped > 0 {
            handle
                .warn(format!(
                    "{dropped} QoS 0 messages were dropped: not connected and the queue was full"
                ))
                .await;
        }
    }

    async fn on_message(&self, handle: &NodeHandle, msg: Msg, dropped: &mut u64) {
        let conn = self.broker.connection();
        if let Some(action) = msg.get("action") {
            match action.as_str() {
                Some("connect") => {
                    let overrides = msg.get("broker").and_then(Value::as_object).cloned();
                    if let Err(e) = conn.connect_action(overrides.as_ref()).await {
                        handle.error(e, Some(msg)).await;
                        return;
                    }
                    handle.done(msg).await;
                }
                Some("disconnect") => {
                    conn.disconnect().await;
                    handle.done(msg).await;
                }
                _ => handle.error(INVALID_ACTION, Some(msg)).await,
            }
            return;
        }
        let v5 = conn.options().protocol == Protocol::V5;
        let mut props = v5.then(|| message_props(&self.props, &msg));
        // MQTT 5: without a topic, the response topic is the topic (and is not sent).
        let fallback = match (&mut props, msg.topic()) {
            (Some(pp), None | Some(Value::String(_))) if self.topic.is_empty() => {
                let empty = msg
                    .topic()
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty);
                if empty {
                    pp.response_topic.take()
                } else {
                    None
                }
            }
            _ => None,
        };
        let result = match &fallback {
            Some(t) => publication(t, &self.qos, &self.retain, &msg),
            None => publication(&self.topic, &self.qos, &self.retain, &msg),
        };
        let p = match result {
            Ok(p) => p,
            Err(NotPublished::NoPayload) => {
                handle.done(msg).await;
                return;
            }
            Err(NotPublished::InvalidTopic) => {
                handle.warn("invalid topic").await;
                return;
            }
        };
        let qos = p.qos;
        // The handle is kept (cloned) only when a complete node waits for it.
        let ticket = if handle.is_watched() {
            let mut msg = msg;
            as_published(&mut msg, &p, !self.topic.is_empty());
            Ticket::Done(handle.clone(), msg)
        } else {
            Ticket::Message(msg)
        };
        match conn.publish(p, props, Some(ticket)).await {
            Ok(()) => {
                if *dropped > 0 {
                    handle
                        .warn(format!("{dropped} QoS 0 messages were dropped: not connected and the queue was full"))
                        .await;
                    *dropped = 0;
                }
            }
            Err((e, ticket)) => {
                let msg = match ticket {
                    Some(Ticket::Done(_, m) | Ticket::Message(m)) => Some(m),
                    _ => None,
                };
                if qos == 0 && matches!(e, PublishError::QueueFull(_)) {
                    if *dropped == 0 {
                        handle.warn(format!("QoS 0 message dropped: {e}")).await;
                    }
                    *dropped += 1;
                } else {
                    handle.error(e, msg).await;
                }
            }
        }
    }
}
