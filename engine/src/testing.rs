//! An in-process harness for flow tests, like Node-RED's node-test-helper:
//! load a flow set, send a message into any node, await what each node sends,
//! and inspect debug output, logs and status, all with timeouts.
//!
//! ```text
//! let mut flow = TestFlow::start(&registry, json!([...])).await?;
//! flow.send("json1", Msg::with_payload("{\"a\":1}")).await;
//! let out = flow.next_from("json1").await;
//! assert_eq!(out.msg.payload().unwrap().to_json(), "{\"a\":1}");
//! ```

use crate::build::prepare_json;
use crate::deploy::{DeployType, Diff};
use crate::msg::Msg;
use crate::node::{NodeInfo, Status};
use crate::observer::{debug_line, DebugEvent, LogLevel, RuntimeObserver};
use crate::registry::Registry;
use crate::runtime::{DeployError, Runtime, RuntimeOptions};
use crate::validation::ValidationErrors;
use crate::value::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// How long `next_from` waits by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(3);

/// A message a node sent.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Sending node id.
    pub node: String,
    /// Output port.
    pub port: usize,
    /// The message.
    pub msg: Msg,
}

/// A log line a node wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// Node id.
    pub node: String,
    /// Level.
    pub level: LogLevel,
    /// Text.
    pub text: String,
}

/// Records what the runtime reports.
#[derive(Default)]
pub struct RecordingObserver {
    debug: Mutex<Vec<(String, Option<Value>)>>,
    logs: Mutex<Vec<LogLine>>,
    statuses: Mutex<Vec<(String, Status)>>,
    changed: Notify,
}

impl RecordingObserver {
    /// Debug lines so far (as `flowd run` prints them) with the shown value.
    pub fn debug(&self) -> Vec<(String, Option<Value>)> {
        self.debug.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Log lines so far.
    pub fn logs(&self) -> Vec<LogLine> {
        self.logs.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Status updates so far.
    pub fn statuses(&self) -> Vec<(String, Status)> {
        self.statuses.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Waits until `pred` holds for this observer, or panics after `within`.
    pub async fn wait_until(
        &self,
        within: Duration,
        what: &str,
        pred: impl Fn(&RecordingObserver) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.changed.notified();
            if pred(self) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                assert!(pred(self), "timed out after {within:?} waiting for {what}");
                return;
            }
        }
    }
}

impl RuntimeObserver for RecordingObserver {
    fn debug(&self, e: &DebugEvent<'_>) {
        if let Ok(mut d) = self.debug.lock() {
            d.push((debug_line(e), e.value.cloned()));
        }
        self.changed.notify_waiters();
    }

    fn log(&self, node: &NodeInfo, level: LogLevel, text: &str) {
        if let Ok(mut l) = self.logs.lock() {
            l.push(LogLine {
                node: node.id.to_string(),
                level,
                text: text.to_string(),
            });
        }
        self.changed.notify_waiters();
    }

    fn status(&self, node: &NodeInfo, status: &Status) {
        if let Ok(mut s) = self.statuses.lock() {
            s.push((node.id.to_string(), status.clone()));
        }
        self.changed.notify_waiters();
    }
}

/// A running flow set under test.
pub struct TestFlow {
    runtime: Option<Runtime>,
    sent: mpsc::UnboundedReceiver<Sent>,
    backlog: Vec<Sent>,
    /// What the runtime reported.
    pub observer: Arc<RecordingObserver>,
}

impl TestFlow {
    /// Validates and starts `flows` (a flows.json document).
    pub async fn start(
        registry: &Registry,
        flows: serde_json::Value,
    ) -> Result<TestFlow, ValidationErrors> {
        let prepared = prepare_json(registry, flows)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let observer = Arc::new(RecordingObserver::default());
        let options = RuntimeOptions {
            observer: observer.clone(),
            tap: Some(Arc::new(move |info: &NodeInfo, port: usize, msg: &Msg| {
                let _ = tx.send(Sent {
                    node: info.id.to_string(),
                    port,
                    msg: msg.clone(),
                });
            })),
        };
        Ok(TestFlow {
            runtime: Some(Runtime::start(prepared, options)),
            sent: rx,
            backlog: Vec::new(),
            observer,
        })
    }

    /// Sends `msg` into node `id`'s input.
    pub async fn send(&self, id: &str, msg: Msg) {
        if let Some(rt) = &self.runtime {
            rt.deliver(id, msg)
                .await
                .unwrap_or_else(|e| panic!("cannot send to {id}: {e}"));
        }
    }

    /// Sends a message with `payload` (and optional topic) into node `id`.
    pub async fn send_payload(&self, id: &str, payload: impl Into<Value>) {
        self.send(id, Msg::with_payload(payload)).await;
    }

    /// The next message node `id` sends (any port), waiting up to `within`.
    pub async fn next_from_within(&mut self, id: &str, within: Duration) -> Option<Sent> {
        if let Some(pos) = self.backlog.iter().position(|s| s.node == id) {
            return Some(self.backlog.remove(pos));
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.sent.recv()).await {
                Ok(Some(s)) if s.node == id => return Some(s),
                Ok(Some(s)) => self.backlog.push(s),
                _ => return None,
            }
        }
    }

    /// The next message node `id` sends; panics after [`DEFAULT_WAIT`].
    pub async fn next_from(&mut self, id: &str) -> Sent {
        match self.next_from_within(id, DEFAULT_WAIT).await {
            Some(s) => s,
            None => panic!("node {id} sent nothing within {DEFAULT_WAIT:?}"),
        }
    }

    /// Asserts node `id` sends nothing within `within`.
    pub async fn expect_nothing_from(&mut self, id: &str, within: Duration) {
        if let Some(s) = self.next_from_within(id, within).await {
            panic!(
                "node {id} unexpectedly sent {} on port {}",
                s.msg.to_json(),
                s.port
            );
        }
    }

    /// Every message node `id` sends within `within`.
    pub async fn collect_from(&mut self, id: &str, within: Duration) -> Vec<Sent> {
        let deadline = tokio::time::Instant::now() + within;
        let mut out = Vec::new();
        while let Some(s) = self
            .next_from_within(
                id,
                deadline.saturating_duration_since(tokio::time::Instant::now()),
            )
            .await
        {
            out.push(s);
        }
        out
    }

    /// Deploys `flows` live with deployment type `kind` (see [`Runtime::deploy`]).
    pub async fn deploy(
        &self,
        registry: &Registry,
        flows: serde_json::Value,
        kind: DeployType,
    ) -> Result<Diff, DeployError> {
        let (set, errors) = crate::flows::from_json(flows);
        match &self.runtime {
            Some(rt) => rt.deploy(registry, set, errors, kind).await,
            None => Err(DeployError::Stopped),
        }
    }

    /// Stops the runtime gracefully.
    pub async fn stop(mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.stop(Duration::from_secs(5)).await;
        }
    }
}
