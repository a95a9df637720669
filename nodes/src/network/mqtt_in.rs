//! `mqtt in` node: subscribes through a shared `mqtt-broker` connection and
//! sends one message per received publication: `topic`, `payload` (converted
//! by `datatype`), `qos`, `retain`, and with MQTT 5 the publication's
//! properties (`responseTopic`, `correlationData`, `contentType`,
//! `messageExpiryInterval`, `payloadFormatIndicator`, `userProperties`).
//!
//! A QoS 1/2 publication is acknowledged to the broker only once the flow
//! has taken the message, so with a persistent session nothing the broker
//! still holds is lost if flowd stops abruptly.
//!
//! With `inputs: 1` the node subscribes dynamically: `msg.action` is
//! `subscribe`, `unsubscribe`, `getSubscriptions`, `connect` or `disconnect`.

use super::mqtt_broker::{MqttBroker, MQTT_BROKER};
use super::mqtt_client::SubOptions;
use super::mqtt_connection::{Connection, LinkState};
use super::mqtt_delivery::{Delivery, DeliverySender};
use super::mqtt_message::{
    decode_payload, Datatype, BAD_SUBSCRIPTION, INVALID_ACTION, INVALID_SUBSCRIPTION_TOPIC,
};
use flowd_engine::config_de;
use flowd_engine::node::{BoxFuture, BuildContext, BuiltNode, NodeType, TaskIo, TaskNode};
use flowd_engine::registry::{NodeDescriptor, PropertyDescriptor as Prop, PropertyKind as Kind};
use flowd_engine::value::Object;
use flowd_engine::{Msg, NodeHandle, Value};
use serde::Deserialize;
use serde_json::{json, Value as Json};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Received publications delivered in one go before the node looks at its
/// other inputs (stop, status, actions) again.
const DELIVERY_BATCH: usize = 64;

/// The `mqtt in` node type.
pub struct MqttInType;

/// Node-RED's default subscription QoS.
const DEFAULT_QOS: u8 = 2;

#[derive(Deserialize, Default)]
#[serde(default)]
struct MqttInConfig {
    #[serde(deserialize_with = "config_de::string")]
    topic: String,
    #[serde(deserialize_with = "config_de::string")]
    qos: String,
    datatype: Option<String>,
    #[serde(deserialize_with = "config_de::opt_number")]
    inputs: Option<f64>,
    nl: Option<Json>,
    rap: Option<Json>,
    #[serde(deserialize_with = "config_de::opt_number")]
    rh: Option<f64>,
}

const DATATYPES: &[&str] = &[
    "auto-detect",
    "auto",
    "buffer",
    "utf8",
    "json",
    "base64",
    "",
];

/// Checks an MQTT topic filter: `#` only as the whole last level, `+` only
/// as a whole level, `$share/<group>/<filter>` allowed.
pub fn valid_filter(filter: &str) -> bool {
    let f = match filter.strip_prefix("$share/") {
        Some(rest) => match rest.split_once('/') {
            Some((group, f)) if !group.is_empty() && !group.contains(['+', '#']) => f,
            _ => return false,
        },
        None => filter,
    };
    if f.is_empty() || f.contains('\0') {
        return false;
    }
    let levels: Vec<&str> = f.split('/').collect();
    levels.iter().enumerate().all(|(i, l)| match *l {
        "#" => i == levels.len() - 1,
        "+" => true,
        l => !l.contains(['+', '#']),
    })
}

fn flag(v: &Option<Json>, default: bool) -> bool {
    match v {
        Some(Json::Bool(b)) => *b,
        Some(Json::String(s)) if s == "true" => true,
        Some(Json::String(s)) if s == "false" => false,
        _ => default,
    }
}

/// One subscription of the node.
#[derive(Clone)]
struct Sub {
    id: u64,
    filter: String,
    options: SubOptions,
    datatype: Datatype,
    datatype_name: Option<String>,
}

