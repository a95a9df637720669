//! End-to-end tests of the `flowd` binary: `validate` and `run`.

use serde_json::Value as Json;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn flowd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flowd"))
}

fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn output(cmd: &mut Command) -> Output {
    cmd.output().expect("flowd runs")
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([format!("-{sig}"), child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Waits for the child to exit, killing it after `limit`.
fn wait_with_limit(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("flowd did not exit within {limit:?}");
}

#[test]
fn validate_accepts_the_demo() {
    let out = output(
        flowd()
            .arg("validate")
            .arg(repo_file("flows/temperature-demo.json")),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    assert!(out.status.success());
}

#[test]
fn validate_lists_every_fault_and_exits_2() {
    let out = output(
        flowd()
            .arg("validate")
            .arg(repo_file("tests/fixtures/many-faults.json")),
    );
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let expect = [
        "node \"rbe1\" (debug), field \"id\": duplicate node id",
        "node \"sw1\" (switch) on tab \"Broken flow\", field \"wires\": output 1 is wired to missing node \"ghost\"",
        "node \"mystery1\" (function-of-doom) on tab \"Broken flow\", field \"type\": unknown node type \"function-of-doom\"",
        "node \"sw1\" (switch) on tab \"Broken flow\", field \"rules[0].v\"",
        "node \"tpl1\" (template) on tab \"Broken flow\", field \"template\": the template does not parse",
        "node \"rbe1\" (rbe) on tab \"Broken flow\", field \"gap\": \"lots\" is not a non-negative number or percentage",
    ];
    for e in expect {
        assert!(
            lines.iter().any(|l| l.starts_with(e)),
            "missing {e:?} in:\n{text}"
        );
    }
    assert_eq!(lines.len(), expect.len(), "{text}");
}

#[test]
fn invalid_json_names_line_and_column() {
    let dir = tempdir();
    let path = dir.join("bad.json");
    std::fs::write(
        &path,
        "[\n  {\"id\": \"a\", \"type\": \"tab\"},\n  {\"id\": }\n]\n",
    )
    .unwrap();
    let out = output(flowd().arg("validate").arg(&path));
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("invalid JSON at line 3 column"), "{text}");
}

#[test]
fn run_with_an_invalid_file_starts_nothing() {
    let out = output(
        flowd()
            .arg("run")
            .arg(repo_file("tests/fixtures/many-faults.json")),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("6 error(s); nothing started"), "{err}");
    assert!(
        err.contains("unknown node type \"function-of-doom\""),
        "{err}"
    );
    assert!(!err.contains("Started flows"), "{err}");
}

#[test]
fn missing_file_is_a_clear_error() {
    let out = output(flowd().args(["validate", "/nonexistent/flows.json"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/flows.json"));
}

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "flowd-cli-{}-{}",
        std::process::id(),
        fastrand_u64()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn fastrand_u64() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Runs the demo until a few alerts came, then interrupts it.
fn run_demo(sig: &str, quiet: bool) -> (Output, Vec<Json>) {
    let mut cmd = flowd();
    cmd.arg("run").arg(repo_file("flows/temperature-demo.json"));
    if quiet {
        cmd.arg("--quiet");
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(if quiet { 3 } else { 15 });
    // Readings arrive at 0.5, 1.0, 1.5 and 2.5 s; wait for at least 6 lines.
    while Instant::now() < deadline && lines.len() < 6 {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            lines.push(
                serde_json::from_str::<Json>(&l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")),
            );
        }
    }
    signal(&child, sig);
    let out = wait_with_limit(child, Duration::from_secs(10));
    while let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
        lines.push(serde_json::from_str(&l).unwrap());
    }
    (out, lines)
}

#[test]
fn demo_prints_one_alert_per_temperature_change_and_stops_on_sigint() {
    let (out, lines) = run_demo("INT", false);
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(lines.len() >= 6, "{lines:?}");
    // Expected alerts: one per change of temperature per topic, in order.
    let mut last: std::collections::HashMap<String, Json> = Default::default();
    let mut expected = Vec::new();
    let mut alerts = Vec::new();
    for l in &lines {
        let topic = l["topic"].as_str().unwrap().to_string();
        match l["name"].as_str() {
            Some("reading") => {
                let t = l["msg"]["temperature"].clone();
                if last.get(&topic) != Some(&t) {
                    expected.push(format!("Temperature on {topic} changed to {t} °C"));
                    last.insert(topic, t);
                }
            }
            Some("alert") => alerts.push(l["msg"].as_str().unwrap().to_string()),
            other => panic!("unexpected debug node {other:?}"),
        }
    }
    assert_eq!(alerts, expected);
    assert!(alerts.len() >= 3, "{alerts:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Stopped flows."), "{err}");
}

#[test]
fn sigterm_stops_gracefully_and_quiet_prints_nothing() {
    let (out, lines) = run_demo("TERM", true);
    assert!(out.status.success(), "exit {:?}", out.status);
    assert!(lines.is_empty(), "{lines:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Stopped flows."));
}
