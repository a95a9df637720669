//! Recorded Node-RED cases (tests/conformance/cases: flow, MQTT input, the
//! exact MQTT output of Node-RED 4.1.8) replayed in-process.
//!
//! The MQTT transport is replaced by in-process stand-ins for `mqtt in`,
//! `mqtt out` and `mqtt-broker` built on the real message rules of
//! `flowd_nodes::network::mqtt_message` (datatypes, Node-RED's topic
//! re-check, topic/QoS/retain resolution, payload serialisation); every
//! other node of a case is flowd's real node. The same cases run end to end
//! against a real broker with the MQTT nodes.

mod conformance_cases;
use conformance_cases::{case_dirs, case_name, end_to_end_only, payload_bytes, read_jsonl};

use bytes::Bytes;
use flowd_engine::node::{BuildContext, BuiltNode, ConfigNode, FunctionNode, NodeCx, NodeType};
use flowd_engine::registry::NodeDescriptor;
use flowd_engine::testing::TestFlow;
use flowd_engine::{Msg, Value};
use flowd_nodes::network::mqtt_message::{
    decode_payload, mqtt_topic_matches, node_red_topic_matches, publication, Datatype,
};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

struct BrokerStandIn;
impl ConfigNode for BrokerStandIn {}

struct BrokerType;
impl NodeType for BrokerType {
    fn type_name(&self) -> &'static str {
        "mqtt-broker"
    }
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("mqtt-broker", "config", "node-red/mqtt", "#d8bfd8", 0, 0)
    }
    fn build(&self, _cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        Some(BuiltNode::config(Arc::new(BrokerStandIn)))
    }
}

/// Receives raw publications (Buffer payload, topic, qos, retain) from the test.
struct MqttIn {
    filter: String,
    qos: u8,
    datatype: Datatype,
}

impl FunctionNode for MqttIn {
    fn on_input(&mut self, raw: Msg, cx: &mut NodeCx<'_>) {
        let topic = raw
            .topic()
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if !node_red_topic_matches(&self.filter, &topic) {
            return;
        }
        let Some(Value::Buffer(bytes)) = raw.payload() else {
            return;
        };
        let pub_qos = raw.get("qos").map(Value::to_number).unwrap_or(0.0) as u8;
        let mut msg = Msg::new();
        msg.insert("topic", Value::str(&topic));
        match decode_payload(self.datatype, bytes) {
            Ok(v) => {
                msg.insert("payload", v);
                msg.insert("qos", Value::Number(f64::from(pub_qos.min(self.qos))));
                msg.insert(
                    "retain",
                    raw.get("retain").cloned().unwrap_or(Value::Bool(false)),
                );
                cx.send(msg);
            }
            Err(e) => {
                msg.insert("payload", Value::Buffer(bytes.clone()));
                cx.error(e, msg);
            }
        }
    }
}

struct MqttInType;
impl NodeType for MqttInType {
    fn type_name(&self) -> &'static str {
        "mqtt in"
    }
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("mqtt in", "network", "node-red/mqtt", "#d8bfd8", 0, 1)
    }
    fn build(&self, cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        let _broker: Arc<BrokerStandIn> = cx.config_node("broker", "mqtt-broker")?;
        let p = cx.props();
        let qos = match p.get("qos").map(|q| Value::from_json(q).to_number()) {
            Some(q) if (0.0..=2.0).contains(&q) => q as u8,
            _ => 2,
        };
        Some(BuiltNode::function(MqttIn {
            filter: p
                .get("topic")
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_string(),
            qos,
            datatype: Datatype::from_property(p.get("datatype").and_then(Json::as_str)),
        }))
    }
}

/// Emits each publication (topic, payload Buffer, qos, retain) on its output so the test sees it.
struct MqttOut {
    topic: String,
    qos: String,
    retain: String,
}

impl FunctionNode for MqttOut {
    fn on_input(&mut self, msg: Msg, cx: &mut NodeCx<'_>) {
        if let Ok(p) = publication(&self.topic, &self.qos, &self.retain, &msg) {
            let mut out = Msg::new();
            out.insert("topic", Value::str(&p.topic));
            out.insert("payload", Value::Buffer(p.payload));
            out.insert("qos", Value::Number(f64::from(p.qos)));
            out.insert("retain", Value::Bool(p.retain));
            cx.send(out);
        }
    }
}