struct MqttInNode {
    broker: Arc<MqttBroker>,
    filter: String,
    options: SubOptions,
    datatype: Datatype,
    dynamic: bool,
}

impl NodeType for MqttInType {
    fn type_name(&self) -> &'static str {
        "mqtt in"
    }

    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("mqtt in", "network", "node-red/mqtt", "#d8bfd8", 0, 1)
            .icon("bridge.svg")
            .prop(super::mqtt_broker::broker_reference())
            .prop(Prop::new("topic", "Topic", Kind::Text, json!("")))
            .prop(Prop::new(
                "qos",
                "QoS",
                Kind::Select {
                    options: vec![
                        ("0".into(), "0".into()),
                        ("1".into(), "1".into()),
                        ("2".into(), "2".into()),
                    ],
                },
                json!("2"),
            ))
            .prop(Prop::new(
                "datatype",
                "Output",
                Kind::Select {
                    options: vec![
                        (
                            "auto-detect".into(),
                            "auto-detect (parsed JSON object, string or buffer)".into(),
                        ),
                        ("buffer".into(), "a Buffer".into()),
                        ("utf8".into(), "a String".into()),
                        ("json".into(), "a parsed JSON object".into()),
                        ("base64".into(), "a Base64 encoded string".into()),
                    ],
                },
                json!("auto-detect"),
            ))
            .prop(Prop::new(
                "inputs",
                "Dynamic subscription",
                Kind::Number,
                json!(0),
            ))
            .prop(Prop::new(
                "nl",
                "Do not receive own messages (v5)",
                Kind::Bool,
                json!(false),
            ))
            .prop(Prop::new(
                "rap",
                "Keep retain flag (v5)",
                Kind::Bool,
                json!(true),
            ))
            .prop(Prop::new(
                "rh",
                "Retained message handling (v5)",
                Kind::Number,
                json!(0),
            ))
            .prop(Prop::new("name", "Name", Kind::Text, json!("")))
            .help(
                "Subscribes to an MQTT topic (`+` and `#` wildcards, `$share/group/` \
                 shared subscriptions) and sends a message for every publication: \
                 `topic`, `payload`, `qos`, `retain`.\n\n`Output` converts the payload: \
                 auto-detect (JSON text parsed, other text a string, binary a Buffer), \
                 string, Buffer, parsed JSON or Base64. QoS 1 and 2 messages are \
                 acknowledged once the flow has taken them.\n\nWith a dynamic \
                 subscription the node has an input: `msg.action` `subscribe` / \
                 `unsubscribe` (`msg.topic`: a topic, `{topic, qos, datatype}` or an \
                 array), `getSubscriptions`, `connect` and `disconnect`.",
            )
    }

    fn build(&self, cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        let broker: Option<Arc<MqttBroker>> = cx.config_node("broker", MQTT_BROKER);
        let c: MqttInConfig = cx.config()?;
        let dynamic = c.inputs.unwrap_or(0.0) >= 1.0;
        let qos = match c.qos.trim() {
            "" => Some(DEFAULT_QOS),
            "0" => Some(0),
            "1" => Some(1),
            "2" => Some(2),
            other => {
                cx.error(
                    "qos",
                    format!("invalid QoS \"{other}\" (expected 0, 1 or 2)"),
                );
                None
            }
        };
        let datatype = match c.datatype.as_deref() {
            Some(d) if !DATATYPES.contains(&d) => {
                cx.error(
                    "datatype",
                    format!(
                        "unknown datatype \"{d}\" (expected one of {})",
                        DATATYPES.join(", ")
                    ),
                );
                None
            }
            d => Some(Datatype::from_property(d)),
        };
        let rh = match c.rh {
            None => Some(0),
            Some(r) if r == 0.0 || r == 1.0 || r == 2.0 => Some(r as u8),
            Some(r) => {
                cx.error(
                    "rh",
                    format!("invalid retain handling {r} (expected 0, 1 or 2)"),
                );
                None
            }
        };
        if !dynamic {
            if c.topic.is_empty() {
                cx.error("topic", "no topic to subscribe to");
            } else if !valid_filter(&c.topic) {
                cx.error(
                    "topic",
                    format!("invalid topic filter \"{}\" (`#` must be the last level, `+` and `#` whole levels)", c.topic),
                );
            }
        }
        let (broker, qos, datatype, rh) = (broker?, qos?, datatype?, rh?);
        if !dynamic && (c.topic.is_empty() || !valid_filter(&c.topic)) {
            return None;
        }
        Some(BuiltNode::task(MqttInNode {
            broker,
            filter: c.topic,
            options: SubOptions {
                qos,
                nl: flag(&c.nl, false),
                rap: flag(&c.rap, true),
                rh,
            },
            datatype,
            dynamic,
        }))
    }
}

