//! Reading the recorded Node-RED cases (tests/conformance/cases), shared by
//! the in-process replay and the end-to-end run against Mosquitto.

use base64::Engine;
use bytes::Bytes;
use serde_json::Value as Json;
use std::path::{Path, PathBuf};

/// The folder holding one folder per case.
pub fn cases_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/cases")
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
