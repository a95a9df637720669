//! `mqtt-broker` config node: one MQTT client connection (flowd's own client, `mqtt_client`) shared by
//! every `mqtt in` and `mqtt out` node that names it in `broker`.
//!
//! The connection opens when the first user node starts (unless
//! `autoConnect` is false), reconnects with backoff, re-subscribes and
//! publishes the birth message after every connect, registers the will, and
//! publishes the close message before a clean disconnect. While the broker is
//! unreachable, outgoing messages wait in a bounded queue (`queueSize`,
//! default 1000, a flowd extension) and are sent in order after reconnecting.

use super::mqtt_client::{Announcement, ClientOptions, Protocol};
use super::mqtt_connection::{Connection, ConnectionSettings};
use super::mqtt_tls;
use bytes::Bytes;
use flowd_engine::config_de;
use flowd_engine::node::{BoxFuture, BuildContext, BuiltNode, ConfigNode, NodeType};
use flowd_engine::registry::{NodeDescriptor, PropertyDescriptor as Prop, PropertyKind as Kind};
use serde::Deserialize;
use serde_json::{json, Value as Json};
use std::sync::Arc;

/// The Node-RED type name.
pub const MQTT_BROKER: &str = "mqtt-broker";

/// The `broker` property of mqtt in / mqtt out: a required mqtt-broker reference.
pub fn broker_reference() -> Prop {
    Prop::new(
        "broker",
        "Server",
        Kind::Config {
            node_type: MQTT_BROKER.into(),
        },
        json!(""),
    )
    .required()
}
/// Default port.
const DEFAULT_PORT: u16 = 1883;
/// Default keep-alive in seconds.
const DEFAULT_KEEPALIVE: f64 = 60.0;
/// Default size of the queue of messages kept while disconnected.
pub const DEFAULT_QUEUE_SIZE: usize = 1000;

/// The `mqtt-broker` node type.
pub struct MqttBrokerType;

/// The running config node: the shared connection.
pub struct MqttBroker {
    connection: Arc<Connection>,
    /// Host as configured (for `_topic` on received messages).
    pub host: String,
}

impl MqttBroker {
    /// The shared connection.
    pub fn connection(&self) -> &Arc<Connection> {
        &self.connection
    }
}