impl TaskNode for MqttInNode {
    fn inbox_capacity(&self) -> usize {
        if self.dynamic {
            flowd_engine::node::DEFAULT_INBOX_CAPACITY
        } else {
            0
        }
    }

    fn run(self: Box<Self>, io: TaskIo) -> BoxFuture<()> {
        Box::pin(self.run_node(io))
    }
}

/// Decodes by content type first (MQTT 5), as Node-RED's auto modes do.
fn decode(
    datatype: Datatype,
    content_type: Option<&str>,
    bytes: &bytes::Bytes,
) -> Result<Value, String> {
    if let (Some(ct), Datatype::Auto | Datatype::AutoDetect) = (content_type, datatype) {
        let ct = ct.to_ascii_lowercase();
        if ct.starts_with("application/json") {
            return match decode_payload(Datatype::Json, bytes) {
                Ok(v) if datatype == Datatype::AutoDetect => Ok(v),
                Ok(_) => decode_payload(Datatype::Utf8, bytes),
                Err(e) => Err(e),
            };
        }
        if ct.starts_with("text/") || ct.starts_with("application/xml") {
            return decode_payload(Datatype::Utf8, bytes);
        }
        const BINARY: &[&str] = &[
            "application/octet-stream",
            "application/zip",
            "application/pdf",
            "application/gzip",
            "image/",
            "audio/",
            "video/",
        ];
        if BINARY.iter().any(|b| ct.starts_with(b)) {
            return decode_payload(Datatype::Buffer, bytes);
        }
    }
    decode_payload(datatype, bytes)
}

impl MqttInNode {
    fn connection(&self) -> &Arc<Connection> {
        self.broker.connection()
    }

