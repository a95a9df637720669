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

/// A flow that reads `flow.saved` and `global.g` into a message (printed by
/// a debug node), then stores this message's id and a Buffer in them.
const CONTEXT_FLOW: &str = r#"[
  {"id":"t1","type":"tab","label":"Context"},
  {"id":"in","type":"inject","z":"t1","once":true,"onceDelay":0.1,"props":[{"p":"payload"}],"payload":"","payloadType":"date","wires":[["read"]]},
  {"id":"read","type":"change","z":"t1","rules":[
     {"t":"set","p":"saved","pt":"msg","to":"saved","tot":"flow"},
     {"t":"set","p":"g","pt":"msg","to":"g","tot":"global"}],"wires":[["show","write"]]},
  {"id":"show","type":"debug","z":"t1","name":"ctx","active":true,"complete":"true","tosidebar":true,"wires":[]},
  {"id":"write","type":"change","z":"t1","rules":[
     {"t":"set","p":"saved","pt":"flow","to":"_msgid","tot":"msg"},
     {"t":"set","p":"g.buf","pt":"global","to":"[1,2,255]","tot":"bin"},
     {"t":"set","p":"g.n","pt":"global","to":"42","tot":"num"}],"wires":[]}
]"#;

/// Runs the context flow once in `dir` (extra env vars), returns the
/// message the debug node printed and the process output after a SIGINT;
/// `before_stop` runs while flowd is still up.
fn run_context_flow(
    dir: &std::path::Path,
    env: &[(&str, &str)],
    before_stop: impl FnOnce(),
) -> (Json, Output) {
    let flows = dir.join("flows.json");
    std::fs::write(&flows, CONTEXT_FLOW).unwrap();
    let mut cmd = flowd();
    cmd.arg("run")
        .arg(&flows)
        .arg("--user-dir")
        .arg(dir)
        .env_remove("FLOWD_CONTEXT_STORAGE")
        .env_remove("FLOWD_CONTEXT_FLUSH_INTERVAL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(15));
    if line.is_ok() {
        before_stop();
    }
    signal(&child, "INT");
    let out = wait_with_limit(child, Duration::from_secs(15));
    let line = line.unwrap_or_else(|_| {
        panic!(
            "no debug output; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let msg = serde_json::from_str::<Json>(&line).unwrap()["msg"].clone();
    (msg, out)
}

fn wait_for_file(path: &std::path::Path, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} was not written within {limit:?}", path.display());
}

#[test]
fn file_context_survives_a_restart() {
    let dir = tempdir();
    std::fs::write(
        dir.join("flowd.toml"),
        "[context]\nstorage = \"file\"\nflush_interval = 1\n",
    )
    .unwrap();
    let flow_file = dir.join("context/t1/flow.json");
    // First run: nothing stored yet; the periodic flush writes the context
    // while flowd runs.
    let (first, out) = run_context_flow(&dir, &[], || {
        wait_for_file(&flow_file, Duration::from_secs(10));
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(first.get("saved"), None, "{first}");
    assert_eq!(first.get("g"), None, "{first}");
    let id1 = first["_msgid"].as_str().unwrap().to_string();
    let stored: Json = serde_json::from_str(&std::fs::read_to_string(&flow_file).unwrap()).unwrap();
    assert_eq!(stored["saved"], id1.as_str());

    // Second run, flush interval an hour (from the environment): what it
    // reads is the first run's; what it writes reaches the disk on stop.
    let (second, out) = run_context_flow(&dir, &[("FLOWD_CONTEXT_FLUSH_INTERVAL", "3600")], || {});
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(second["saved"], id1.as_str(), "{second}");
    // As in Node-RED, a Buffer comes back from the file as its JSON form.
    assert_eq!(
        second["g"],
        serde_json::json!({"buf": {"type": "Buffer", "data": [1, 2, 255]}, "n": 42})
    );
    let id2 = second["_msgid"].as_str().unwrap();
    assert_ne!(id1, id2);
    let stored: Json = serde_json::from_str(&std::fs::read_to_string(&flow_file).unwrap()).unwrap();
    assert_eq!(stored["saved"], id2, "written on a clean stop");
    let global = std::fs::read_to_string(dir.join("context/global/global.json")).unwrap();
    assert!(global.contains("\"n\": 42"), "{global}");

    // Memory storage (flag beats file): nothing read from disk.
    let (third, out) = run_context_flow(&dir, &[("FLOWD_CONTEXT_STORAGE", "memory")], || {});
    assert!(out.status.success());
    assert_eq!(third.get("saved"), None, "{third}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_corrupt_context_file_stops_the_start_naming_it() {
    let dir = tempdir();
    std::fs::create_dir_all(dir.join("context/t1")).unwrap();
    std::fs::write(dir.join("context/t1/flow.json"), "{\"saved\": ").unwrap();
    std::fs::write(dir.join("flows.json"), CONTEXT_FLOW).unwrap();
    let out = output(
        flowd()
            .arg("run")
            .arg(dir.join("flows.json"))
            .arg("--user-dir")
            .arg(&dir)
            .args(["--context-storage", "file"]),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&*dir.join("context/t1/flow.json").to_string_lossy())
            && err.contains("invalid JSON"),
        "{err}"
    );
    assert!(
        !err.contains("Started flows") && !err.contains("panicked"),
        "{err}"
    );
    // File context needs a user directory.
    let out = output(
        flowd()
            .arg("run")
            .arg(dir.join("flows.json"))
            .env_remove("FLOWD_USER_DIR")
            .args(["--context-storage", "file"]),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a user directory"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_log_level_setting_is_applied() {
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let mut cmd = flowd();
        cmd.arg("run")
            .arg(repo_file("flows/temperature-demo.json"))
            .args(args)
            .env_remove("FLOWD_LOG")
            .env_remove("FLOWD_LOG_LEVEL")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        // Running once the first debug line is out (the first reading comes at 0.5 s).
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(!first.is_empty(), "no debug output");
        signal(&child, "INT");
        let out = wait_with_limit(child, Duration::from_secs(15));
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let info = run(&[], &[]);
    assert!(info.contains("Stopped flows."), "{info}");
    let quiet = run(&[("FLOWD_LOG_LEVEL", "warn")], &[]);
    assert!(!quiet.contains("Stopped flows."), "{quiet}");
    let err = run(&[("FLOWD_LOG_LEVEL", "off")], &["--log-level", "info"]);
    assert!(err.contains("Stopped flows."), "the flag wins: {err}");
    let dir = tempdir();
    std::fs::write(dir.join("flowd.toml"), "[log]\nlevel = \"error\"\n").unwrap();
    let from_file = run(&[], &["--user-dir", dir.to_str().unwrap()]);
    assert!(!from_file.contains("Stopped flows."), "{from_file}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The fenced block of `lang` that follows `heading` in the README.
fn readme_block(heading: &str, lang: &str) -> String {
    let readme = std::fs::read_to_string(repo_file("README.md")).unwrap();
    let section = &readme[readme.find(heading).expect("heading")..];
    let start = section.find(&format!("```{lang}\n")).expect("block") + lang.len() + 4;
    let len = section[start..].find("```").expect("block end");
    section[start..start + len].to_string()
}

#[test]
fn the_readme_scaling_out_flow_validates() {
    let dir = tempdir();
    let path = dir.join("alerting.json");
    std::fs::write(&path, readme_block("## Scaling out", "json")).unwrap();
    let out = output(
        flowd()
            .arg("validate")
            .arg(&path)
            .env("MQTT_HOST", "emqx.internal"),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    assert!(out.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn version_and_help_on_every_command() {
    let out = output(flowd().arg("--version"));
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("flowd {}\n", env!("CARGO_PKG_VERSION"))
    );
    let help = output(flowd().arg("--help"));
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for needle in [
        "run",
        "validate",
        "deploy",
        "broker",
        "FLOWD_CONTEXT_STORAGE",
        "--log-level",
    ] {
        assert!(text.contains(needle), "--help lacks {needle}:\n{text}");
    }
    for (cmd, needle) in [
        ("run", "--context-storage"),
        ("validate", "FLOWS"),
        ("deploy", "--token"),
        ("broker", "--password-file"),
    ] {
        let out = output(flowd().args([cmd, "--help"]));
        assert!(out.status.success(), "{cmd} --help");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(needle),
            "{cmd} --help lacks {needle}:\n{text}"
        );
    }
}
