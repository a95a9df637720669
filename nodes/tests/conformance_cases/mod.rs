//! Reading the recorded Node-RED cases, shared by the in-process replay and
//! the end-to-end run against Mosquitto: the twelve given cases
//! (tests/conformance/cases) and the ones we recorded ourselves from a real
//! Node-RED with `scripts/record_node_red_case.py` (tests/conformance/recorded).

use base64::Engine;
use bytes::Bytes;
use serde_json::Value as Json;
use std::path::{Path, PathBuf};

/// Every case folder (one holding a `flows.json`), sorted, with the number
/// of given cases among them.
pub fn case_dirs() -> (Vec<PathBuf>, usize) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let list = |sub: &str| {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join(sub))
            .unwrap_or_else(|e| panic!("tests/conformance/{sub}: {e}"))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("flows.json").exists())
            .collect();
        dirs.sort();
        dirs
    };
    let given = list("cases");
    let count = given.len();
    let mut all = given;
    all.extend(list("recorded"));
    (all, count)
}

/// A case's name for failure reports: `cases/NAME` or `recorded/NAME`.
pub fn case_name(dir: &Path) -> String {
    let part = |p: Option<&Path>| {
        p.and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    format!("{}/{}", part(dir.parent()), part(Some(dir)))
}

/// The lines of a `.jsonl` file (none when it is absent).
pub fn read_jsonl(path: &Path) -> Vec<Json> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

/// The payload of an input or expected line (`payload` text or `payload_b64`).
pub fn payload_bytes(line: &Json) -> Bytes {
    if let Some(b64) = line.get("payload_b64").and_then(Json::as_str) {
        return Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .expect("base64"),
        );
    }
    Bytes::copy_from_slice(
        line.get("payload")
            .and_then(Json::as_str)
            .unwrap_or("")
            .as_bytes(),
    )
}

/// Why a case only replays end to end (`"end_to_end_only": "reason"` in its
/// case.json): it is about the MQTT transport, which the in-process replay
/// stands in for.
#[allow(dead_code)] // read by the in-process replay only
pub fn end_to_end_only(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("case.json")).ok()?;
    let case: Json = serde_json::from_str(&text).ok()?;
    case.get("end_to_end_only")?.as_str().map(str::to_string)
}