impl ConfigNode for MqttBroker {
    fn close(&self) -> BoxFuture<()> {
        let c = self.connection.clone();
        Box::pin(async move { c.close().await })
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct BrokerConfig {
    #[serde(deserialize_with = "config_de::string")]
    broker: String,
    #[serde(deserialize_with = "config_de::string")]
    port: String,
    #[serde(deserialize_with = "config_de::boolean")]
    usetls: bool,
    #[serde(deserialize_with = "config_de::string")]
    tls: String,
    #[serde(deserialize_with = "config_de::string")]
    clientid: String,
    #[serde(rename = "autoConnect")]
    auto_connect: Option<Json>,
    #[serde(rename = "protocolVersion", deserialize_with = "config_de::string")]
    protocol_version: String,
    #[serde(deserialize_with = "config_de::boolean")]
    compatmode: bool,
    #[serde(deserialize_with = "config_de::opt_number")]
    keepalive: Option<f64>,
    cleansession: Option<Json>,
    #[serde(rename = "autoUnsubscribe")]
    auto_unsubscribe: Option<Json>,
    #[serde(rename = "sessionExpiry", deserialize_with = "config_de::opt_number")]
    session_expiry: Option<f64>,
    #[serde(rename = "userProps", deserialize_with = "config_de::string")]
    user_props: String,
    #[serde(rename = "queueSize", deserialize_with = "config_de::opt_number")]
    queue_size: Option<f64>,
    #[serde(deserialize_with = "config_de::boolean")]
    verifyservercert: bool,
}

/// A flag that is true unless it is `false` or `"false"`.
fn default_true(v: &Option<Json>) -> bool {
    !matches!(v, Some(Json::Bool(false))) && !matches!(v, Some(Json::String(s)) if s == "false")
}

fn text(v: Option<&Json>) -> String {
    match v {
        None | Some(Json::Null) => String::new(),
        Some(Json::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Builds the birth/close/will message `prefix` (`birth`, `close`, `will`).
fn announcement(cx: &mut BuildContext<'_>, prefix: &str) -> Option<Option<Announcement>> {
    let p = cx.props();
    let topic = text(p.get(&format!("{prefix}Topic")));
    if topic.is_empty() {
        return Some(None);
    }
    let payload = match p.get(&format!("{prefix}Payload")) {
        None | Some(Json::Null) => String::new(),
        Some(Json::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let qos_text = text(p.get(&format!("{prefix}Qos")));
    let retain = matches!(p.get(&format!("{prefix}Retain")), Some(Json::Bool(true)))
        || text(p.get(&format!("{prefix}Retain"))) == "true";
    let qos = match qos_text.as_str() {
        "" | "0" => 0,
        "1" => 1,
        "2" => 2,
        other => {
            cx.error(
                &format!("{prefix}Qos"),
                format!("invalid QoS \"{other}\" (expected 0, 1 or 2)"),
            );
            return None;
        }
    };
    if topic.contains(['+', '#']) {
        cx.error(
            &format!("{prefix}Topic"),
            format!("invalid topic \"{topic}\": wildcards are not allowed"),
        );
        return None;
    }
    Some(Some(Announcement {
        topic,
        payload: Bytes::from(payload),
        qos,
        retain,
    }))
}

/// A Node-RED-like client id: "nodered" and 16 hex digits.
fn generated_client_id() -> String {
    format!("nodered{:016x}", fastrand::u64(..))
}

/// Where a broker config connects.
struct Address {
    host: String,
    port: u16,
    tls: bool,
    /// URL path of MQTT over WebSocket (`ws://` and `wss://` URLs).
    websocket: Option<String>,
}

/// Host, port, TLS and WebSocket path from `broker` (host or URL) and `port`.
fn address(c: &BrokerConfig, cx: &mut BuildContext<'_>) -> Option<Address> {
    let mut tls = c.usetls;
    let mut websocket = None;
    let parse_port = |s: &str, cx: &mut BuildContext<'_>, field: &str| -> Option<u16> {
        if s.trim().is_empty() {
            return Some(DEFAULT_PORT);
        }
        match s.trim().parse::<u16>() {
            Ok(p) if p > 0 => Some(p),
            Ok(0) => Some(DEFAULT_PORT),
            _ => {
                cx.error(
                    field,
                    format!("invalid port \"{s}\" (expected a number from 1 to 65535)"),
                );
                None
            }
        }
    };
    if let Some((scheme, rest)) = c.broker.split_once("://") {
        let path = rest.find('/').map_or("/", |i| &rest[i..]);
        match scheme {
            "mqtt" | "tcp" => {}
            "mqtts" | "ssl" | "tls" => tls = true,
            "ws" => websocket = Some(path.to_string()),
            "wss" => {
                tls = true;
                websocket = Some(path.to_string());
            }
            other => {
                cx.error(
                    "broker",
                    format!(
                        "unsupported URL scheme \"{other}\" (flowd supports mqtt://, mqtts://, ws:// and wss://)"
                    ),
                );
                return None;
            }
        }
        let authority = rest.split('/').next().unwrap_or("");
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').unwrap_or((v6, ""));
            (h.to_string(), after.strip_prefix(':').unwrap_or(""))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p),
                None => (authority.to_string(), ""),
            }
        };
        let default = match (tls, websocket.is_some()) {
            (false, false) => "1883",
            (true, false) => "8883",
            (false, true) => "80",
            (true, true) => "443",
        };
        let port = parse_port(if port.is_empty() { default } else { port }, cx, "broker")?;
        let host = if host.is_empty() {
            "localhost".into()
        } else {
            host
        };
        return Some(Address {
            host,
            port,
            tls,
            websocket,
        });
    }
    let host = if c.broker.trim().is_empty() {
        "localhost".to_string()
    } else {
        c.broker
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string()
    };
    let port = parse_port(&c.port, cx, "port")?;
    Some(Address {
        host,
        port,
        tls,
        websocket,
    })
}

impl NodeType for MqttBrokerType {
    fn type_name(&self) -> &'static str {
        MQTT_BROKER
    }

    fn descriptor(&self) -> NodeDescriptor {
        let text_prop = |n: &str, l: &str, d: Json| Prop::new(n, l, Kind::Text, d);
        let qos = || Kind::Select {
            options: vec![
                ("0".into(), "0".into()),
                ("1".into(), "1".into()),
                ("2".into(), "2".into()),
            ],
        };
        let mut d = NodeDescriptor::new(MQTT_BROKER, "config", "node-red/mqtt", "#d8bfd8", 0, 0)
            .prop(text_prop("name", "Name", json!("")))
            .prop(text_prop("broker", "Server", json!("")).required())
            .prop(Prop::new("port", "Port", Kind::Number, json!(1883)))
            .prop(Prop::new("usetls", "Use TLS", Kind::Bool, json!(false)))
            .prop(Prop::new(
                "tls",
                "TLS configuration",
                Kind::Config {
                    node_type: "tls-config".into(),
                },
                json!(""),
            ))
            .prop(Prop::new(
                "verifyservercert",
                "Verify server certificate (without a TLS configuration)",
                Kind::Bool,
                json!(false),
            ))
            .prop(text_prop("clientid", "Client ID", json!("")))
            .prop(Prop::new(
                "protocolVersion",
                "Protocol",
                Kind::Select {
                    options: vec![
                        ("4".into(), "MQTT V3.1.1".into()),
                        ("5".into(), "MQTT V5".into()),
                    ],
                },
                json!("4"),
            ))
            .prop(Prop::new(
                "autoConnect",
                "Connect automatically",
                Kind::Bool,
                json!(true),
            ))
            .prop(Prop::new(
                "keepalive",
                "Keep Alive",
                Kind::Number,
                json!(60),
            ))
            .prop(Prop::new(
                "cleansession",
                "Use clean session",
                Kind::Bool,
                json!(true),
            ))
            .prop(Prop::new(
                "autoUnsubscribe",
                "Automatically unsubscribe when disconnecting",
                Kind::Bool,
                json!(true),
            ))
            .prop(Prop::new(
                "sessionExpiry",
                "Session Expiry (seconds)",
                Kind::Number,
                json!(""),
            ))
            .prop(Prop::new(
                "queueSize",
                "Messages kept while disconnected",
                Kind::Number,
                json!(DEFAULT_QUEUE_SIZE),
            ));
        for (p, l) in [("birth", "Birth"), ("close", "Close"), ("will", "Will")] {
            d = d
                .prop(text_prop(
                    &format!("{p}Topic"),
                    &format!("{l} message topic"),
                    json!(""),
                ))
                .prop(Prop::new(&format!("{p}Qos"), "QoS", qos(), json!("0")))
                .prop(Prop::new(
                    &format!("{p}Retain"),
                    "Retain",
                    Kind::Bool,
                    json!("false"),
                ))
                .prop(Prop::new(
                    &format!("{p}Payload"),
                    "Payload",
                    Kind::Multiline,
                    json!(""),
                ));
        }
        d.credential(Prop::new("user", "Username", Kind::Text, json!("")))
            .credential(Prop::new("password", "Password", Kind::Password, json!("")))
            .help(
                "A connection to an MQTT broker, shared by the mqtt in and mqtt out nodes \
                 that use it.\n\nThe connection opens when the first of them starts, \
                 reconnects automatically and re-subscribes. Birth, close and will \
                 messages are optional. While the broker is unreachable, messages to \
                 publish wait in a queue of `queueSize` messages (default 1000) and are \
                 sent in order once connected again.",
            )
    }

    fn build(&self, cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        let c: BrokerConfig = cx.config()?;
        let addr = address(&c, cx);
        let protocol = match (c.protocol_version.as_str(), c.compatmode) {
            (_, true) | ("3" | "4" | "", false) => Some(Protocol::V4),
            ("5", false) => Some(Protocol::V5),
            (other, false) => {
                cx.error(
                    "protocolVersion",
                    format!("invalid protocol version \"{other}\" (expected 3, 4 or 5)"),
                );
                None
            }
        };
        let keepalive = match c.keepalive.unwrap_or(DEFAULT_KEEPALIVE) {
            k if (0.0..=65535.0).contains(&k) && k.fract() == 0.0 => Some(k as u16),
            k => {
                cx.error(
                    "keepalive",
                    format!("invalid keep-alive {k} (expected whole seconds from 0 to 65535)"),
                );
                None
            }
        };
        let session_expiry = match c.session_expiry.filter(|s| *s != 0.0) {
            None => Some(None),
            Some(s) if s > 0.0 && s <= f64::from(u32::MAX) => Some(Some(s as u32)),
            Some(s) => {
                cx.error("sessionExpiry", format!("invalid session expiry {s}"));
                None
            }
        };
        let user_props = if c.user_props.trim().is_empty() {
            Some(Vec::new())
        } else {
            match serde_json::from_str::<serde_json::Map<String, Json>>(&c.user_props) {
                Ok(m) => Some(m.into_iter().map(|(k, v)| (k, text(Some(&v)))).collect()),
                Err(e) => {
                    cx.error("userProps", format!("not a JSON object: {e}"));
                    None
                }
            }
        };
        let queue_size = match c.queue_size {
            None => Some(DEFAULT_QUEUE_SIZE),
            Some(q) if q >= 0.0 && q.fract() == 0.0 && q <= 10_000_000.0 => Some(q as usize),
            Some(q) => {
                cx.error("queueSize", format!("invalid queue size {q}"));
                None
            }
        };
        let birth = announcement(cx, "birth");
        let close = announcement(cx, "close");
        let will = announcement(cx, "will");
        let user = cx.credential("user").filter(|u| !u.is_empty());
        let password = cx.credential("password").unwrap_or_default();
        let Address {
            host,
            port,
            tls: use_tls,
            websocket,
        } = addr?;
        let tls = if use_tls {
            Some(mqtt_tls::client_config(cx, &c.tls, c.verifyservercert)?)
        } else {
            None
        };
        let (protocol, keepalive, session_expiry, user_props, queue_size) = (
            protocol?,
            keepalive?,
            session_expiry?,
            user_props?,
            queue_size?,
        );
        let (birth, close, will) = (birth?, close?, will?);
        let mut clean = default_true(&c.cleansession);
        let client_id = if c.clientid.is_empty() {
            if !clean {
                tracing::warn!(node = %cx.info().id, "No client id set: using a clean session.");
                clean = true;
            }
            generated_client_id()
        } else {
            c.clientid.clone()
        };
        let settings = ConnectionSettings {
            client: ClientOptions {
                host: host.clone(),
                port,
                client_id,
                protocol,
                keepalive,
                clean,
                session_expiry: if protocol == Protocol::V5 {
                    session_expiry
                } else {
                    None
                },
                user_props: if protocol == Protocol::V5 {
                    user_props
                } else {
                    Vec::new()
                },
                credentials: user.map(|u| (u, password)),
                will,
                tls,
                websocket,
            },
            birth,
            close,
            auto_connect: default_true(&c.auto_connect),
            auto_unsubscribe: default_true(&c.auto_unsubscribe),
            queue_size,
        };
        Some(BuiltNode::config(Arc::new(MqttBroker {
            connection: Arc::new(Connection::new(settings)),
            host,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowd_engine::prepare_json;

    fn broker(extra: Json) -> Json {
        let mut b =
            json!({"id": "b1", "type": "mqtt-broker", "broker": "127.0.0.1", "port": "1883"});
        if let (Some(o), Some(e)) = (b.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                o.insert(k.clone(), v.clone());
            }
        }
        json!([b])
    }

    fn errors(flows: Json) -> Vec<String> {
        match prepare_json(&crate::registry(), flows) {
            Ok(_) => Vec::new(),
            Err(e) => {
                e.0.iter()
                    .map(|e| format!("{:?}: {}", e.field, e.message))
                    .collect()
            }
        }
    }

    #[test]
    fn editor_defaults_build() {
        assert!(errors(broker(json!({
            "clientid": "", "autoConnect": true, "usetls": false, "protocolVersion": "4",
            "keepalive": "60", "cleansession": true, "birthTopic": "", "birthQos": "0",
            "birthRetain": "false", "birthPayload": "", "birthMsg": {}, "sessionExpiry": ""
        })))
        .is_empty());
    }

    #[test]
    fn bad_settings_are_validation_errors() {
        let e = errors(broker(
            json!({"port": "99999", "keepalive": "-1", "birthTopic": "a", "birthQos": "7", "protocolVersion": "9"}),
        ));
        assert!(e.iter().any(|e| e.contains("port")), "{e:?}");
        assert!(e.iter().any(|e| e.contains("keepalive")), "{e:?}");
        assert!(e.iter().any(|e| e.contains("birthQos")), "{e:?}");
        assert!(e.iter().any(|e| e.contains("protocolVersion")), "{e:?}");
        let e = errors(broker(json!({"broker": "http://x:9001"})));
        assert!(e.iter().any(|e| e.contains("scheme")), "{e:?}");
        assert!(errors(broker(json!({"broker": "ws://x:9001/mqtt"}))).is_empty());
    }

    #[test]
    fn urls_and_generated_ids() {
        let id = generated_client_id();
        assert_eq!(id.len(), 7 + 16);
        assert!(id.starts_with("nodered"));
        assert!(errors(broker(json!({"broker": "mqtt://user@[::1]:1884/x"}))).is_empty());
    }
}