    async fn run_node(self: Box<Self>, io: TaskIo) {
        let TaskIo { mut inbox, handle } = io;
        let conn = self.connection().clone();
        let (tx, mut rx) = mpsc::unbounded_channel::<Delivery>();
        let mut subs: Vec<Sub> = Vec::new();
        if !self.dynamic {
            let id = conn.subscribe(&self.filter, self.options.clone(), tx.clone());
            subs.push(Sub {
                id,
                filter: self.filter.clone(),
                options: self.options.clone(),
                datatype: self.datatype,
                datatype_name: None,
            });
        }
        let mut state = conn.state();
        let now = *state.borrow_and_update();
        // Node-RED's "disconnected" at creation never reaches status nodes
        // (it is set before the flow starts): only a live state is reported.
        if now != LinkState::Disconnected {
            handle.status(now.status()).await;
        }
        conn.register_user();
        let cancel = handle.cancel_token().clone();
        let mut stopping = false;
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled(), if !stopping => {
                    stopping = true;
                    for s in subs.drain(..) {
                        conn.unsubscribe(s.id, false);
                    }
                    rx.close();
                    if inbox.is_none() {
                        break;
                    }
                }
                changed = state.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let s = *state.borrow_and_update();
                    handle.status(s.status()).await;
                }
                Some(d) = rx.recv(), if !stopping => {
                    self.deliver(&handle, &subs, d).await;
                    // Take what is already queued without another round of
                    // the select (bounded, so stopping stays prompt).
                    for _ in 0..DELIVERY_BATCH {
                        let Ok(d) = rx.try_recv() else { break };
                        self.deliver(&handle, &subs, d).await;
                    }
                }
                m = async { match inbox.as_mut() { Some(i) => i.recv().await, None => None } }, if inbox.is_some() => {
                    match m {
                        Some(msg) => self.action(&handle, &conn, &tx, &mut subs, msg).await,
                        None => break,
                    }
                }
            }
        }
        for s in subs.drain(..) {
            conn.unsubscribe(s.id, false);
        }
    }

    async fn deliver(&self, handle: &NodeHandle, subs: &[Sub], d: Delivery) {
        let Some(sub) = subs.iter().find(|s| s.id == d.subscription) else {
            // Not one of ours any more (unsubscribed): nothing to take.
            d.taken();
            return;
        };
        let r = &d.received.publication;
        // topic, payload, qos, retain, _topic and the v5 properties.
        let mut msg = Msg::with_capacity(5 + r.props.len());
        let topic = Value::str(&r.topic);
        msg.insert("topic", topic.clone());
        let host = &self.broker.host;
        let taken = match decode(sub.datatype, r.content_type.as_deref(), &r.payload) {
            Ok(v) => {
                msg.insert("payload", v);
                msg.insert("qos", Value::Number(f64::from(r.qos)));
                msg.insert("retain", Value::Bool(r.retain));
                for (k, v) in &r.props {
                    msg.insert(*k, v.clone());
                }
                if host == "localhost" || host == "127.0.0.1" {
                    msg.insert("_topic", topic);
                }
                handle.send(msg).await
            }
            Err(e) => {
                msg.insert("payload", Value::Buffer(r.payload.clone()));
                msg.insert("qos", Value::Number(f64::from(r.qos)));
                msg.insert("retain", Value::Bool(r.retain));
                handle.error(e, Some(msg)).await;
                true
            }
        };
        // The broker gets the acknowledgement once every node took its copy.
        if taken {
            d.taken();
        }
    }

    async fn action(
        &self,
        handle: &NodeHandle,
        conn: &Arc<Connection>,
        tx: &DeliverySender,
        subs: &mut Vec<Sub>,
        mut msg: Msg,
    ) {
        let action = msg
            .get("action")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match action.as_str() {
            "connect" => {
                let overrides = msg.get("broker").and_then(Value::as_object).cloned();
                if let Err(e) = conn.connect_action(overrides.as_ref()).await {
                    handle.error(e, Some(msg)).await;
                    return;
                }
                handle.done(msg).await;
            }
            "disconnect" => {
                conn.disconnect().await;
                handle.done(msg).await;
            }
            // The request itself goes out (other properties, `action`
            // included, kept), as in Node-RED.
            "getSubscriptions" => {
                let list: Vec<Value> = subs.iter().map(sub_value).collect();
                msg.insert("topic", Value::str("subscriptions"));
                msg.insert("payload", Value::array(list));
                if handle.is_watched() {
                    handle.done(msg.clone()).await;
                }
                handle.send(msg).await;
            }
            "subscribe" | "unsubscribe" => {
                let subscribe = action == "subscribe";
                if !subscribe && msg.topic() == Some(&Value::Bool(true)) {
                    for s in subs.drain(..) {
                        conn.unsubscribe(s.id, true);
                    }
                } else {
                    let wanted = match self.requested(msg.topic()) {
                        Ok(w) => w,
                        Err(e) => {
                            handle.error(e, Some(msg)).await;
                            return;
                        }
                    };
                    for mut w in wanted {
                        if let Some(pos) = subs.iter().position(|s| s.filter == w.filter) {
                            let old = subs.remove(pos);
                            conn.unsubscribe(old.id, !subscribe);
                        }
                        if subscribe {
                            w.id = conn.subscribe(&w.filter, w.options.clone(), tx.clone());
                            subs.push(w);
                        }
                    }
                }
                let list: Vec<Value> = subs.iter().map(sub_value).collect();
                msg.insert("subscriptions", Value::array(list));
                handle.done(msg).await;
            }
            _ => handle.error(INVALID_ACTION, Some(msg)).await,
        }
    }

    /// The subscriptions `msg.topic` asks for (a string, an object or an array of them).
    fn requested(&self, topic: Option<&Value>) -> Result<Vec<Sub>, String> {
        let items: Vec<&Value> = match topic {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(v @ (Value::String(_) | Value::Object(_))) => vec![v],
            _ => return Err(BAD_SUBSCRIPTION.into()),
        };
        let mut out = Vec::new();
        for item in items {
            let mut sub = Sub {
                id: 0,
                filter: String::new(),
                options: SubOptions {
                    qos: DEFAULT_QOS,
                    nl: false,
                    rap: true,
                    rh: 0,
                },
                datatype: self.datatype,
                datatype_name: None,
            };
            match item {
                Value::String(s) => sub.filter = s.to_string(),
                Value::Object(o) => {
                    sub.filter = o
                        .get("topic")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    if let Some(q) = o.get("qos") {
                        let q = q.to_number();
                        if (0.0..=2.0).contains(&q) && q.fract() == 0.0 {
                            sub.options.qos = q as u8;
                        }
                    }
                    if let Some(b) = o.get("nl").and_then(Value::as_bool) {
                        sub.options.nl = b;
                    }
                    if let Some(b) = o.get("rap").and_then(Value::as_bool) {
                        sub.options.rap = b;
                    }
                    if let Some(r) = o.get("rh") {
                        let r = r.to_number();
                        if r == 1.0 || r == 2.0 {
                            sub.options.rh = r as u8;
                        }
                    }
                    if let Some(d) = o.get("datatype").and_then(Value::as_str) {
                        if !DATATYPES.contains(&d) {
                            return Err(format!("unknown datatype \"{d}\""));
                        }
                        sub.datatype = Datatype::from_property(Some(d));
                        sub.datatype_name = Some(d.to_string());
                    }
                }
                _ => return Err(INVALID_SUBSCRIPTION_TOPIC.into()),
            }
            if !valid_filter(&sub.filter) {
                return Err(INVALID_SUBSCRIPTION_TOPIC.into());
            }
            out.push(sub);
        }
        Ok(out)
    }
}

