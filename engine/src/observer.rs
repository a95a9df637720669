//! [`RuntimeObserver`]: where the runtime reports what users watch: debug
//! messages, node warnings and errors, node status. The web editor forwards
//! them to the browser; headless `flowd run` writes debug messages as JSON
//! lines on stdout ([`StdoutObserver`]).

use crate::node::{NodeInfo, Status};
use crate::value::json::write_string;
use crate::value::{json, Value};
use std::io::Write;
use std::sync::Mutex;

/// A message shown by a debug node.
pub struct DebugEvent<'a> {
    /// The debug node.
    pub node: &'a NodeInfo,
    /// `msg.topic`, if any.
    pub topic: Option<&'a Value>,
    /// The property shown (`payload`), None when the whole message is shown.
    pub property: Option<&'a str>,
    /// The value shown (None = undefined).
    pub value: Option<&'a Value>,
}

/// Severity of a node log event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Error (Node-RED level 20).
    Error,
    /// Warning (Node-RED level 30).
    Warn,
    /// Information (Node-RED level 40).
    Info,
}

/// Receives what the runtime reports. Called on the executor task: must not block.
pub trait RuntimeObserver: Send + Sync + 'static {
    /// A debug node showed a message.
    fn debug(&self, _event: &DebugEvent<'_>) {}
    /// A node logged a warning or an error (errors only when no catch node took them).
    fn log(&self, _node: &NodeInfo, _level: LogLevel, _text: &str) {}
    /// A node changed its status.
    fn status(&self, _node: &NodeInfo, _status: &Status) {}
    /// The executor has no more work queued (a good moment to flush output).
    fn idle(&self) {}
}

/// Reports nothing (besides the tracing log the runtime always writes).
pub struct NullObserver;

impl RuntimeObserver for NullObserver {}

/// Writes one JSON line per debug message on stdout:
/// `{"id","z","name","topic","property","msg"}` where `msg` is the value as
/// JSON (Buffers as `{"type":"Buffer","data":[..]}`; undefined omitted).
pub struct StdoutObserver {
    out: Mutex<std::io::BufWriter<std::io::Stdout>>,
}

impl Default for StdoutObserver {
    fn default() -> Self {
        StdoutObserver {
            out: Mutex::new(std::io::BufWriter::new(std::io::stdout())),
        }
    }
}

/// The JSON line [`StdoutObserver`] writes for a debug event.
pub fn debug_line(e: &DebugEvent<'_>) -> String {
    let mut s = String::with_capacity(128);
    s.push_str("{\"id\":");
    write_string(&mut s, &e.node.id);
    if let Some(z) = &e.node.z {
        s.push_str(",\"z\":");
        write_string(&mut s, z);
    }
    if let Some(n) = &e.node.name {
        s.push_str(",\"name\":");
        write_string(&mut s, n);
    }
    if let Some(t) = e.topic {
        s.push_str(",\"topic\":");
        json::write_compact(&mut s, t);
    }
    if let Some(p) = e.property {
        s.push_str(",\"property\":");
        write_string(&mut s, p);
    }
    if let Some(v) = e.value {
        s.push_str(",\"msg\":");
        json::write_compact(&mut s, v);
    }
    s.push('}');
    s
}

impl RuntimeObserver for StdoutObserver {
    fn debug(&self, event: &DebugEvent<'_>) {
        let line = debug_line(event);
        if let Ok(mut out) = self.out.lock() {
            let _ = out.write_all(line.as_bytes());
            let _ = out.write_all(b"\n");
        }
    }

    fn idle(&self) {
        if let Ok(mut out) = self.out.lock() {
            let _ = out.flush();
        }
    }
}
