//! The flow and the readings shared by the seed-chain benchmarks.

use flowd_engine::Value;
use serde_json::json;

/// Distinct sensors (topics).
const SENSORS: usize = 100;

pub fn flows() -> serde_json::Value {
    json!([
        {"id":"t","type":"tab","label":"bench"},
        {"id":"json","type":"json","z":"t","property":"payload","action":"","pretty":false,"x":1,"y":1,"wires":[["rbe"]]},
        {"id":"rbe","type":"rbe","z":"t","func":"rbe","gap":"","start":"","inout":"out","septopics":true,
         "property":"payload.temperature","topi":"topic","x":1,"y":1,"wires":[["tpl"]]},
        {"id":"tpl","type":"template","z":"t","field":"payload","fieldType":"msg","syntax":"mustache","output":"str",
         "template":"Temperature on {{{topic}}} changed to {{payload.temperature}} °C","x":1,"y":1,"wires":[["sink"]]},
        {"id":"sink","type":"junction","z":"t","x":1,"y":1,"wires":[]}
    ])
}

/// Readings for `SENSORS` topics; each sensor alternates its temperature every
/// second reading, so half of all readings change.
pub fn readings() -> Vec<(Value, Value)> {
    let mut out = Vec::new();
    for round in 0..8u64 {
        for s in 0..SENSORS {
            let temperature = 20.0 + (round / 2) as f64 * 0.5 + s as f64 * 0.01;
            let text = format!(
                "{{\"temperature\":{temperature},\"humidity\":40,\"ts\":{}}}",
                1_764_000_000_000_000_000u64 + round * 1000 + s as u64
            );
            out.push((
                Value::string(format!("sensors/{s}/reading")),
                Value::string(text),
            ));
        }
    }
    out
}