struct MqttOutType;
impl NodeType for MqttOutType {
    fn type_name(&self) -> &'static str {
        "mqtt out"
    }
    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor::new("mqtt out", "network", "node-red/mqtt", "#d8bfd8", 1, 0)
    }
    fn build(&self, cx: &mut BuildContext<'_>) -> Option<BuiltNode> {
        let _broker: Arc<BrokerStandIn> = cx.config_node("broker", "mqtt-broker")?;
        let s = |k: &str| match cx.props().get(k) {
            Some(Json::String(s)) => s.clone(),
            Some(Json::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        Some(BuiltNode::function(MqttOut {
            topic: s("topic"),
            qos: s("qos"),
            retain: s("retain"),
        }))
    }
}

type Published = (Bytes, u8, bool);

async fn run_case(dir: &Path) -> Result<(), String> {
    std::env::set_var("ORACLE_ENV_GREETING", "hello world");
    let flows_text = std::fs::read_to_string(dir.join("flows.json"))
        .map_err(|e| e.to_string())?
        .replace("\"__BROKER_PORT__\"", "\"1883\"");
    let flows: Json = serde_json::from_str(&flows_text).map_err(|e| e.to_string())?;
    let ins: Vec<(String, String)> = flows
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["type"] == "mqtt in")
        .map(|n| {
            (
                n["id"].as_str().unwrap_or("").to_string(),
                n["topic"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let outs: Vec<String> = flows
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["type"] == "mqtt out")
        .map(|n| n["id"].as_str().unwrap_or("").to_string())
        .collect();

    let mut registry = flowd_nodes::registry();
    registry.register(&BrokerType);
    registry.register(&MqttInType);
    registry.register(&MqttOutType);
    let mut f = TestFlow::start(&registry, flows)
        .await
        .map_err(|e| e.to_string())?;

    let inputs = read_jsonl(&dir.join("input.jsonl"));
    // Retained messages published before the start arrive with retain set.
    let (pre, live): (Vec<&Json>, Vec<&Json>) = inputs.iter().partition(|l| l["phase"] == "pre");
    for (line, retained_delivery) in pre
        .iter()
        .map(|l| (*l, true))
        .chain(live.iter().map(|l| (*l, false)))
    {
        if let Some(ms) = line.get("delay_ms").and_then(Json::as_u64) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let topic = line["topic"].as_str().unwrap_or("");
        for (id, filter) in &ins {
            if mqtt_topic_matches(filter, topic) {
                let mut raw = Msg::new();
                raw.insert("topic", Value::str(topic));
                raw.insert("payload", Value::Buffer(payload_bytes(line)));
                raw.insert("qos", Value::Number(line["qos"].as_f64().unwrap_or(0.0)));
                raw.insert("retain", Value::Bool(retained_delivery));
                f.send(id, raw).await;
            }
        }
    }

    let mut got: BTreeMap<String, Vec<Published>> = BTreeMap::new();
    for id in &outs {
        for s in f.collect_from(id, Duration::from_millis(150)).await {
            let topic = s
                .msg
                .topic()
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let Some(Value::Buffer(b)) = s.msg.payload() else {
                continue;
            };
            let qos = s.msg.get("qos").map(Value::to_number).unwrap_or(0.0) as u8;
            let retain = s.msg.get("retain") == Some(&Value::Bool(true));
            got.entry(topic).or_default().push((b.clone(), qos, retain));
        }
    }
    f.stop().await;

    let mut want: BTreeMap<String, Vec<Published>> = BTreeMap::new();
    for line in read_jsonl(&dir.join("expected.jsonl")) {
        want.entry(line["topic"].as_str().unwrap_or("").to_string())
            .or_default()
            .push((
                payload_bytes(&line),
                line["qos"].as_u64().unwrap_or(0) as u8,
                line["retain"].as_bool().unwrap_or(false),
            ));
    }
    if got != want {
        let show = |m: &BTreeMap<String, Vec<Published>>| {
            m.iter()
                .flat_map(|(t, v)| {
                    v.iter().map(move |(p, q, r)| {
                        format!(
                            "  {t} q{q} r{} {:?}",
                            u8::from(*r),
                            String::from_utf8_lossy(p)
                        )
                    })
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        return Err(format!("expected:\n{}\ngot:\n{}", show(&want), show(&got)));
    }
    Ok(())
}

#[tokio::test]
async fn recorded_node_red_cases_give_the_same_output() {
    let (dirs, given) = case_dirs();
    assert!(given >= 12, "fixtures missing");
    let mut failures = Vec::new();
    let mut replayed = 0;
    for dir in &dirs {
        // Cases about the MQTT transport itself (QoS, retained delivery,
        // subscriptions, connection statuses, timing) name why in their
        // case.json; tests/mqtt_conformance.rs replays them through Mosquitto.
        if end_to_end_only(dir).is_some() {
            continue;
        }
        replayed += 1;
        if let Err(e) = run_case(dir).await {
            failures.push(format!("{}:\n{e}", case_name(dir)));
        }
    }
    assert!(replayed >= given, "the given cases all replay in-process");
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        replayed,
        failures.join("\n\n")
    );
}
