//! End-to-end tests of `flowd` (broker + admin API + runtime), `flowd deploy`
//! and `flowd broker`, with Mosquitto's command-line clients as the outside
//! world.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn flowd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flowd"))
}

fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tempdir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let d = std::env::temp_dir().join(format!("flowd-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Kills the child when dropped (a failing test leaves nothing behind).
struct Running(Option<Child>);
impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
impl Running {
    fn stop(mut self, sig: &str) -> Output {
        let child = self.0.take().unwrap();
        Command::new("kill")
            .args([format!("-{sig}"), child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut child = child;
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                return child.wait_with_output().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        panic!("flowd did not stop within 20 s");
    }
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {port}");
}

/// Subscribes with mosquitto_sub and returns the first `count` messages ("topic payload").
fn subscribe(port: u16, topic: &str, count: usize) -> Vec<String> {
    let mut sub = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            topic,
            "-v",
            "-C",
            &count.to_string(),
            "-W",
            "15",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub (installed by scripts/test.sh)");
    let out = BufReader::new(sub.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .collect();
    let _ = sub.wait();
    out
}

#[test]
fn flowd_runs_the_demo_on_its_broker_and_takes_deploys() {
    let (http, mqtt) = (free_port(), free_port());
    let dir = tempdir("server");
    let child = flowd()
        .args([
            "--user-dir",
            dir.to_str().unwrap(),
            "--http",
            &format!("127.0.0.1:{http}"),
            "--mqtt",
            &format!("127.0.0.1:{mqtt}"),
        ])
        .env_remove("FLOWD_MQTT_PORT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let running = Running(Some(child));
    wait_for_port(mqtt);
    wait_for_port(http);
    // The demo's simulated sensors produce alerts on the embedded broker.
    let alerts = subscribe(mqtt, "alerts/temperature", 2);
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert!(
        alerts
            .iter()
            .all(|a| a.starts_with("alerts/temperature Temperature on sensors/")),
        "{alerts:?}"
    );
    assert!(
        dir.join("flows.json").exists(),
        "the demo was written to the user directory"
    );

    let url = format!("http://127.0.0.1:{http}");
    let ok = flowd()
        .args([
            "deploy",
            repo_file("flows/demo.json").to_str().unwrap(),
            "--url",
            &url,
            "--type",
            "nodes",
        ])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let refused = flowd()
        .args([
            "deploy",
            repo_file("tests/fixtures/many-faults.json")
                .to_str()
                .unwrap(),
            "--url",
            &url,
        ])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("unknown node type \"function-of-doom\""),
        "{err}"
    );
    let unreachable = flowd()
        .args([
            "deploy",
            repo_file("flows/demo.json").to_str().unwrap(),
            "--url",
            &format!("http://127.0.0.1:{}", free_port()),
        ])
        .output()
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("cannot connect"));

    // Still alerting after the deploys.
    assert_eq!(subscribe(mqtt, "alerts/temperature", 1).len(), 1);
    let out = running.stop("TERM");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn flowd_broker_alone_relays_messages() {
    let port = free_port();
    let child = flowd()
        .args(["broker", "--mqtt", &format!("127.0.0.1:{port}")])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let running = Running(Some(child));
    wait_for_port(port);
    let sub = std::thread::spawn(move || subscribe(port, "t/#", 1));
    std::thread::sleep(Duration::from_millis(500));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sub.is_finished() && Instant::now() < deadline {
        let _ = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-t",
                "t/1",
                "-m",
                "hello",
            ])
            .status();
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(sub.join().unwrap(), ["t/1 hello"]);
    let out = running.stop("INT");
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("New client connected from 127.0.0.1:"),
        "{log}"
    );
}

#[test]
fn settings_come_from_flowd_toml_and_bad_ones_stop_the_start() {
    let dir = tempdir("settings");
    std::fs::write(
        dir.join("flowd.toml"),
        "[broker]\nmax_keepalive = \"soon\"\n",
    )
    .unwrap();
    let out = flowd()
        .args(["--user-dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_keepalive"), "{err}");

    std::fs::write(dir.join("flowd.toml"), "[http]\naddr = \"localhost\"\n").unwrap();
    let out = flowd()
        .args(["--user-dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid setting http.addr"));

    let (http, mqtt) = (free_port(), free_port());
    std::fs::write(
        dir.join("flowd.toml"),
        format!("[http]\naddr = \"127.0.0.1:{http}\"\n[broker]\naddr = \"127.0.0.1:{mqtt}\"\npersistence = false\n"),
    )
    .unwrap();
    let child = flowd()
        .args(["--user-dir", dir.to_str().unwrap()])
        .env_remove("FLOWD_HTTP")
        .env_remove("FLOWD_MQTT")
        .env_remove("FLOWD_MQTT_PORT")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running(Some(child));
    wait_for_port(http);
    wait_for_port(mqtt);
    assert!(
        !dir.join("broker").exists(),
        "persistence = false keeps no broker state"
    );
    assert!(running.stop("INT").status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_admin_api_stays_on_loopback_unless_insecure() {
    let dir = tempdir("insecure");
    let out = flowd()
        .args([
            "--user-dir",
            dir.to_str().unwrap(),
            "--http",
            "0.0.0.0:0",
            "--no-broker",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("without authentication"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn with_admin_users_the_api_needs_a_login() {
    let dir = tempdir("auth");
    let http = free_port();
    // bcrypt of "s3cret" (cost 4).
    let hash = "$2b$04$BYyoMepRzYLJh7pLrvE2UuiX1QkF.2q0rAoFfY43dWwb9g1juX96a";
    std::fs::write(
        dir.join("flowd.toml"),
        format!("[admin]\nusers = [{{ username = \"admin\", password = \"{hash}\" }}]\n"),
    )
    .unwrap();
    let child = flowd()
        .args([
            "--user-dir",
            dir.to_str().unwrap(),
            "--http",
            &format!("127.0.0.1:{http}"),
            "--no-broker",
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running(Some(child));
    wait_for_port(http);
    let url = format!("http://127.0.0.1:{http}");
    let refused = flowd()
        .args([
            "deploy",
            repo_file("flows/temperature-demo.json").to_str().unwrap(),
            "--url",
            &url,
        ])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(running.stop("INT").status.success());
    let _ = std::fs::remove_dir_all(&dir);
}
