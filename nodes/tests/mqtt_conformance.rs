//! The recorded Node-RED cases (tests/conformance) end to end: each
//! case's flows run with the real mqtt nodes against a private Mosquitto;
//! the input is published about 30 ms apart once the flow has subscribed,
//! and what the flow publishes under `out/` (seen by an MQTT 5 subscriber
//! with retain-as-published) must equal Node-RED's recording per topic:
//! topic, payload bytes, QoS and retain flag, in order.

mod conformance_cases;
use conformance_cases::{case_dirs, case_name, payload_bytes, read_jsonl};

mod mqtt_support;

use bytes::Bytes;
use flowd_engine::testing::TestFlow;
use mqtt_support::{wait_connected, Mosquitto, Observer, Publisher, Seen};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Time between two input publications.
const INPUT_GAP: Duration = Duration::from_millis(30);
/// Time for the subscriptions to reach the broker after the connected status.
const SETTLE: Duration = Duration::from_millis(300);
/// Output is complete once nothing arrived for this long (after the expected count).
const QUIET: Duration = Duration::from_millis(400);

type PerTopic = BTreeMap<String, Vec<(Bytes, u8, bool)>>;

fn by_topic(seen: impl IntoIterator<Item = Seen>) -> PerTopic {
    let mut m = PerTopic::new();
    for s in seen {
        m.entry(s.topic)
            .or_default()
            .push((s.payload, s.qos, s.retain));
    }
    m
}

fn show(m: &PerTopic) -> String {
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
}

async fn run_case(dir: &Path) -> Result<(), String> {
    let broker = Mosquitto::start();
    let case: Json = std::fs::read_to_string(dir.join("case.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Json::Null);
    let quiet = case
        .get("quiet_ms")
        .and_then(Json::as_u64)
        .map_or(QUIET, Duration::from_millis);
    let flows_text = std::fs::read_to_string(dir.join("flows.json"))
        .map_err(|e| e.to_string())?
        .replace("\"__BROKER_PORT__\"", &format!("\"{}\"", broker.port));
    let flows: Json = serde_json::from_str(&flows_text).map_err(|e| e.to_string())?;
    let ins: Vec<String> = flows
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["type"] == "mqtt in")
        .filter_map(|n| n["id"].as_str().map(str::to_string))
        .collect();

    let inputs = read_jsonl(&dir.join("input.jsonl"));
    let (pre, live): (Vec<&Json>, Vec<&Json>) = inputs.iter().partition(|l| l["phase"] == "pre");
    let publisher = Publisher::connect(broker.port).await;
    let publish = |line: &Json| {
        let topic = line["topic"].as_str().unwrap_or("").to_string();
        let payload = payload_bytes(line).to_vec();
        let qos = line["qos"].as_u64().unwrap_or(0) as u8;
        let retain = line["retain"].as_bool().unwrap_or(false);
        let p = &publisher;
        async move { p.publish(&topic, payload, qos, retain).await }
    };
    for line in &pre {
        publish(line).await;
    }
    let mut observer = Observer::subscribe(broker.port, "out/#").await;

    let f = TestFlow::start(&flowd_nodes::registry(), flows)
        .await
        .map_err(|e| e.to_string())?;
    for id in &ins {
        wait_connected(&f, id).await;
    }
    tokio::time::sleep(SETTLE).await;
    for line in &live {
        if let Some(ms) = line.get("delay_ms").and_then(Json::as_u64) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        publish(line).await;
        tokio::time::sleep(INPUT_GAP).await;
    }

    let expected = read_jsonl(&dir.join("expected.jsonl"));
    let want = by_topic(expected.iter().map(|l| Seen {
        topic: l["topic"].as_str().unwrap_or("").to_string(),
        payload: payload_bytes(l),
        qos: l["qos"].as_u64().unwrap_or(0) as u8,
        retain: l["retain"].as_bool().unwrap_or(false),
    }));
    let mut seen = Vec::new();
    let limit = expected.len() + 50;
    while seen.len() < limit {
        let wait = if seen.len() < expected.len() {
            mqtt_support::WAIT
        } else {
            quiet
        };
        match observer.next_within(wait).await {
            Some(s) => seen.push(s),
            None => break,
        }
    }
    // What the flow publishes while it stops (close messages) counts too,
    // as in the recording, which ends after Node-RED stopped.
    f.stop().await;
    while seen.len() < limit {
        match observer.next_within(quiet).await {
            Some(s) => seen.push(s),
            None => break,
        }
    }
    let got = by_topic(seen);
    if got != want {
        return Err(format!("expected:\n{}\ngot:\n{}", show(&want), show(&got)));
    }
    Ok(())
}

/// Cases run at once, each with its own Mosquitto.
const PARALLEL_CASES: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_node_red_cases_against_mosquitto() {
    let (dirs, given) = case_dirs();
    assert!(given >= 12, "fixtures missing");
    // Set once, before any case runs: the cases read it through `env` values.
    std::env::set_var("ORACLE_ENV_GREETING", "hello world");
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(PARALLEL_CASES));
    let mut runs = tokio::task::JoinSet::new();
    let total = dirs.len();
    for dir in dirs {
        let slots = slots.clone();
        runs.spawn(async move {
            let _slot = slots.acquire_owned().await.expect("never closed");
            let result = run_case(&dir).await;
            result.map_err(|e| format!("{}:\n{e}", case_name(&dir)))
        });
    }
    let mut failures = Vec::new();
    while let Some(done) = runs.join_next().await {
        if let Err(e) = done.expect("a case panicked") {
            failures.push(e);
        }
    }
    failures.sort();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        total,
        failures.join("\n\n")
    );
}