fn sub_value(s: &Sub) -> Value {
    let mut o = Object::new();
    o.insert("topic", Value::str(&s.filter));
    o.insert("qos", Value::Number(f64::from(s.options.qos)));
    o.insert("nl", Value::Bool(s.options.nl));
    o.insert("rap", Value::Bool(s.options.rap));
    o.insert("rh", Value::Number(f64::from(s.options.rh)));
    if let Some(d) = &s.datatype_name {
        o.insert("datatype", Value::str(d));
    }
    Value::object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        for ok in ["a", "a/+/b", "#", "a/#", "+", "$share/g/a/+", "a//b"] {
            assert!(valid_filter(ok), "{ok}");
        }
        for bad in ["", "a/#/b", "a+", "a/b#", "$share/g", "$share//a", "a/\0"] {
            assert!(!valid_filter(bad), "{bad:?}");
        }
    }

    #[test]
    fn content_type_overrides_auto_modes() {
        let b = bytes::Bytes::from_static(b"{\"a\":1}");
        assert_eq!(
            decode(Datatype::AutoDetect, Some("text/plain"), &b).unwrap(),
            Value::str("{\"a\":1}")
        );
        assert_eq!(
            decode(Datatype::Auto, Some("application/octet-stream"), &b).unwrap(),
            Value::Buffer(b.clone())
        );
        assert!(decode(
            Datatype::AutoDetect,
            Some("application/json"),
            &bytes::Bytes::from_static(b"x")
        )
        .is_err());
        assert_eq!(
            decode(Datatype::Utf8, Some("application/json"), &b).unwrap(),
            Value::str("{\"a\":1}")
        );
    }
}
